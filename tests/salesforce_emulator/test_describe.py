"""describe() of Lead, Contact and Account as a real org answers it (issue 13, "The org's schema
decides what we send").

Facts: DescribeSObjectResult / DescribeFieldResult / PicklistEntry (docs/salesforce-facts.md
section 2a), default picklists of a new org (SALESFORCE.md section 3), State and Country
picklists (docs/salesforce-facts.md section 3a).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from salesforce_emulator import EmulatorControl

FIELD_KEYS = {
    "name",
    "label",
    "type",
    "length",
    "createable",
    "updateable",
    "nillable",
    "defaultedOnCreate",
    "defaultValue",
    "picklistValues",
    "restrictedPicklist",
    "dependentPicklist",
    "controllerName",
}


def fields_of(described: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in described["fields"]}


def test_describe_field_result_has_the_documented_keys(sf: Salesforce) -> None:
    """DescribeFieldResult: every field carries the keys mapping code reads."""
    for described in (sf.Lead.describe(), sf.Contact.describe(), sf.Account.describe()):
        for f in described["fields"]:
            assert f.keys() >= FIELD_KEYS, f["name"]


def test_lead_fields_types_lengths_and_required(sf: Salesforce) -> None:
    """Field Reference: types and lengths; LastName/Company required (not nillable, no default)."""
    lead = fields_of(sf.Lead.describe())
    assert (lead["Email"]["type"], lead["Email"]["length"]) == ("email", 80)
    assert (lead["Phone"]["type"], lead["Phone"]["length"]) == ("phone", 40)
    assert (lead["Street"]["type"], lead["Street"]["length"]) == ("textarea", 255)
    assert (lead["State"]["type"], lead["State"]["length"]) == ("string", 80)
    assert (lead["FirstName"]["length"], lead["LastName"]["length"]) == (40, 80)
    required = {
        name
        for name, f in lead.items()
        if f["createable"] and not f["nillable"] and not f["defaultedOnCreate"]
    }
    assert required == {"LastName", "Company"}
    assert lead["Name"]["createable"] is False
    assert lead["OwnerId"]["type"] == "reference"
    assert lead["City"]["compoundFieldName"] == "Address"


def test_lead_status_is_a_picklist_defaulted_on_create(sf: Salesforce) -> None:
    """Lead.Status: defaulted on create from the default LeadStatus (SALESFORCE.md section 3)."""
    status = fields_of(sf.Lead.describe())["Status"]
    assert status["type"] == "picklist"
    assert status["defaultedOnCreate"] is True
    assert status["defaultValue"] == "Open - Not Contacted"
    defaults = [p["value"] for p in status["picklistValues"] if p["defaultValue"]]
    assert defaults == ["Open - Not Contacted"]
    entry = status["picklistValues"][0]
    assert set(entry) == {"active", "defaultValue", "label", "validFor", "value"}


def test_lead_source_on_lead_and_contact_includes_web(sf: Salesforce) -> None:
    """LeadSource exists on Lead and on Contact; a new org lists "Web" among its values."""
    for described in (sf.Lead.describe(), sf.Contact.describe()):
        source = fields_of(described)["LeadSource"]
        assert source["type"] == "picklist"
        assert source["restrictedPicklist"] is False
        assert "Web" in [p["value"] for p in source["picklistValues"]]


def test_admin_picklist_values_and_restriction_show_in_describe(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """The org's own values and its restricted flag are what describe returns."""
    emulator_control.set_org_settings(
        emulator_org["org_id"],
        picklist_values={
            "Lead.LeadSource": ["Website", "Referral"],
            "Lead.Status": ["New", "Contacted"],
        },
        default_lead_status="New",
        restricted_picklists=["Lead.LeadSource"],
    )
    lead = fields_of(sf.Lead.describe())
    assert [p["value"] for p in lead["LeadSource"]["picklistValues"]] == ["Website", "Referral"]
    assert lead["LeadSource"]["restrictedPicklist"] is True
    assert lead["Status"]["defaultValue"] == "New"
    contact = fields_of(sf.Contact.describe())
    assert contact["LeadSource"]["restrictedPicklist"] is False  # a per-field switch


def test_code_fields_exist_only_with_state_and_country_picklists(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """Describe shows whether the *Code fields exist: that is how integrations detect the
    feature (SALESFORCE.md 3a)."""
    assert "StateCode" not in fields_of(sf.Lead.describe())
    emulator_control.set_org_settings(
        emulator_org["org_id"], state_country_picklists=True, default_country="US"
    )
    lead = fields_of(sf.Lead.describe())
    contact = fields_of(sf.Contact.describe())
    account = fields_of(sf.Account.describe())
    assert {"MailingStateCode", "MailingCountryCode"} <= contact.keys()
    assert {"BillingStateCode", "BillingCountryCode"} <= account.keys()
    country = lead["CountryCode"]
    assert country["type"] == "picklist" and country["restrictedPicklist"] is True
    assert country["defaultValue"] == "US"
    labels = {p["value"]: p["label"] for p in country["picklistValues"]}
    assert labels["US"] == "United States" and labels["GB"] == "United Kingdom"
    state = lead["StateCode"]
    assert state["dependentPicklist"] is True and state["controllerName"] == "CountryCode"
    california = next(p for p in state["picklistValues"] if p["value"] == "CA")
    assert california["label"] == "California"
    # validFor: bit i (most significant first) = the i-th CountryCode value.
    index = [p["value"] for p in country["picklistValues"]].index("US")
    bits = base64.b64decode(california["validFor"])
    assert bits[index // 8] & (0x80 >> (index % 8))
    ontario = next(p for p in state["picklistValues"] if p["value"] == "ON")
    assert not base64.b64decode(ontario["validFor"])[index // 8] & (0x80 >> (index % 8))


def test_code_fields_are_invalid_in_an_org_without_the_feature(sf: Salesforce) -> None:
    """Without the feature the *Code columns do not exist: INVALID_FIELD on write."""
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({"LastName": "Reed", "Company": "Acme", "StateCode": "CA"})
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD"
