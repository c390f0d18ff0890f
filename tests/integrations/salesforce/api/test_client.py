"""SalesforceClient against the emulator over HTTPS: typed errors, token refresh, API usage,
Composite, and which API (and which assignment header) each write uses."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from integrations.salesforce.api.client import SalesforceClient
from integrations.salesforce.api.errors import (
    SalesforceDuplicatesDetected,
    SalesforceRateLimited,
    SalesforceTransientError,
    SalesforceValidationError,
)
from integrations.salesforce.api.headers import SoapHeaders, parse_header_options
from integrations.salesforce.api.soap import SObjectRecord
from integrations.salesforce.models import SalesforceConnection
from integrations.salesforce.oauth.tokens import salesforce_client
from salesforce_emulator import EmulatorControl
from tests.integrations.salesforce.oauth_support import (
    connect_through_emulator,
)

pytestmark = pytest.mark.django_db

NO_HEADERS = SoapHeaders()
LEAD = {"LastName": "Lee", "Company": "Acme", "Email": "ann@example.com"}


@pytest.fixture
def connection(owner_client: Client, business: Any, org: dict[str, Any]) -> SalesforceConnection:
    return connect_through_emulator(owner_client, business)


@pytest.fixture
def sf(connection: SalesforceConnection) -> SalesforceClient:
    return salesforce_client(connection)


def data_calls(control: EmulatorControl, org_id: str) -> list[dict[str, Any]]:
    return [c for c in control.calls(org_id) if c["api"] in ("rest", "soap")]


def test_rest_create_says_no_assignment_unless_asked(sf, control, org, connection):
    """REST runs assignment rules by default (SALESFORCE.md §2 Sforce-Auto-Assign, §7)."""
    queue = control.add_queue(org["org_id"], "Web leads", sobjects=["Lead"])
    control.set_assignment_rule(org["org_id"], "Lead", [{"assign_to": queue["id"]}])
    plain = sf.create("Lead", dict(LEAD), headers=NO_HEADERS)
    assigned = sf.create(
        "Lead",
        {**LEAD, "Email": "bo@example.com"},
        headers=parse_header_options("AssignmentRuleHeader,useDefaultRule,true"),
    )
    admin_id = org["users"][0]["id"]
    assert control.record(org["org_id"], "Lead", plain)["OwnerId"] == admin_id
    assert control.record(org["org_id"], "Lead", assigned)["OwnerId"] == queue["id"]
    sent = [c["headers"].get("Sforce-Auto-Assign") for c in data_calls(control, org["org_id"])]
    assert sent[-2:] == ["FALSE", "TRUE"]


def test_update_never_reassigns_unless_asked(sf, control, org):
    """An update that forgets Sforce-Auto-Assign: FALSE would re-run the rule (SALESFORCE.md §7)."""
    lead_id = sf.create("Lead", dict(LEAD), headers=NO_HEADERS)
    queue = control.add_queue(org["org_id"], "Web leads", sobjects=["Lead"])
    control.set_assignment_rule(org["org_id"], "Lead", [{"assign_to": queue["id"]}])
    headers = parse_header_options("AssignmentRuleHeader,useDefaultRule,true")
    sf.update("Lead", lead_id, {"City": "Oslo"}, headers=headers)
    record = control.record(org["org_id"], "Lead", lead_id)
    assert (record["City"], record["OwnerId"]) == ("Oslo", org["users"][0]["id"])
    sf.update("Lead", lead_id, {"City": "Bergen"}, headers=headers, reassign=True)
    assert control.record(org["org_id"], "Lead", lead_id)["OwnerId"] == queue["id"]


def test_email_headers_go_through_soap(sf, control, org):
    """REST has no EmailHeader; auto-response needs SOAP (seeds 000, 001)."""
    control.set_auto_response_rule(
        org["org_id"], "Lead", [{"template": "Thanks", "from_address": "sales@acme.test"}]
    )
    lead_id = sf.create(
        "Lead",
        dict(LEAD),
        headers=parse_header_options("EmailHeader,triggerAutoResponseEmail,true"),
    )
    assert data_calls(control, org["org_id"])[-1]["api"] == "soap"
    emails = control.emails(org["org_id"])
    assert [(e["kind"], e["to"], e["record_id"]) for e in emails] == [
        ("auto_response", "ann@example.com", lead_id)
    ]


def test_expired_token_is_refreshed_once_and_the_call_retried(sf, control, org, connection):
    old_token = connection.access_token
    control.expire_access_tokens(org["org_id"])
    records = sf.query("SELECT Id FROM Lead LIMIT 1")
    assert records == []
    assert sf.api_calls == 2  # the refused call and the retry
    connection.refresh_from_db()
    assert connection.access_token != old_token
    assert connection.token_refreshed_at is not None


@pytest.mark.parametrize(
    "call",
    [
        lambda sf: sf.query("SELECT Id FROM Contact LIMIT 1"),
        lambda sf: sf.describe("Lead"),
        lambda sf: sf.create("Lead", dict(LEAD), headers=NO_HEADERS),
        lambda sf: sf.create(
            "Lead", dict(LEAD), headers=parse_header_options("MruHeader,updateMru,false")
        ),
    ],
    ids=["query", "describe", "rest-create", "soap-create"],
)
def test_api_usage_is_kept_on_the_connection(sf, connection, control, org, call, settings):
    """Sforce-Limit-Info (REST) and LimitInfoHeader (SOAP) reach the connection row."""
    settings.SALESFORCE_USAGE_WRITE_SECONDS = 0
    call(sf)
    connection.refresh_from_db()
    usage = control.api_usage(org["org_id"])
    assert (connection.api_usage_used, connection.api_usage_max) == (usage["used"], usage["max"])


def test_api_usage_is_written_at_most_every_few_seconds_not_per_call(
    sf, connection, control, org, settings
):
    """Issue 12: no database write per call; the client itself always has the latest usage."""
    settings.SALESFORCE_USAGE_WRITE_SECONDS = 60
    sf.query("SELECT Id FROM Contact LIMIT 1")
    connection.refresh_from_db()
    written = (connection.api_usage_used, connection.api_usage_updated_at)
    sf.query("SELECT Id FROM Contact LIMIT 1")
    sf.query("SELECT Id FROM Lead LIMIT 1")
    connection.refresh_from_db()
    assert (connection.api_usage_used, connection.api_usage_updated_at) == written
    assert sf.latest_usage == (control.api_usage(org["org_id"])["used"], 15000)


def test_validation_error_carries_salesforce_code_message_and_fields(sf):
    with pytest.raises(SalesforceValidationError) as caught:
        sf.create("Lead", {"LastName": "Lee"}, headers=NO_HEADERS)
    assert caught.value.error_code == "REQUIRED_FIELD_MISSING"
    assert caught.value.fields == ["Company"]
    assert "Company" in caught.value.message


@pytest.mark.parametrize(
    ("kind", "error", "code"),
    [
        ("server_unavailable", SalesforceTransientError, "SERVER_UNAVAILABLE"),
        ("unable_to_lock_row", SalesforceTransientError, "UNABLE_TO_LOCK_ROW"),
        ("drop_connection", SalesforceTransientError, "CONNECTION_ERROR"),
        ("request_limit_exceeded", SalesforceRateLimited, "REQUEST_LIMIT_EXCEEDED"),
    ],
)
def test_failures_are_typed(sf, control, org, kind, error, code):
    control.add_fault(org["org_id"], kind, count=1)
    with pytest.raises(error) as caught:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert caught.value.error_code == code
    assert sf.query("SELECT Id FROM Lead LIMIT 1") == []  # the fault was a passing one


def test_duplicate_rule_names_the_existing_record(sf, control, org):
    existing = sf.create("Lead", dict(LEAD), headers=NO_HEADERS)
    control.set_duplicate_rule(org["org_id"], "Lead", match_fields=["Email"])
    with pytest.raises(SalesforceDuplicatesDetected) as caught:
        sf.create("Lead", {**LEAD, "LastName": "Leigh"}, headers=NO_HEADERS)
    assert caught.value.match_ids == [existing]


def test_composite_runs_several_lookups_in_one_api_call(sf, control, org):
    sf.create("Contact", {"LastName": "Lee", "Phone": "(415) 555-1212"}, headers=NO_HEADERS)
    before = control.api_usage(org["org_id"])["used"]
    results = sf.composite(
        [
            sf.query_subrequest("byEmail", "SELECT Id FROM Lead WHERE Email = 'x@example.com'"),
            sf.search_subrequest(
                "byPhone", "FIND {4155551212} IN PHONE FIELDS RETURNING Contact(Id), Lead(Id)"
            ),
        ]
    )
    assert control.api_usage(org["org_id"])["used"] == before + 1
    assert results[0]["body"]["totalSize"] == 0
    assert len(results[1]["body"]["searchRecords"]) == 1


def test_collections_write_many_records_in_one_call(sf, control, org):
    before = control.api_usage(org["org_id"])["used"]
    results = sf.create_many(
        [SObjectRecord("Lead", {**LEAD, "Email": f"p{n}@example.com"}) for n in range(3)]
        + [SObjectRecord("Lead", {"LastName": "NoCompany"})],
        headers=NO_HEADERS,
    )
    assert control.api_usage(org["org_id"])["used"] == before + 1
    assert [r.success for r in results] == [True, True, True, False]
    assert results[3].errors[0].status_code == "REQUIRED_FIELD_MISSING"
    assert len(control.records(org["org_id"], "Lead")) == 3


def test_no_token_in_repr_or_errors(sf, connection, control, org):
    control.add_fault(org["org_id"], "server_unavailable", count=1)
    with pytest.raises(SalesforceTransientError) as caught:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    for text in (repr(sf), str(caught.value), repr(caught.value)):
        assert connection.access_token not in text


def test_a_dropped_connection_names_the_host_not_the_query(sf, control, org):
    """A query's URL carries the customer's email; the stored error text must not."""
    control.add_fault(org["org_id"], "drop_connection", count=1)
    with pytest.raises(SalesforceTransientError) as caught:
        sf.query("SELECT Id FROM Lead WHERE Email = 'ann@example.com'")
    host = urlsplit(sf.connection.instance_url).netloc
    assert caught.value.message == f"Could not reach {host} (ConnectionError)."
    assert caught.value.__cause__ is None
