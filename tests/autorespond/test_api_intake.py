"""The intake path's guarantees, in-process: its statement and commit budget, every error at
once, body limits (Django's own upload limit included), control characters at every entry
point, and JSON errors (never a traceback) when the database fails, DEBUG or not."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext

from autorespond.models import ApiKey, Inquiry, Source
from integrations.salesforce.models import InquirySync

AUTH = "HTTP_AUTHORIZATION"


def post(client: Any, key: str, body: object, **extra: Any) -> Any:
    return client.post(
        "/api/v1/inquiries",
        data=body if isinstance(body, bytes) else json.dumps(body),
        content_type="application/json",
        **{AUTH: f"Bearer {key}"},
        **extra,
    )


def errors_of(response: Any) -> dict[str | None, str]:
    return {e["field"]: e["message"] for e in response.json()["errors"]}


_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def statements(context: CaptureQueriesContext) -> list[str]:
    """The SQL statements a request ran, without transaction control (Django logs BEGIN and
    COMMIT too)."""
    return [
        q["sql"]
        for q in context.captured_queries
        if not q["sql"].lstrip().upper().startswith(_TRANSACTION_CONTROL)
    ]


def commits(context: CaptureQueriesContext) -> int:
    """Commits: each COMMIT of a transaction, plus each write run outside one (autocommit)."""
    count, in_transaction = 0, False
    for query in context.captured_queries:
        sql = query["sql"].lstrip().upper()
        if sql.startswith("BEGIN"):
            in_transaction = True
        elif sql.startswith("COMMIT"):
            count, in_transaction = count + 1, False
        elif not in_transaction and not sql.startswith("SELECT"):
            count += 1
    return count


def _writes(sqls: list[str]) -> list[str]:
    return [sql for sql in sqls if not sql.lstrip().upper().startswith("SELECT")]


# --------------------------------------------------------------------------- cost


@pytest.mark.django_db(transaction=True)
def test_statement_and_commit_budget_per_post(client, api_key, business):
    body = {"id": "b1", "source": business.slug, "first_name": "Ann", "email": "a@example.com"}
    post(client, api_key, {"id": "warm-up", "source": business.slug})  # marks the key used

    with CaptureQueriesContext(connection) as created:
        response = post(client, api_key, body)
    assert response.status_code == 201
    assert len(statements(created)) <= 5, statements(created)
    assert commits(created) == 1

    with CaptureQueriesContext(connection) as updated:
        response = post(client, api_key, {**body, "phone": "415 555 1212"})
    assert response.status_code == 200
    assert len(statements(updated)) <= 5, statements(updated)
    assert commits(updated) == 1
    # What a changed POST writes: the inquiry and its sync request (and, on PostgreSQL, its
    # source's drain mark, integrations/salesforce/sync/drain_marks.py), nothing else; on
    # PostgreSQL in one statement with no BEGIN and COMMIT around it (one round trip).
    writes = _writes(statements(updated))
    inserts = 3 if connection.vendor == "postgresql" else 2
    assert sum(sql.count("INSERT INTO") for sql in writes) == inserts
    if connection.vendor == "postgresql":
        assert len(writes) == 1
        assert not any(
            q["sql"].upper().startswith(("BEGIN", "COMMIT")) for q in updated.captured_queries
        )
    else:
        assert len(writes) == 2

    with CaptureQueriesContext(connection) as unchanged:
        response = post(client, api_key, body)
    assert response.status_code == 200
    assert len(statements(unchanged)) <= 4, statements(unchanged)
    assert commits(unchanged) <= 1
    # Nothing changed: no sync requested (the version stays where the two changes left it).
    assert InquirySync.objects.get(inquiry__external_id="b1").requested_version == 2
    assert response.json()["sync"]["status"] == "pending"


def test_the_longest_intake_statement_stays_within_psycopgs_parse_cache():
    """psycopg caches the parsing of a statement's placeholders only up to 4096 characters
    (`psycopg._queries.MAX_CACHED_STATEMENT_LENGTH`); past it every POST parsed the joined
    statement again. The longest shape: every field present, the source named by its slug."""
    from autorespond import hooks
    from autorespond.services import INQUIRY_FIELDS, _inquiry_upsert_statement, _joined_statement

    upsert = _inquiry_upsert_statement("postgresql", tuple(sorted(INQUIRY_FIELDS)), True)
    joined = _joined_statement(upsert, tuple(hooks.inquiry_changed_writes))
    assert hooks.inquiry_changed_writes and "salesforce_inquirysync" in joined
    assert len(joined) <= 4096, len(joined)


@pytest.mark.django_db(transaction=True)
def test_last_used_at_is_written_at_most_once_a_minute(client, api_key, business, settings):
    # The test moves the stored mark back as if a minute had passed; by then a server process's
    # memory of the key (API_KEY_CACHE_SECONDS, a few seconds) has expired too, so it is off here.
    settings.API_KEY_CACHE_SECONDS = 0
    key = ApiKey.objects.get()
    with CaptureQueriesContext(connection) as first:
        post(client, api_key, {"id": "1", "source": business.slug})
    key.refresh_from_db()
    marked = key.last_used_at
    assert marked is not None
    assert any("last_used_at" in sql for sql in _writes(statements(first)))

    with CaptureQueriesContext(connection) as second:
        post(client, api_key, {"id": "2", "source": business.slug})
    assert not any("last_used_at" in sql for sql in _writes(statements(second)))
    key.refresh_from_db()
    assert key.last_used_at == marked

    ApiKey.objects.filter(pk=key.pk).update(last_used_at=marked - timedelta(minutes=2))
    with CaptureQueriesContext(connection) as later:
        response = post(client, api_key, {"id": "3", "source": business.slug})
    assert response.status_code == 201
    assert len(statements(later)) <= 5  # the once-a-minute write stays within the budget
    key.refresh_from_db()
    assert key.last_used_at > marked


# --------------------------------------------------------------------------- errors at once


@pytest.mark.django_db
def test_unknown_source_is_reported_with_the_other_errors(client, api_key):
    response = post(
        client,
        api_key,
        {"id": "1", "source": "nobody", "email": "not-an-email", "phone": 5, "shoe": "x"},
    )
    assert response.status_code == 400
    assert errors_of(response) == {
        "source": "Unknown source 'nobody'.",
        "email": "Enter a valid email address.",
        "phone": "Must be a string.",
        "shoe": "Unknown field.",
    }
    assert Inquiry.objects.count() == 0


# --------------------------------------------------------------------------- body limits


@pytest.mark.django_db
@pytest.mark.parametrize("size", [100 * 1024, 3 * 1024 * 1024, 10 * 1024 * 1024])
def test_oversized_bodies_get_413_json_and_store_nothing(client, api_key, business, size):
    body = json.dumps({"id": "1", "source": business.slug, "job_description": "x" * size})
    response = post(client, api_key, body.encode())
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert errors_of(response) == {"body": "Body too large: at most 65536 bytes."}
    assert Inquiry.objects.count() == 0


@pytest.mark.django_db
def test_a_limit_above_djangos_upload_limit_is_the_one_that_applies(
    client, api_key, business, settings
):
    # 3 MB is over Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB): the API's limit decides.
    settings.API_MAX_BODY_BYTES = 4 * 1024 * 1024
    padding = " " * (3 * 1024 * 1024)
    body = json.dumps({"id": "1", "source": business.slug, "city": "Oakland"}) + padding
    response = post(client, api_key, body.encode())
    assert response.status_code == 201
    assert Inquiry.objects.get().city == "Oakland"


def test_an_oversized_body_is_answered_without_being_read(live_server, api_key, business):
    """The server answers 413 from the Content-Length alone: the client sends the headers of a
    10 MB body and a few bytes of it, and still gets its answer."""
    url = urlsplit(live_server.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/inquiries HTTP/1.1\r\nHost: localhost\r\n"
            + f"Authorization: Bearer {api_key}\r\n".encode()
            + b'Content-Type: application/json\r\nContent-Length: 10485760\r\n\r\n{"id":'
        )
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413")
    assert b'"Body too large: at most 65536 bytes."' in reply
    assert Inquiry.objects.count() == 0


# --------------------------------------------------------------------------- control characters


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field",
    ["id", "source", "first_name", "last_name", "company", "email", "phone", "street", "city",
     "state", "postal_code", "job_description"],
)  # fmt: skip
@pytest.mark.parametrize("character", ["\x00", "\x07", "\x1b", "\x7f", "\ud800"])
def test_control_characters_in_any_body_field_are_400(client, api_key, business, field, character):
    body = {"id": "1", "source": business.slug, field: f"ab{character}c"}
    response = client.post(
        "/api/v1/inquiries",
        # ensure_ascii keeps "\ud800" a JSON escape: the body is valid UTF-8 with a lone surrogate
        data=json.dumps(body),
        content_type="application/json",
        **{AUTH: f"Bearer {api_key}"},
    )
    assert response.status_code == 400
    expected = "Unicode" if character == "\ud800" else "control characters"
    assert expected in errors_of(response)[field]
    assert Inquiry.objects.count() == 0


@pytest.mark.django_db
def test_tabs_and_line_breaks_are_kept_in_text(client, api_key, business):
    description = "Leaking tap.\r\n\tKitchen, since Monday."
    response = post(
        client, api_key, {"id": "1", "source": business.slug, "job_description": description}
    )
    assert response.status_code == 201
    assert Inquiry.objects.get().job_description == description


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/inquiries/joes%00plumbing/1", "source"),
        ("/api/v1/inquiries/joes-plumbing/1%00", "id"),
        ("/api/v1/inquiries/joes-plumbing/1%1B", "id"),
    ],
)
def test_control_characters_in_get_paths_are_400(client, api_key, business, path, field):
    response = client.get(path, **{AUTH: f"Bearer {api_key}"})
    assert response.status_code == 400
    assert field in errors_of(response)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/sources/new%00one", {"name": "New"}, "slug"),
        ("/api/v1/sources/new-one%0A", {"name": "New"}, "slug"),
        ("/api/v1/sources/new-one", {"name": "New\x00"}, "name"),
        ("/api/v1/sources/new-one", {"name": "New", "parent": "joes\x00plumbing"}, "parent"),
    ],
)
def test_control_characters_in_put_source_are_400(client, api_key, business, path, body, field):
    response = client.put(
        path, data=json.dumps(body), content_type="application/json",
        **{AUTH: f"Bearer {api_key}"},
    )  # fmt: skip
    assert response.status_code == 400
    assert field in errors_of(response)
    assert not Source.objects.exclude(pk=business.pk).exists()


# --------------------------------------------------------------------------- never a traceback


@pytest.fixture
def failing_inquiry_writes() -> Iterator[None]:
    """Make the database refuse the inquiry's write (Django's documented hook for wrapping
    statements; the database layer raises what a broken database would)."""

    def refuse(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        # The inquiry's upsert, alone or as the first CTE of the statement (PostgreSQL).
        if 'INSERT INTO "autorespond_inquiry"' in sql:
            raise DatabaseError("simulated: could not write to the inquiry table")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse):
        yield


@pytest.mark.django_db
def test_a_database_error_with_debug_on_is_json_without_traceback(
    client, api_key, business, settings, failing_inquiry_writes, caplog
):
    settings.DEBUG = True
    with caplog.at_level(logging.ERROR, logger="autorespond.api"):
        response = post(client, api_key, {"id": "1", "source": business.slug})
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert list(errors_of(response)) == [None]
    text = response.content.decode()
    assert "Traceback" not in text and "simulated" not in text and "File " not in text
    # The traceback goes to the log instead.
    assert any(r.exc_info and "simulated" in str(r.exc_info[1]) for r in caplog.records)


@pytest.mark.django_db
def test_a_database_outage_is_503_with_retry_after(client, api_key, business, settings):
    from django.db import OperationalError

    def unreachable(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        raise OperationalError("simulated: connection refused")

    settings.DEBUG = True
    with connection.execute_wrapper(unreachable):
        response = post(client, api_key, {"id": "1", "source": business.slug})
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert list(errors_of(response)) == [None]
    assert "simulated" not in response.content.decode()


@pytest.mark.django_db
def test_unknown_api_paths_answer_json(client, settings):
    settings.DEBUG = True
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert errors_of(response) == {None: "Not found."}


def _migrate_city(length: int) -> None:
    """What a deploy's `migrate`, run by another process, does to a column the intake returns."""
    import psycopg

    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute(f"ALTER TABLE autorespond_inquiry ALTER COLUMN city TYPE varchar({length})")


