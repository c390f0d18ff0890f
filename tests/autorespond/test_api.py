"""The ingestion API contract: POST/GET inquiries, PUT sources, and every bad-input case."""

from __future__ import annotations

import json
import re
import time

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.test import Client
from django.utils import timezone

from autorespond.models import ApiKey, Inquiry, Source
from autorespond.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def post(client: Client, key: str | None, body: object, raw: bytes | None = None):  # type: ignore[no-untyped-def]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    data = raw if raw is not None else json.dumps(body)
    return client.post("/api/v1/inquiries", data=data, content_type="application/json", **headers)


def errors_of(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {e["field"]: e["message"] for e in response.json()["errors"]}


def test_first_post_creates_then_updates_keeping_absent_fields(client, api_key, business):
    created = post(
        client,
        api_key,
        {"id": "42", "source": business.slug, "first_name": "Ann", "email": "ann@example.com"},
    )
    assert created.status_code == 201
    assert created.json()["first_name"] == "Ann"
    assert created.json()["sync"]["status"] == "pending"

    updated = post(client, api_key, {"id": "42", "source": business.slug, "phone": "415 555 1212"})
    assert updated.status_code == 200
    body = updated.json()
    assert (body["first_name"], body["email"], body["phone"]) == (
        "Ann",
        "ann@example.com",
        "415 555 1212",
    )
    assert Inquiry.objects.count() == 1


def test_null_clears_a_field(client, api_key, business):
    post(client, api_key, {"id": "1", "source": business.slug, "company": "Acme"})
    response = post(client, api_key, {"id": "1", "source": business.slug, "company": None})
    assert response.status_code == 200
    assert Inquiry.objects.get().company == ""


def test_get_returns_inquiry_and_sync_status(client, api_key, business):
    post(client, api_key, {"id": "7", "source": business.slug, "last_name": "Lee"})
    response = client.get(
        f"/api/v1/inquiries/{business.slug}/7", HTTP_AUTHORIZATION=f"Bearer {api_key}"
    )
    assert response.status_code == 200
    assert response.json()["last_name"] == "Lee"
    assert response.json()["sync"]["status_label"] == "Waiting to be sent"
    missing = client.get(
        f"/api/v1/inquiries/{business.slug}/8", HTTP_AUTHORIZATION=f"Bearer {api_key}"
    )
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"id": "1", "source": "joes-plumbing", "email": "not-an-email"}, "email",
         "Enter a valid email address."),
        ({"id": "1", "source": "nobody"}, "source", "Unknown source 'nobody'."),
        ({"id": "1", "source": "joes-plumbing", "first_name": 5}, "first_name",
         "Must be a string."),
        ({"id": 1, "source": "joes-plumbing"}, "id", "Must be a string."),
        ({"id": "1", "source": "joes-plumbing", "postal_code": "x" * 21}, "postal_code",
         "Too long: at most 20 characters."),
        ({"id": "1", "source": "joes-plumbing", "favourite_color": "red"}, "favourite_color",
         "Unknown field."),
        ({"source": "joes-plumbing"}, "id", "This field is required."),
        ({"id": "1"}, "source", "This field is required."),
    ],
)  # fmt: skip
def test_bad_fields_are_named_and_nothing_changes(client, api_key, business, body, field, message):
    response = post(client, api_key, body)
    assert response.status_code == 400
    assert errors_of(response)[field] == message
    assert Inquiry.objects.count() == 0


def test_every_bad_field_is_reported_at_once(client, api_key, business):
    response = post(
        client, api_key, {"id": "1", "source": business.slug, "email": "x", "city": 3, "zip": "1"}
    )
    assert set(errors_of(response)) == {"email", "city", "zip"}


def test_malformed_json(client, api_key, business):
    response = post(client, api_key, None, raw=b'{"id": "1", "source":')
    assert response.status_code == 400
    assert errors_of(response) == {"body": "Malformed JSON."}


@pytest.mark.parametrize("body", [["id", "1"], "x", 5, None, True])
def test_body_must_be_an_object(client, api_key, business, body):
    response = post(client, api_key, body)
    assert response.status_code == 400
    assert errors_of(response) == {"body": "The body must be a JSON object."}
    assert Inquiry.objects.count() == 0


