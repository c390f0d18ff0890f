"""Duplicate rules that match on name and company (issue 13, case 6).

Fact (docs/salesforce-facts.md section 3a, "Duplicate rules"): the standard Lead and Contact
matching rules match first name (fuzzy), last name and company, not only email, so the record a
DUPLICATES_DETECTED result names may be a different person. The emulator's fuzziness is
exact-ish (salesforce_emulator/matching.py says how).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from salesforce_emulator import EmulatorControl, EmulatorControlError
from salesforce_emulator.matching import first_names_match
from tests.salesforce_emulator.conftest import salesforce

ANN = {
    "FirstName": "Ann",
    "LastName": "Reed",
    "Company": "Reed Plumbing",
    "Email": "ann.reed@example.com",
}


def name_rule(control: EmulatorControl, org_id: str, sobject: str = "Lead", **options: Any) -> None:
    control.set_duplicate_rule(org_id, sobject, match_fields=["Email", "NameAndCompany"], **options)


def test_block_rule_names_another_person_with_the_same_name_and_company(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """A Block rule: a second Ann Reed at Reed Plumbing, other email, is refused and the
    DuplicateResult (REST duplicateResut) names the first one."""
    name_rule(emulator_control, emulator_org["org_id"], allow_save=False)
    first = sf.Lead.create(ANN)["id"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create(
            {**ANN, "Email": "ann@otherhome.example.com", "Company": "Reed Plumbing Inc"}
        )
    (error,) = caught.value.content
    assert error["errorCode"] == "DUPLICATES_DETECTED"
    result = error["duplicateResut"]
    assert result["allowSave"] is False
    assert result["matchResults"][0]["matchRecords"][0]["record"]["Id"] == first
    with pytest.raises(SalesforceMalformedRequest):  # the header cannot pass a Block rule
        sf.Lead.create(
            {**ANN, "Email": "ann@otherhome.example.com"},
            headers={"Sforce-Duplicate-Rule-Header": "allowSave=true"},
        )


def test_allow_rule_lets_the_header_save_the_new_person(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """An Allow (alert) rule answers allowSave true and the header saves the record."""
    name_rule(emulator_control, emulator_org["org_id"], allow_save=True)
    sf.Lead.create(ANN)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({**ANN, "Email": "other@example.com"})
    assert caught.value.content[0]["duplicateResut"]["allowSave"] is True
    created = sf.Lead.create(
        {**ANN, "Email": "other@example.com"},
        headers={"Sforce-Duplicate-Rule-Header": "allowSave=true"},
    )
    assert created["success"] is True


def test_different_first_name_or_company_is_no_match(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """Tom Reed and Ann Reed of the same company, or Ann Reed of another company, differ."""
    name_rule(emulator_control, emulator_org["org_id"], allow_save=False)
    sf.Lead.create(ANN)
    assert sf.Lead.create({**ANN, "FirstName": "Tom", "Email": "tom@example.com"})["success"]
    assert sf.Lead.create({**ANN, "Company": "Acme Bakery", "Email": "a2@example.com"})["success"]


def test_without_the_name_rule_only_email_matches(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """An org whose rule matches on email only (the switch off) saves the namesake."""
    emulator_control.set_duplicate_rule(
        emulator_org["org_id"], "Lead", match_fields=["Email"], allow_save=False
    )
    sf.Lead.create(ANN)
    assert sf.Lead.create({**ANN, "Email": "other@example.com"})["success"] is True


def test_contact_rule_compares_the_account_name(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """The Contact's company is its Account's name."""
    name_rule(emulator_control, emulator_org["org_id"], "Contact", allow_save=False)
    account = sf.Account.create({"Name": "Reed Plumbing"})["id"]
    other = sf.Account.create({"Name": "Reed Plumbing, Inc."})["id"]
    contact = {"FirstName": "Ann", "LastName": "Reed", "AccountId": account}
    sf.Contact.create({**contact, "Email": "ann@example.com"})
    with pytest.raises(SalesforceMalformedRequest):
        sf.Contact.create({**contact, "AccountId": other, "Email": "ann2@example.com"})


def test_fuzzy_first_names_are_exact_ish() -> None:
    assert first_names_match("Ann", "ann")
    assert first_names_match("A.", "Ann")
    assert first_names_match("Bob", "Robert")
    assert not first_names_match("Ann", "Tom")
    assert not first_names_match("", "Ann")  # blank fields never match


def test_name_and_company_is_for_leads_and_contacts(
    emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    with pytest.raises(EmulatorControlError):
        name_rule(emulator_control, emulator_org["org_id"], "Account")


def test_simultaneous_namesakes_under_a_block_rule_save_exactly_one(
    sf_emulator: Any,
    emulator_token: dict[str, Any],
    emulator_control: EmulatorControl,
    emulator_org: dict[str, Any],
) -> None:
    """Eight callers create the same Ann Reed at once (other emails): the rule check and the
    insert are one step, so one is saved and seven get DUPLICATES_DETECTED."""
    name_rule(emulator_control, emulator_org["org_id"], allow_save=False)

    def create(n: int) -> str:
        client = salesforce(sf_emulator, emulator_token)
        try:
            client.Lead.create({**ANN, "Email": f"ann{n}@example.com"})
        except SalesforceMalformedRequest as exc:
            return str(exc.content[0]["errorCode"])
        return "created"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = sorted(pool.map(create, range(8)))
    assert outcomes == ["DUPLICATES_DETECTED"] * 7 + ["created"]
    assert len(emulator_control.records(emulator_org["org_id"], "Lead")) == 1