@pytest.mark.django_db(transaction=True)
def test_a_migration_under_prepared_statements_refuses_no_request(client, api_key, business):
    """With server-side binding (PostgreSQL), a connection prepares a statement once it has run
    it a few times (DB_PREPARE_THRESHOLD, 5). A migration by another process that changes a
    column the statement returns makes the prepared statement fail ("cached plan must not change
    result type"). Outside a transaction it is prepared again and run once more, so the intake's
    POST and the API's reads go on answering, every time, on the same connection."""
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's (server-side binding)")
    for n in range(8):  # past the threshold for one shape (the same fields present): prepared
        warm = post(client, api_key, {"id": f"warm-{n}", "source": business.slug, "city": "X"})
        assert warm.status_code == 201
        read = client.get(
            f"/api/v1/inquiries/{business.slug}/warm-{n}", **{AUTH: f"Bearer {api_key}"}
        )
        assert read.status_code == 200
    try:
        _migrate_city(120)
        for n in range(3):
            body = {"id": f"after-migrate-{n}", "source": business.slug, "city": "Oakland"}
            assert post(client, api_key, body).status_code == 201
            read = client.get(
                f"/api/v1/inquiries/{business.slug}/warm-{n}", **{AUTH: f"Bearer {api_key}"}
            )
            assert read.status_code == 200, read.content
        assert Inquiry.objects.get(external_id="after-migrate-2").city == "Oakland"
        assert InquirySync.objects.filter(inquiry__external_id__startswith="after-").count() == 3
    finally:
        _migrate_city(100)
        connection.close()  # the next test starts with no statement prepared on the old columns