def test_body_too_large(client, api_key, business, settings):
    settings.API_MAX_BODY_BYTES = 1000
    response = post(client, api_key, {"id": "1", "source": business.slug, "city": "x" * 2000})
    assert response.status_code == 413
    assert "Body too large" in errors_of(response)["body"]
    assert Inquiry.objects.count() == 0


@pytest.mark.parametrize("key", [None, "ar_wrong"])
def test_missing_or_wrong_key_is_401(client, business, key):
    response = post(client, key, {"id": "1", "source": business.slug})
    assert response.status_code == 401
    assert "Authorization" in errors_of(response)
    assert Inquiry.objects.count() == 0


def test_revoked_key_is_401(client, business):
    key, raw = api_key_create(name="old")
    api_key_revoke(key=key)
    assert post(client, raw, {"id": "1", "source": business.slug}).status_code == 401


def test_key_revoked_after_use_is_refused_at_once_by_the_revoking_process(client, business):
    key, raw = api_key_create(name="leaked")
    assert post(client, raw, {"id": "1", "source": business.slug}).status_code == 201  # remembered
    api_key_revoke(key=key)
    assert post(client, raw, {"id": "2", "source": business.slug}).status_code == 401
    assert not Inquiry.objects.filter(external_id="2").exists()


def test_key_revoked_by_another_process_is_refused_once_its_cache_entry_expires(
    client, business, settings
):
    """Another server process remembers an active key for API_KEY_CACHE_SECONDS (README): a
    revocation it did not make (here, written straight to the database) takes that long."""
    settings.API_KEY_CACHE_SECONDS = 0.3
    key, raw = api_key_create(name="leaked")
    assert post(client, raw, {"id": "1", "source": business.slug}).status_code == 201
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    assert post(client, raw, {"id": "2", "source": business.slug}).status_code == 201
    time.sleep(0.35)
    assert post(client, raw, {"id": "3", "source": business.slug}).status_code == 401


def test_without_the_key_cache_a_revocation_elsewhere_is_refused_at_once(
    client, business, settings
):
    settings.API_KEY_CACHE_SECONDS = 0
    key, raw = api_key_create(name="leaked")
    assert post(client, raw, {"id": "1", "source": business.slug}).status_code == 201
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    assert post(client, raw, {"id": "2", "source": business.slug}).status_code == 401


def test_put_source_creates_and_updates(client, api_key, business):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {api_key}"}
    response = client.put(
        "/api/v1/sources/joes-west",
        data=json.dumps({"name": "Joe's West", "parent": business.slug}),
        content_type="application/json",
        **auth,
    )
    assert response.status_code == 201
    assert response.json() == {"slug": "joes-west", "name": "Joe's West", "parent": business.slug}
    response = client.put(
        "/api/v1/sources/joes-west",
        data=json.dumps({"name": "Joe's West Side"}),
        content_type="application/json",
        **auth,
    )
    assert response.status_code == 200
    source = Source.objects.get(slug="joes-west")
    assert (source.name, source.parent) == ("Joe's West Side", None)


def test_put_source_rejects_a_cycle_and_unknown_parent(client, api_key, business, location):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {api_key}"}
    cycle = client.put(
        f"/api/v1/sources/{business.slug}",
        data=json.dumps({"name": "Joe's", "parent": location.slug}),
        content_type="application/json",
        **auth,
    )
    assert cycle.status_code == 400
    assert "own ancestor" in errors_of(cycle)["parent"]
    business.refresh_from_db()
    assert business.parent is None
    unknown = client.put(
        "/api/v1/sources/new-one",
        data=json.dumps({"name": "New", "parent": "ghost"}),
        content_type="application/json",
        **auth,
    )
    assert errors_of(unknown) == {"parent": "Unknown source 'ghost'."}
    assert not Source.objects.filter(slug="new-one").exists()


