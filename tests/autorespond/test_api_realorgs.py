"""Issue 13 at the ingestion API: an email Salesforce clearly refuses is a 400 naming the field,
and the optional country takes a name or an ISO code."""

from __future__ import annotations

import pytest

from autorespond.models import Inquiry
from autorespond.validators import country_code, salesforce_email_refusal
from tests.autorespond.test_api import errors_of, post

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        ("bea@localhost", "the domain has no dot; it must be a full name like example.com."),
        ("bea@[10.0.0.1]", "the domain is an IP address; it must be a name like example.com."),
    ],
)  # fmt: skip
def test_an_email_salesforce_refuses_is_a_400_naming_the_field(
    client, api_key, business, email, reason
):  # type: ignore[no-untyped-def]
    response = post(client, api_key, {"id": "1", "source": business.slug, "email": email})
    assert response.status_code == 400
    assert errors_of(response) == {
        "email": f"Salesforce does not accept this email address: {reason}"
    }
    assert Inquiry.objects.count() == 0


@pytest.mark.parametrize(
    "email",
    ["ann@example.com", "o'brien+tag@mail.example.co.uk", "ann@bücher.de"],
)
def test_addresses_salesforce_may_accept_pass(client, api_key, business, email):  # type: ignore[no-untyped-def]
    """Including a non-ASCII domain: orgs with Email Address Internationalization accept it (the
    sync leaves it out, with a note, in an org that refuses it)."""
    assert salesforce_email_refusal(email) is None
    response = post(client, api_key, {"id": "1", "source": business.slug, "email": email})
    assert response.status_code == 201, response.json()


def test_country_takes_a_name_or_an_iso_code_and_refuses_an_unknown_one(client, api_key, business):  # type: ignore[no-untyped-def]
    assert [country_code(v) for v in ("US", "usa", "United States", "uk", "Narnia")] == [
        "US",
        "US",
        "US",
        "GB",
        None,
    ]
    response = post(client, api_key, {"id": "1", "source": business.slug, "country": "Canada"})
    assert response.status_code == 201
    assert response.json()["country"] == "Canada"
    assert Inquiry.objects.get().country == "Canada"

    response = post(client, api_key, {"id": "2", "source": business.slug, "country": "Narnia"})
    assert response.status_code == 400
    assert errors_of(response) == {
        "country": "Unknown country: give an ISO 3166 code (like US) or its English name."
    }
