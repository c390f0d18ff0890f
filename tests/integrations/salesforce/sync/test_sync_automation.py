"""Salesforce's own automation, as seeds 000 and 001 describe it, read from the emulator's email
log and records: auto-response once for a created Lead when asked, never on updates; the assigned
owner notified only with triggerUserEmail; REST creates assign as the source says; updates never
re-run assignment."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.salesforce.models import SyncStatus
from tests.integrations.salesforce.sync_support import (  # noqa: F401  (fixtures)
    PERSON,
    connection,
    enable,
    send,
)

pytestmark = pytest.mark.django_db

AUTO_RESPONSE = "EmailHeader,triggerAutoResponseEmail,true"
ASSIGN_AND_NOTIFY = "AssignmentRuleHeader,useDefaultRule,true;EmailHeader,triggerUserEmail,true"
ASSIGN = "AssignmentRuleHeader,useDefaultRule,true"


@pytest.fixture
def bob(control, org) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A sales rep the org's active assignment rule gives every Lead to."""
    user = control.add_user(
        org["org_id"], "bob@joesorg.example", first_name="Bob", last_name="Rep",
        email="bob@joesorg.example",
    )  # fmt: skip
    control.set_assignment_rule(org["org_id"], "Lead", [{"assign_to": user["id"], "criteria": {}}])
    return user


@pytest.fixture
def auto_response_rule(control, org) -> None:  # type: ignore[no-untyped-def]
    control.set_auto_response_rule(
        org["org_id"],
        "Lead",
        [{"template": "Thanks", "from_address": "hello@joes.example", "subject": "Thanks!"}],
    )


def emails(control: Any, org: dict[str, Any], kind: str | None = None) -> list[dict[str, Any]]:
    return [e for e in control.emails(org["org_id"]) if kind is None or e["kind"] == kind]


def write_calls(control: Any, org: dict[str, Any]) -> list[dict[str, Any]]:
    """The org's write calls (REST POST/PATCH on sObjects, and every SOAP call)."""
    return [
        c
        for c in control.calls(org["org_id"])
        if c["api"] == "soap" or (c["method"] in ("POST", "PATCH") and "/sobjects/" in c["path"])
    ]


def admin_id(org: dict[str, Any]) -> str:
    return org["users"][0]["id"]


# --------------------------------------------------------------------------- seed 000


def test_auto_response_is_sent_once_for_a_created_lead_when_asked(
    business, connection, control, org, auto_response_rule
):  # type: ignore[no-untyped-def]
    enable(business, header_options=AUTO_RESPONSE)
    sync = send(business, **PERSON)
    assert sync.status == SyncStatus.CREATED
    (email,) = emails(control, org)
    assert (email["kind"], email["to"], email["record_id"], email["api"]) == (
        "auto_response",
        "ann@example.com",
        sync.record_id,
        "soap",
    )
    assert sync.attempts.get().detail["api"] == "soap"

    # Updates never send it again: neither a change of this inquiry nor another inquiry of the
    # same person.
    send(business, city="Shelbyville")
    send(business, "inq-2", first_name="Ann", email="ann@example.com", city="Ogdenville")
    assert len(emails(control, org)) == 1
    assert sync.attempts.count() == 2  # the first inquiry's create and its update


def test_no_auto_response_when_not_asked(business, connection, control, org, auto_response_rule):  # type: ignore[no-untyped-def]
    enable(business, header_options="")
    sync = send(business, **PERSON)
    assert sync.status == SyncStatus.CREATED
    assert emails(control, org) == []
    (create,) = write_calls(control, org)
    assert create["api"] == "rest"


# --------------------------------------------------------------------------- seed 001


def test_owner_is_notified_only_with_trigger_user_email(business, connection, control, org, bob):  # type: ignore[no-untyped-def]
    enable(business, header_options=ASSIGN_AND_NOTIFY)
    sync = send(business, **PERSON)
    lead = control.record(org["org_id"], "Lead", sync.record_id)
    assert lead["OwnerId"] == bob["id"]
    (email,) = emails(control, org)
    assert (email["kind"], email["to"]) == ("assignment_notification", "bob@joesorg.example")


def test_assignment_without_trigger_user_email_assigns_through_rest_and_notifies_nobody(
    business, connection, control, org, bob
):  # type: ignore[no-untyped-def]
    enable(business, header_options=ASSIGN)
    sync = send(business, **PERSON)
    lead = control.record(org["org_id"], "Lead", sync.record_id)
    assert lead["OwnerId"] == bob["id"]
    assert emails(control, org) == []
    (create,) = write_calls(control, org)
    assert create["api"] == "rest"
    assert create["headers"]["Sforce-Auto-Assign"] == "TRUE"


def test_a_rule_id_is_passed_to_rest_assignment(business, connection, control, org):  # type: ignore[no-untyped-def]
    user = control.add_user(org["org_id"], "cy@joesorg.example", email="cy@joesorg.example")
    rule = control.set_assignment_rule(
        org["org_id"], "Lead", [{"assign_to": user["id"], "criteria": {}}], active=False
    )
    enable(business, header_options=f"AssignmentRuleHeader,assignmentRuleId,{rule['id']}")
    sync = send(business, **PERSON)
    assert control.record(org["org_id"], "Lead", sync.record_id)["OwnerId"] == user["id"]
    (create,) = write_calls(control, org)
    assert create["headers"]["Sforce-Auto-Assign"] == rule["id"]


def test_without_assignment_rest_creates_say_false_and_keep_the_connected_user(
    business, connection, control, org, bob
):  # type: ignore[no-untyped-def]
    enable(business, header_options="")
    sync = send(business, **PERSON)
    assert control.record(org["org_id"], "Lead", sync.record_id)["OwnerId"] == admin_id(org)
    (create,) = write_calls(control, org)
    assert create["headers"]["Sforce-Auto-Assign"] == "FALSE"


def test_updates_never_rerun_assignment_over_rest(business, connection, control, org, bob):  # type: ignore[no-untyped-def]
    settings_row = enable(business, header_options="")
    sync = send(business, **PERSON)
    settings_row.header_options = ASSIGN
    settings_row.save()

    sync = send(business, city="Shelbyville")
    assert sync.status == SyncStatus.UPDATED
    lead = control.record(org["org_id"], "Lead", sync.record_id)
    assert (lead["City"], lead["OwnerId"]) == ("Shelbyville", admin_id(org))
    update = write_calls(control, org)[-1]
    assert (update["method"], update["headers"]["Sforce-Auto-Assign"]) == ("PATCH", "FALSE")


def test_updates_never_rerun_assignment_or_notify_over_soap(
    business, connection, control, org, bob, auto_response_rule
):  # type: ignore[no-untyped-def]
    settings_row = enable(business, header_options="")
    sync = send(business, **PERSON)
    settings_row.header_options = f"{ASSIGN_AND_NOTIFY};EmailHeader,triggerAutoResponseEmail,true"
    settings_row.save()

    sync = send(business, city="Shelbyville")
    assert sync.status == SyncStatus.UPDATED
    assert sync.attempts.first().detail["api"] == "soap"
    lead = control.record(org["org_id"], "Lead", sync.record_id)
    assert (lead["City"], lead["OwnerId"]) == ("Shelbyville", admin_id(org))
    assert emails(control, org) == []


def test_email_to_outside_addresses_goes_through_soap(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business, header_options="EmailHeader,triggerOtherEmail,true")
    sync = send(business, **PERSON)
    assert sync.status == SyncStatus.CREATED
    (create,) = write_calls(control, org)
    assert create["api"] == "soap"