def test_put_source_rejects_a_bad_slug(client, api_key):
    response = client.put(
        "/api/v1/sources/Bad_Slug",
        data=json.dumps({"name": "x"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api_key}",
    )
    assert response.status_code == 400
    assert "slug" in errors_of(response)


def test_openapi_schema_lists_the_contract(client):
    schema = client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/inquiries", "/api/v1/inquiries/{source}/{inquiry_id}",
            "/api/v1/sources/{slug}"} <= set(schema["paths"])  # fmt: skip
    fields = schema["components"]["schemas"]["InquiryIn"]["properties"]
    assert {"id", "source", "email", "job_description"} <= set(fields)


def test_create_api_key_command_prints_a_working_key(client, business, capsys):
    from django.core.management import call_command

    call_command("create_api_key", "cli")
    raw = capsys.readouterr().out.strip()
    assert raw.startswith("ar_")
    assert post(client, raw, {"id": "1", "source": business.slug}).status_code == 201


@pytest.mark.parametrize("scheme", ["Token", "Basic", ""])
def test_a_key_sent_without_bearer_is_refused_and_never_logged(
    client, api_key, business, settings, caplog, scheme
):
    settings.DEBUG = True  # ninja's own Bearer parser logs the header only with DEBUG on
    header = f"{scheme} {api_key}".strip()
    with caplog.at_level("DEBUG"):
        response = client.post(
            "/api/v1/inquiries",
            data=json.dumps({"id": "1", "source": business.slug}),
            content_type="application/json",
            HTTP_AUTHORIZATION=header,
        )
    assert response.status_code == 401
    assert api_key not in caplog.text
    assert Inquiry.objects.count() == 0


def test_put_source_lists_an_unknown_parent_with_the_other_errors(client, api_key, db):
    response = client.put(
        "/api/v1/sources/new-place",
        data=json.dumps({"name": "N\u0000", "parent": "nope", "zz": 1}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api_key}",
    )
    assert response.status_code == 400
    assert set(errors_of(response)) == {"name", "parent", "zz"}
    assert errors_of(response)["parent"] == "Unknown source 'nope'."
    assert not Source.objects.filter(slug="new-place").exists()


def test_deeply_nested_json_is_malformed_json(client, api_key, business):
    response = post(client, api_key, None, raw=b"[" * 20_000 + b"]" * 20_000)
    assert response.status_code == 400
    assert errors_of(response) == {"body": "Malformed JSON."}


def test_get_names_an_unknown_source(client, api_key, business):
    response = client.get(
        "/api/v1/inquiries/no-such-source/1", HTTP_AUTHORIZATION=f"Bearer {api_key}"
    )
    assert response.status_code == 404
    assert errors_of(response) == {"source": "Unknown source 'no-such-source'."}


@pytest.mark.parametrize("path_id", ["a/b", "a%2Fb"])
def test_an_id_holding_a_slash_can_be_read_back(client, api_key, business, path_id):
    assert post(client, api_key, {"id": "a/b", "source": business.slug}).status_code == 201
    response = client.get(
        f"/api/v1/inquiries/{business.slug}/{path_id}", HTTP_AUTHORIZATION=f"Bearer {api_key}"
    )
    assert response.status_code == 200
    assert response.json()["id"] == "a/b"


def test_answers_write_datetimes_as_django_does_and_the_schema_says_so(client, api_key, business):
    """ISO 8601 with milliseconds and "Z" (Django's JSON encoder), in the POST's and the GET's
    answers alike; the OpenAPI schema declares them date-time."""
    created = post(client, api_key, {"id": "t1", "source": business.slug})
    read = client.get(
        f"/api/v1/inquiries/{business.slug}/t1", HTTP_AUTHORIZATION=f"Bearer {api_key}"
    )
    inquiry = Inquiry.objects.get(external_id="t1")
    expected = DjangoJSONEncoder().default(inquiry.created_at)  # what ninja's renderer wrote
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z", expected)
    for response in (created, read):
        assert response["Content-Type"] == "application/json; charset=utf-8"
        assert response.json()["created_at"] == expected
        assert response.json()["sync"]["synced_at"] is None
    schemas = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    assert schemas["InquiryOut"]["properties"]["created_at"]["format"] == "date-time"
    assert schemas["SyncOut"]["properties"]["synced_at"]["anyOf"][0]["format"] == "date-time"
