"""Salesforce automation on API writes: assignment rules, duplicate rules, auto-response rules.

REST behaviour is driven with simple-salesforce; the email side (SOAP-only headers) is checked
on the shared core with WriteOptions, the same object the SOAP endpoint builds from its headers.
Facts: ../shared/SALESFORCE.md sections 2 and 7, seeds 000, 001 and 002.
"""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from salesforce_emulator import EmulatorControl, EmulatorServer, WriteOptions
from salesforce_emulator.client import EmulatorControlError

LEAD = {"LastName": "Doe", "Company": "Acme", "Email": "jane@example.com"}


@pytest.fixture
def routing(emulator_control: EmulatorControl, emulator_org: dict[str, Any]) -> dict[str, str]:
    """A seller, a queue and a default Lead rule: Phone Inquiry -> seller, else -> queue."""
    org_id = emulator_org["org_id"]
    seller = emulator_control.add_user(
        org_id, "seller@acme.example.com", first_name="Sam", last_name="Seller"
    )
    queue = emulator_control.add_queue(org_id, "Web Leads", member_ids=[seller["id"]])
    rule = emulator_control.set_assignment_rule(
        org_id,
        "Lead",
        [
            {"assign_to": seller["id"], "criteria": {"LeadSource": "Phone Inquiry"}},
            {"assign_to": queue["id"], "criteria": {}},
        ],
    )
    return {"seller": seller["id"], "queue": queue["id"], "rule": rule["id"]}


def test_rest_runs_the_default_assignment_rule_on_create(
    sf: Salesforce, routing: dict[str, str]
) -> None:
    """Sforce-Auto-Assign absent = TRUE: active rules run; ordered entries, first match wins."""
    web = sf.Lead.create({**LEAD, "LeadSource": "Web"})["id"]
    phone = sf.Lead.create({**LEAD, "LeadSource": "Phone Inquiry"})["id"]
    assert sf.Lead.get(web)["OwnerId"] == routing["queue"]
    assert sf.Lead.get(phone)["OwnerId"] == routing["seller"]


def test_auto_assign_false_keeps_the_caller_as_owner(
    sf: Salesforce, routing: dict[str, str], emulator_org: dict[str, Any]
) -> None:
    """Sforce-Auto-Assign: FALSE (case-insensitive) runs no rule."""
    lead = sf.Lead.create(LEAD, headers={"Sforce-Auto-Assign": "false"})["id"]
    assert sf.Lead.get(lead)["OwnerId"] == emulator_org["users"][0]["id"]


def test_rest_update_reassigns_unless_auto_assign_false(
    sf: Salesforce, routing: dict[str, str]
) -> None:
    """Assignment rules fire on REST *update* too (simple-salesforce#419, jsforce#119)."""
    lead = sf.Lead.create(LEAD, headers={"Sforce-Auto-Assign": "FALSE"})["id"]
    sf.Lead.update(lead, {"LeadSource": "Phone Inquiry"}, headers={"Sforce-Auto-Assign": "FALSE"})
    assert sf.Lead.get(lead)["OwnerId"] != routing["seller"]
    sf.Lead.update(lead, {"City": "Oakland"})  # no header: the owner silently changes
    assert sf.Lead.get(lead)["OwnerId"] == routing["seller"]


def test_rule_id_in_auto_assign_header(
    sf: Salesforce,
    routing: dict[str, str],
    emulator_control: EmulatorControl,
    emulator_org: dict[str, Any],
) -> None:
    """Sforce-Auto-Assign may carry an AssignmentRule Id instead of TRUE (applies to creates)."""
    other = emulator_control.set_assignment_rule(
        emulator_org["org_id"],
        "Lead",
        [{"assign_to": routing["seller"], "criteria": {}}],
        name="Everything to Sam",
        active=False,
    )
    lead = sf.Lead.create(LEAD, headers={"Sforce-Auto-Assign": other["id"]})["id"]
    assert sf.Lead.get(lead)["OwnerId"] == routing["seller"]
    rules = sf.query("SELECT Id, Name FROM AssignmentRule WHERE SobjectType = 'Lead'")
    assert rules["totalSize"] == 2


