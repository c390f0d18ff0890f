"""The SOAP client against the real emulator over HTTPS.

Outcomes are read from the emulator: the records it stored, the emails it logged, the headers
its call log recorded, and the errors it answered with.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from integrations.salesforce.api.errors import (
    SalesforceAuthError,
    SalesforceRateLimited,
    SalesforceTransientError,
    SalesforceValidationError,
)
from integrations.salesforce.api.headers import SoapHeaders, parse_header_options
from integrations.salesforce.api.soap import SaveError, SaveResult, SoapClient, SObjectRecord
from salesforce_emulator import EmulatorServer, EmulatorState, Org
from salesforce_emulator.core import AssignmentEntry, AutoResponseEntry, DuplicateRule, User
from tests.salesforce_emulator.conftest import trusting_session


@dataclass
class SoapWorld:
    """An emulator org with an admin and a second user, and a token for the admin."""

    state: EmulatorState
    org: Org
    admin: User
    seller: User
    token: str
    instance_url: str
    session: requests.Session

    def client(self, *, token: str | None = None, timeout: float = 10) -> SoapClient:
        return SoapClient(
            self.instance_url, token or self.token, session=self.session, timeout=timeout
        )

    def emails(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.org.emails if e["kind"] == kind]


@pytest.fixture
def world(sf_emulator: EmulatorServer) -> Iterator[SoapWorld]:
    state = sf_emulator.state
    org = state.create_org("Acme Plumbing")
    seller = org.add_user(
        f"sam.{org.id}@acme.example.com",
        first_name="Sam",
        last_name="Seller",
        email="sam@acme.test",
    )
    app = state.add_connected_app(callback_urls=["https://app.test/callback"])
    token = state.issue_access_token(
        client_id=app.client_id,
        org=org,
        user=org.admin,
        scopes=["api", "refresh_token"],
        login_kind="production",
        refresh_token=None,
    ).token
    with trusting_session(sf_emulator) as session:
        yield SoapWorld(state, org, org.admin, seller, token, sf_emulator.instance_url, session)


def lead(last: str = "Doe", company: str = "Acme", **fields: object) -> SObjectRecord:
    return SObjectRecord("Lead", {"LastName": last, "Company": company, **fields})


@pytest.fixture
def auto_response(world: SoapWorld) -> None:
    world.org.set_auto_response_rule(
        "Lead", "Web leads", [AutoResponseEntry(template="Thanks", from_address="hi@acme.test")]
    )


@pytest.fixture
def assignment_rule(world: SoapWorld) -> str:
    rule = world.org.set_assignment_rule(
        "Lead", "Route everything", [AssignmentEntry(assign_to=world.seller.id)]
    )
    return rule.id


# --------------------------------------------------------------------------- writes


def test_create_stores_values_exactly(world: SoapWorld) -> None:
    client = world.client()
    (result,) = client.create(
        [
            lead(
                "O'Brien & Sons <b>",
                'Ünïcødé ✓ 会社 "quoted"',
                Email="ob@example.com",
                Phone=None,
                Description="line 1\nline 2\ttab ]]> \x0bvertical tab dropped",
            )
        ],
        SoapHeaders(),
    )
    assert result.success and result.errors == []
    stored = world.org.get("Lead", result.id)
    assert stored["LastName"] == "O'Brien & Sons <b>"
    assert stored["Company"] == 'Ünïcødé ✓ 会社 "quoted"'
    assert stored["Phone"] is None
    assert stored["Description"] == "line 1\nline 2\ttab ]]> vertical tab dropped"


def test_create_several_records_returns_results_in_order(world: SoapWorld) -> None:
    results = world.client().create(
        [lead("One"), SObjectRecord("Contact", {"LastName": "Two"}), lead("Three")]
    )
    assert [r.success for r in results] == [True, True, True]
    assert [r.id[:3] for r in results if r.id] == ["00Q", "003", "00Q"]
    assert world.org.get("Lead", results[2].id)["LastName"] == "Three"


def test_typed_values_are_sent_as_xsd_text(world: SoapWorld) -> None:
    client = world.client()
    (result,) = client.create([lead(Description=decimal.Decimal("1.50"), Title=7)])
    stored = world.org.get("Lead", result.id)
    assert (stored["Description"], stored["Title"]) == ("1.50", "7")
    client.update(
        [SObjectRecord("Lead", {"Description": dt.date(2026, 5, 1)}, result.id)], SoapHeaders()
    )
    assert world.org.get("Lead", result.id)["Description"] == "2026-05-01"


def test_update_changes_and_clears_fields(world: SoapWorld) -> None:
    lead_id = world.org.insert_record(
        "Lead", {"LastName": "Doe", "Company": "Acme", "Phone": "555", "City": "Oslo"}
    )
    (result,) = world.client().update(
        [SObjectRecord("Lead", {"Phone": None, "Title": "CTO"}, lead_id[:15])], SoapHeaders()
    )
    assert result == SaveResult(id=lead_id, success=True, errors=[])
    stored = world.org.get("Lead", lead_id)
    assert (stored["Phone"], stored["Title"], stored["City"]) == (None, "CTO", "Oslo")


def test_per_record_errors_are_save_results(world: SoapWorld) -> None:
    missing, fine = world.client().create(
        [SObjectRecord("Lead", {"LastName": "NoCompany"}), lead("Fine")]
    )
    assert missing == SaveResult(
        id=None,
        success=False,
        errors=[
            SaveError(
                status_code="REQUIRED_FIELD_MISSING",
                message="Required fields are missing: [Company]",
                fields=["Company"],
                duplicate_match_ids=[],
            )
        ],
    )
    assert fine.success


def test_update_of_a_missing_record_is_a_per_record_error(world: SoapWorld) -> None:
    (result,) = world.client().update([SObjectRecord("Lead", {"Title": "x"}, "00Q000000000001")])
    assert not result.success
    assert result.errors[0].status_code == "INVALID_CROSS_REFERENCE_KEY"


def test_empty_record_list_makes_no_call(world: SoapWorld) -> None:
    calls = len(world.org.calls)
    assert world.client().create([]) == []
    assert world.client().update([]) == []
    assert len(world.org.calls) == calls


@pytest.mark.parametrize(
    ("records", "method"),
    [
        ([lead()] * 201, "create"),
        ([SObjectRecord("Lead", {"LastName": "x"}, "00Q000000000001")], "create"),
        ([lead()], "update"),
        ([SObjectRecord("Lead", {"Bad Name": "x"})], "create"),
        ([SObjectRecord("Lead><x", {"LastName": "x"})], "create"),
        ([SObjectRecord("Lead", {"Id": "00Q000000000001"}, "00Q000000000001")], "update"),
        ([lead(Description=dt.datetime(2026, 1, 1))], "create"),  # naive datetime
        ([lead(Description=float("nan"))], "create"),
    ],
)
def test_caller_mistakes_raise_value_error_before_any_call(
    world: SoapWorld, records: list[SObjectRecord], method: str
) -> None:
    calls = len(world.org.calls)
    with pytest.raises(ValueError):
        getattr(world.client(), method)(records, SoapHeaders())
    assert len(world.org.calls) == calls


def test_last_api_usage_comes_from_limit_info_header(world: SoapWorld) -> None:
    world.org.update_settings(daily_api_limit=1000)
    client = world.client()
    assert client.last_api_usage is None
    client.create([lead()])
    used = world.org.api_usage()["used"]
    assert client.last_api_usage == (used, 1000)


# --------------------------------------------------------------------------- seeds 000 and 001


@pytest.mark.usefixtures("auto_response")
def test_seed_000_auto_response_once_for_a_created_lead_only_with_the_header(
    world: SoapWorld,
) -> None:
    client = world.client()
    client.create([lead("Quiet", Email="quiet@example.com")], SoapHeaders())
    client.create(
        [lead("Owner only", Email="owner@example.com")],
        SoapHeaders.from_switches(auto_response=False, assignment=None, notify_owner=True),
    )
    assert world.emails("auto_response") == []

    headers = SoapHeaders.from_switches(auto_response=True, assignment=None, notify_owner=False)
    (result,) = client.create([lead("Loud", Email="loud@example.com")], headers)
    sent = world.emails("auto_response")
    assert [(e["to"], e["record_id"], e["api"]) for e in sent] == [
        ("loud@example.com", result.id, "soap")
    ]

    # Seed 000 covers creates: the same header on an update sends nothing more.
    client.update([SObjectRecord("Lead", {"Title": "CTO"}, result.id)], headers)
    assert len(world.emails("auto_response")) == 1


@pytest.mark.usefixtures("assignment_rule")
def test_seed_001_assignment_only_with_assignment_rule_header(world: SoapWorld) -> None:
    client = world.client()
    (unassigned,) = client.create(
        [lead()], parse_header_options("EmailHeader,triggerUserEmail,true")
    )
    assert world.org.get("Lead", unassigned.id)["OwnerId"] == world.admin.id

    (assigned,) = client.create(
        [lead()], parse_header_options("AssignmentRuleHeader,useDefaultRule,true")
    )
    assert world.org.get("Lead", assigned.id)["OwnerId"] == world.seller.id
    # Seed 001: AssignmentRuleHeader without EmailHeader assigns but notifies nobody.
    assert world.emails("assignment_notification") == []


@pytest.mark.usefixtures("assignment_rule")
def test_seed_001_owner_notification_only_with_trigger_user_email(world: SoapWorld) -> None:
    headers = SoapHeaders.from_switches(
        auto_response=False, assignment="default", notify_owner=True
    )
    (result,) = world.client().create([lead()], headers)
    assert world.org.get("Lead", result.id)["OwnerId"] == world.seller.id
    notes = world.emails("assignment_notification")
    assert [(e["to"], e["record_id"]) for e in notes] == [(world.seller.email, result.id)]


def test_seed_001_assignment_by_rule_id(world: SoapWorld, assignment_rule: str) -> None:
    # Another active rule makes ours inactive; named by id it still runs.
    world.org.set_assignment_rule("Lead", "Other", [AssignmentEntry(assign_to=world.admin.id)])
    headers = SoapHeaders.from_switches(
        auto_response=False, assignment=assignment_rule, notify_owner=False
    )
    (result,) = world.client().create([lead()], headers)
    assert world.org.get("Lead", result.id)["OwnerId"] == world.seller.id


def test_every_header_reaches_salesforce_as_written(world: SoapWorld) -> None:
    headers = parse_header_options(
        "EmailHeader,triggerOtherEmail,true;DuplicateRuleHeader,allowSave,true;"
        "AssignmentRuleHeader,useDefaultRule,false;AllOrNoneHeader,allOrNone,false;"
        "AllowFieldTruncationHeader,allowFieldTruncation,true;"
        "DisableFeedTrackingHeader,disableFeedTracking,true;MruHeader,updateMru,false"
    )
    world.client().create([lead()], headers)
    assert world.org.calls[-1]["soap_headers"] == {
        "EmailHeader": {
            "triggerAutoResponseEmail": False,
            "triggerOtherEmail": True,
            "triggerUserEmail": False,
        },
        "DuplicateRuleHeader": {
            "allowSave": True,
            "includeRecordDetails": False,
            "runAsCurrentUser": True,  # the seed's default, spelled out on the wire
        },
        "AssignmentRuleHeader": {"useDefaultRule": False},
        "AllOrNoneHeader": {"allOrNone": False},
        "AllowFieldTruncationHeader": {"allowFieldTruncation": True},
        "DisableFeedTrackingHeader": {"disableFeedTracking": True},
        "MruHeader": {"updateMru": False},
    }


# --------------------------------------------------------------------------- other headers


@pytest.fixture
def duplicate_of(world: SoapWorld) -> str:
    world.org.set_duplicate_rule(
        DuplicateRule(
            sobject="Lead",
            name="Standard_Lead_Duplicate_Rule",
            match_rule="Standard_Lead_Match_Rule_v1_0",
        )
    )
    return world.org.insert_record(
        "Lead", {"LastName": "First", "Company": "Acme", "Email": "dup@example.com"}
    )


def test_duplicates_carry_the_matched_ids(world: SoapWorld, duplicate_of: str) -> None:
    (result,) = world.client().create([lead("Second", Email="dup@example.com")])
    assert not result.success
    (error,) = result.errors
    assert error.status_code == "DUPLICATES_DETECTED"
    assert error.message == "Use one of these records?"
    assert error.duplicate_match_ids == [duplicate_of]


def test_duplicate_rule_header_allow_save(world: SoapWorld, duplicate_of: str) -> None:
    (result,) = world.client().create(
        [lead("Second", Email="dup@example.com")],
        parse_header_options("DuplicateRuleHeader,allowSave,true"),
    )
    assert result.success


def test_all_or_none_rolls_back(world: SoapWorld) -> None:
    results = world.client().create(
        [lead("Good"), SObjectRecord("Lead", {"LastName": "Bad"})],
        parse_header_options("AllOrNoneHeader,allOrNone,true"),
    )
    assert [(r.success, r.errors[0].status_code) for r in results] == [
        (False, "ALL_OR_NONE_OPERATION_ROLLED_BACK"),
        (False, "REQUIRED_FIELD_MISSING"),
    ]
    assert list(world.org.rows("Lead")) == []


def test_allow_field_truncation(world: SoapWorld) -> None:
    client = world.client()
    (refused,) = client.create([lead("x" * 81)])
    assert refused.errors[0].status_code == "STRING_TOO_LONG"
    (truncated,) = client.create(
        [lead("x" * 81)],
        parse_header_options("AllowFieldTruncationHeader,allowFieldTruncation,true"),
    )
    assert world.org.get("Lead", truncated.id)["LastName"] == "x" * 80


# --------------------------------------------------------------------------- typed faults


def test_invalid_session_is_an_auth_error_without_the_token(
    world: SoapWorld, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "00Dxx0000000001!SECRET-TOKEN-VALUE"
    client = world.client(token=secret)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SalesforceAuthError) as excinfo:
        client.create([lead()])
    assert excinfo.value.error_code == "INVALID_SESSION_ID"
    assert excinfo.value.message == "Invalid Session ID found in SessionHeader: Illegal Session"
    for text in (str(excinfo.value), repr(excinfo.value), repr(client), caplog.text):
        assert secret not in text
    assert "SECRET" not in repr(vars(excinfo.value))


def test_expired_token_is_an_auth_error(world: SoapWorld) -> None:
    world.state.expire_access_tokens(world.org.id)
    with pytest.raises(SalesforceAuthError):
        world.client().create([lead()])


def test_request_limit_exceeded_is_rate_limited(world: SoapWorld) -> None:
    world.org.update_settings(daily_api_limit=0)
    with pytest.raises(SalesforceRateLimited) as excinfo:
        world.client().create([lead()])
    assert excinfo.value.error_code == "REQUEST_LIMIT_EXCEEDED"


@pytest.mark.parametrize(
    ("kind", "code"),
    [("server_unavailable", "SERVER_UNAVAILABLE"), ("unable_to_lock_row", "UNABLE_TO_LOCK_ROW")],
)
def test_injected_server_faults_are_transient(world: SoapWorld, kind: str, code: str) -> None:
    world.org.add_fault(kind=kind, count=1, api="soap")
    with pytest.raises(SalesforceTransientError) as excinfo:
        world.client().create([lead()])
    assert excinfo.value.error_code == code
    assert list(world.org.rows("Lead")) == []


def test_dropped_connection_is_transient(world: SoapWorld) -> None:
    world.org.add_fault(kind="drop_connection", count=1, api="soap")
    with pytest.raises(SalesforceTransientError) as excinfo:
        world.client().create([lead()])
    assert excinfo.value.error_code == "CONNECTION_ERROR"
    assert excinfo.value.__cause__ is None  # the cause holds the request body with the token
    host = urlsplit(world.client().endpoint).netloc
    assert excinfo.value.message == f"Could not reach {host} (ConnectionError)."


def test_timeout_is_transient(world: SoapWorld) -> None:
    world.org.add_fault(kind="latency", latency_ms=1500, count=1, api="soap")
    with pytest.raises(SalesforceTransientError) as excinfo:
        world.client(timeout=0.3).create([lead()])
    assert excinfo.value.error_code == "TIMEOUT"
    assert excinfo.value.message.startswith("No answer from ")
    assert "/services/" not in excinfo.value.message  # the host, never the path


def test_a_malformed_rule_id_is_a_validation_error(world: SoapWorld) -> None:
    # Shaped right for the option string, but its checksum is wrong: Salesforce says no.
    headers = parse_header_options("AssignmentRuleHeader,assignmentRuleId,01Q5e000000EXAMPLE")
    with pytest.raises(SalesforceValidationError) as excinfo:
        world.client().create([lead()], headers)
    assert excinfo.value.error_code == "MALFORMED_ID"


def test_client_repr_leaves_the_token_out(world: SoapWorld) -> None:
    client = SoapClient(world.instance_url, "TOKEN-123", session=world.session)
    assert "TOKEN-123" not in repr(client)