@pytest.mark.django_db(transaction=True)
def test_a_migration_inside_a_transaction_costs_one_503_per_connection(
    client, api_key, business, settings
):
    """On the path that writes in a transaction (an integration with a plain handler, as on
    SQLite), the stale prepared statement aborts the transaction: the client gets 503 with
    Retry-After, nothing is stored, and the rollback makes psycopg prepare it again, so the same
    request sent again is created."""
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's (server-side binding)")
    from autorespond import hooks

    seen: list[int] = []
    hooks.inquiry_changed_handlers.append(lambda inquiry: seen.append(inquiry.pk))
    try:
        for n in range(8):
            warm = post(client, api_key, {"id": f"warm-{n}", "source": business.slug, "city": "X"})
            assert warm.status_code == 201
        _migrate_city(120)
        body = {"id": "after-migrate", "source": business.slug, "city": "Oakland"}
        refused = post(client, api_key, body)
        assert refused.status_code == 503, refused.content
        assert refused["Retry-After"]
        assert refused.json()["errors"][0]["field"] is None
        assert not Inquiry.objects.filter(external_id="after-migrate").exists()
        assert post(client, api_key, body).status_code == 201
        assert Inquiry.objects.get(external_id="after-migrate").city == "Oakland"
        assert len(seen) == 9  # the plain handler ran in each stored inquiry's transaction
    finally:
        hooks.inquiry_changed_handlers.pop()
        _migrate_city(100)
        connection.close()