def test_rest_never_sends_emails(
    sf: Salesforce,
    routing: dict[str, str],
    emulator_control: EmulatorControl,
    emulator_org: dict[str, Any],
) -> None:
    """REST has no EmailHeader: no auto-response, no owner notification (seed 001, section 7)."""
    emulator_control.set_auto_response_rule(
        emulator_org["org_id"],
        "Lead",
        [{"template": "Thanks", "from_address": "hello@acme.example.com"}],
    )
    sf.Lead.create({**LEAD, "LeadSource": "Phone Inquiry"})
    assert emulator_control.emails(emulator_org["org_id"]) == []


def test_duplicate_rule_body_is_the_real_rest_shape(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """DUPLICATES_DETECTED 400 with the misspelled duplicateResut key (section 2)."""
    emulator_control.set_duplicate_rule(
        emulator_org["org_id"],
        "Lead",
        match_fields=["Email"],
        name="Standard_Lead_Duplicate_Rule",
        match_rule="Standard_Lead_Match_Rule_v1_0",
    )
    first = sf.Lead.create(LEAD)["id"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({**LEAD, "Email": "JANE@example.com"})  # matched case-insensitively
    (error,) = caught.value.content
    assert error["errorCode"] == "DUPLICATES_DETECTED"
    assert error["message"] == "Use one of these records?"
    result = error["duplicateResut"]
    assert "duplicateResult" not in error
    assert result["allowSave"] is True
    assert result["duplicateRule"] == "Standard_Lead_Duplicate_Rule"
    assert result["duplicateRuleEntityType"] == "Lead"
    (match,) = result["matchResults"]
    assert match["entityType"] == "Lead" and match["rule"] == "Standard_Lead_Match_Rule_v1_0"
    assert match["size"] == 1 and match["success"] is True
    assert match["matchRecords"][0]["record"] == {
        "attributes": {"type": "Lead", "url": f"/services/data/v59.0/sobjects/Lead/{first}"},
        "Id": first,
    }
    assert match["matchRecords"][0]["matchConfidence"] == 100.0


def test_duplicate_rule_header_allow_save(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """Sforce-Duplicate-Rule-Header: allowSave=true lets an Allow+alert rule's match through."""
    emulator_control.set_duplicate_rule(emulator_org["org_id"], "Lead", match_fields=["Phone"])
    sf.Lead.create({**LEAD, "Phone": "+1 (415) 555-1212"})
    with pytest.raises(SalesforceMalformedRequest):
        sf.Lead.create({**LEAD, "Phone": "415.555.1212"})
    saved = sf.Lead.create(
        {**LEAD, "Phone": "415.555.1212"},
        headers={"Sforce-Duplicate-Rule-Header": "allowSave=true"},
    )
    assert saved["success"] is True


def test_blocking_duplicate_rule_ignores_allow_save(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """A Block rule reports allowSave false and the header cannot override it."""
    emulator_control.set_duplicate_rule(emulator_org["org_id"], "Lead", allow_save=False)
    sf.Lead.create(LEAD)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create(LEAD, headers={"Sforce-Duplicate-Rule-Header": "allowSave=true"})
    assert caught.value.content[0]["duplicateResut"]["allowSave"] is False


def test_account_rule_matches_company_names_without_legal_suffixes(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """Fuzzy: Company Name removes words such as Inc and Corp and ignores case (Salesforce Help,
    "Matching Methods Used with Matching Rules"); a different company is not a match."""
    emulator_control.set_duplicate_rule(
        emulator_org["org_id"], "Account", match_fields=["Name"], allow_save=False
    )
    first = sf.Account.create({"Name": "Acme, Inc."})["id"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Account.create({"Name": "ACME Corp"})
    (error,) = caught.value.content
    assert error["errorCode"] == "DUPLICATES_DETECTED"
    (match,) = error["duplicateResut"]["matchResults"]
    assert [r["record"]["Id"] for r in match["matchRecords"]] == [first]
    assert sf.Account.create({"Name": "Acme Bakery"})["success"] is True


def test_a_name_match_is_only_for_accounts(
    emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    with pytest.raises(EmulatorControlError) as caught:
        emulator_control.set_duplicate_rule(emulator_org["org_id"], "Lead", match_fields=["Name"])
    assert "Account matching rule" in str(caught.value)


# ---------------------------------------------------------------- core: the SOAP-only emails


@pytest.fixture
def core_org(sf_emulator: EmulatorServer, emulator_org: dict[str, Any]) -> Any:
    return sf_emulator.state.org(emulator_org["org_id"])


def _auto_response(control: EmulatorControl, org_id: str) -> None:
    control.set_auto_response_rule(
        org_id,
        "Lead",
        [
            {
                "template": "Phone confirmation",
                "from_address": "phone@acme.example.com",
                "criteria": {"LeadSource": "Phone Inquiry"},
                "subject": "Thanks {!Lead.FirstName}",
            },
            {"template": "General confirmation", "from_address": "hello@acme.example.com"},
        ],
    )


def test_auto_response_only_with_trigger_auto_response_email(
    core_org: Any, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """Seed 000: API-created Leads get the auto-response only with triggerAutoResponseEmail."""
    _auto_response(emulator_control, emulator_org["org_id"])
    core_org.create("Lead", dict(LEAD), WriteOptions(api="soap"))
    assert emulator_control.emails(emulator_org["org_id"]) == []
    lead = core_org.create(
        "Lead",
        {**LEAD, "FirstName": "Jane", "LeadSource": "Phone Inquiry"},
        WriteOptions(api="soap", trigger_auto_response=True),
    )
    (email,) = emulator_control.emails(emulator_org["org_id"])
    # Seed 002: entries in priority order, first match wins, one email per created record.
    assert email["kind"] == "auto_response" and email["status"] == "sent"
    assert email["to"] == LEAD["Email"] and email["from"] == "phone@acme.example.com"
    assert email["template"] == "Phone confirmation" and email["subject"] == "Thanks Jane"
    assert email["record_id"] == lead and email["sobject"] == "Lead"
    core_org.update(
        "Lead", lead, {"City": "X"}, WriteOptions(api="soap", trigger_auto_response=True)
    )
    assert len(emulator_control.emails(emulator_org["org_id"])) == 1  # creates only


def test_case_auto_response_uses_supplied_email(
    core_org: Any, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """Seed 002: Case auto-response rule; the Case Number appears in the subject."""
    emulator_control.set_auto_response_rule(
        emulator_org["org_id"],
        "Case",
        [
            {
                "template": "Email Receipt Confirmation",
                "from_address": "support@example.com",
                "criteria": {"Origin": "Email"},
            },
            {"template": "General Confirmation", "from_address": "support@example.com"},
        ],
    )
    case = core_org.create(
        "Case",
        {"Subject": "Leak", "SuppliedEmail": "c@example.com", "Origin": "Web"},
        WriteOptions(api="soap", trigger_auto_response=True),
    )
    (email,) = emulator_control.emails(emulator_org["org_id"])
    number = core_org.get("Case", case)["CaseNumber"]
    assert email["template"] == "General Confirmation" and number in email["subject"]


def test_daily_email_cap(
    core_org: Any, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """Seed 002: auto-responses count against the org's daily email cap (5,000 by default)."""
    _auto_response(emulator_control, emulator_org["org_id"])
    emulator_control.set_org_settings(emulator_org["org_id"], daily_email_limit=1)
    options = WriteOptions(api="soap", trigger_auto_response=True)
    core_org.create("Lead", dict(LEAD), options)
    core_org.create("Lead", {**LEAD, "Email": "b@example.com"}, options)
    statuses = [e["status"] for e in emulator_control.emails(emulator_org["org_id"])]
    assert statuses == ["sent", "suppressed_daily_limit"]


def test_assignment_notification_only_with_trigger_user_email(
    core_org: Any,
    routing: dict[str, str],
    emulator_control: EmulatorControl,
    emulator_org: dict[str, Any],
) -> None:
    """Seed 001: AssignmentRuleHeader assigns; notification only with triggerUserEmail."""
    org_id = emulator_org["org_id"]
    core_org.create("Lead", {**LEAD, "LeadSource": "Phone Inquiry"}, WriteOptions(api="soap"))
    assert core_org.rows("Lead")  # created, no rule ran without the header
    assigned = core_org.create(
        "Lead",
        {**LEAD, "LeadSource": "Phone Inquiry"},
        WriteOptions(api="soap", assignment="default"),
    )
    assert core_org.get("Lead", assigned)["OwnerId"] == routing["seller"]
    assert emulator_control.emails(org_id) == []
    core_org.create(
        "Lead",
        {**LEAD, "LeadSource": "Phone Inquiry"},
        WriteOptions(api="soap", assignment="default", trigger_user_email=True),
    )
    (email,) = emulator_control.emails(org_id)
    assert email["kind"] == "assignment_notification"
    assert email["to"] == "seller@acme.example.com"
    # A queue owner: its members are notified.
    core_org.create(
        "Lead",
        {**LEAD, "LeadSource": "Web"},
        WriteOptions(api="soap", assignment=routing["rule"], trigger_user_email=True),
    )
    assert emulator_control.emails(org_id)[-1]["to"] == "seller@acme.example.com"
    assert len(emulator_control.emails(org_id)) == 2


def test_soap_without_assignment_header_keeps_owner(
    core_org: Any, routing: dict[str, str], emulator_org: dict[str, Any]
) -> None:
    """SOAP applies rules only with AssignmentRuleHeader (section 7 table)."""
    lead = core_org.create(
        "Lead", {**LEAD, "LeadSource": "Phone Inquiry"}, WriteOptions(api="soap")
    )
    assert core_org.get("Lead", lead)["OwnerId"] == emulator_org["users"][0]["id"]


def test_allow_field_truncation(core_org: Any) -> None:
    """AllowFieldTruncationHeader: with true, over-length strings are truncated."""
    lead = core_org.create(
        "Lead", {**LEAD, "City": "x" * 50}, WriteOptions(api="soap", allow_field_truncation=True)
    )
    assert core_org.get("Lead", lead)["City"] == "x" * 40


def test_an_unknown_rule_id_refuses_the_write_and_saves_nothing(
    sf: Salesforce,
    routing: dict[str, str],
    emulator_control: EmulatorControl,
    emulator_org: dict[str, Any],
) -> None:
    """A refused API write leaves no record behind (the error comes before the save)."""
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create(LEAD, headers={"Sforce-Auto-Assign": "01Q000000000001"})
    assert caught.value.content[0]["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"
    assert emulator_control.records(emulator_org["org_id"], "Lead") == []


def test_active_lead_assignment_rules_are_readable_by_soql(
    sf: Salesforce, routing: dict[str, str], emulator_control: EmulatorControl, emulator_org: Any
) -> None:
    """AssignmentRule is a read-only sObject (Id, Name, SobjectType, Active; Field Reference
    "AssignmentRule"): the card's rule picker lists the org's active Lead rules only."""
    emulator_control.set_assignment_rule(
        emulator_org["org_id"], "Lead", [{"assign_to": routing["seller"]}], active=False
    )
    emulator_control.set_assignment_rule(
        emulator_org["org_id"], "Case", [{"assign_to": routing["seller"]}], name="Cases"
    )
    rows = sf.query(
        "SELECT Id, Name, SobjectType, Active FROM AssignmentRule "
        "WHERE SobjectType = 'Lead' AND Active = true"
    )["records"]
    assert [(r["Id"], r["Name"], r["SobjectType"], r["Active"]) for r in rows] == [
        (routing["rule"], "Default assignment", "Lead", True)
    ]
    assert rows[0]["attributes"]["type"] == "AssignmentRule"
