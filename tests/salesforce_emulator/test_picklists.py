"""Restricted picklists as a per-field org switch (issue 13, case 4).

Fact (docs/salesforce-facts.md section 3a): a restricted picklist refuses a value outside its
list with INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST ("<Label>: bad value for restricted picklist
field: X"); an unrestricted one accepts any value through the API.
"""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from salesforce_emulator import (
    EmulatorControl,
    EmulatorControlError,
    SalesforceError,
    WriteOptions,
)

LEAD = {"LastName": "Reed", "Company": "Reed Plumbing"}


@pytest.fixture
def restricted_source(emulator_control: EmulatorControl, emulator_org: dict[str, Any]) -> str:
    org_id = emulator_org["org_id"]
    emulator_control.set_org_settings(org_id, restricted_picklists=["Lead.LeadSource"])
    return org_id


def test_unrestricted_picklist_accepts_any_value(sf: Salesforce) -> None:
    """A new org's LeadSource is not restricted: a source name not in the list is stored."""
    lead = sf.Lead.create({**LEAD, "LeadSource": "Spring Fair 2026"})["id"]
    assert sf.Lead.get(lead)["LeadSource"] == "Spring Fair 2026"


def test_restricted_picklist_refuses_a_value_outside_the_list(
    sf: Salesforce, restricted_source: str
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({**LEAD, "LeadSource": "Spring Fair 2026"})
    error = caught.value.content[0]
    assert error["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert (
        error["message"] == "Lead Source: bad value for restricted picklist field: Spring Fair 2026"
    )
    assert error["fields"] == ["LeadSource"]
    assert sf.Lead.create({**LEAD, "LeadSource": "Web"})["success"] is True


def test_restricted_picklist_refuses_on_update_too(sf: Salesforce, restricted_source: str) -> None:
    lead = sf.Lead.create({**LEAD, "LeadSource": "Web"})["id"]
    with pytest.raises(SalesforceMalformedRequest):
        sf.Lead.update(lead, {"LeadSource": "Billboard"})
    assert sf.Lead.get(lead)["LeadSource"] == "Web"


def test_admin_values_decide_what_a_restricted_picklist_takes(
    sf: Salesforce, emulator_control: EmulatorControl, restricted_source: str
) -> None:
    """Admin-configured lists: "Web" is gone in this org, "Website" is in."""
    emulator_control.set_org_settings(
        restricted_source, picklist_values={"Lead.LeadSource": ["Website", "Referral"]}
    )
    with pytest.raises(SalesforceMalformedRequest):
        sf.Lead.create({**LEAD, "LeadSource": "Web"})
    assert sf.Lead.create({**LEAD, "LeadSource": "Website"})["success"] is True


def test_restriction_is_per_field(sf: Salesforce, restricted_source: str) -> None:
    """Lead.LeadSource restricted leaves Contact.LeadSource open."""
    assert sf.Contact.create({"LastName": "Reed", "LeadSource": "Billboard"})["success"] is True


def test_soap_writes_get_the_same_error(sf_emulator: Any, restricted_source: str) -> None:
    org = sf_emulator.state.org(restricted_source)
    with pytest.raises(SalesforceError) as caught:
        org.create("Lead", {**LEAD, "LeadSource": "Billboard"}, WriteOptions(api="soap"))
    assert caught.value.error_code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


def test_settings_must_name_picklist_fields(
    emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    with pytest.raises(EmulatorControlError):
        emulator_control.set_org_settings(
            emulator_org["org_id"], restricted_picklists=["Lead.Email"]
        )
    with pytest.raises(EmulatorControlError):
        emulator_control.set_org_settings(
            emulator_org["org_id"], picklist_values={"Lead.Status": ["New"]}
        )  # the default status "Open - Not Contacted" would no longer be a value


def test_lead_source_values_are_shared_by_leads_and_contacts(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """One Lead Source value set serves Lead and Contact (StandardValueSet "LeadSource")."""
    emulator_control.set_org_settings(
        emulator_org["org_id"],
        picklist_values={"Lead.LeadSource": ["Website", "Referral"]},
        restricted_picklists=["Contact.LeadSource"],
    )
    source = next(f for f in sf.Contact.describe()["fields"] if f["name"] == "LeadSource")
    assert [p["value"] for p in source["picklistValues"]] == ["Website", "Referral"]
    with pytest.raises(SalesforceMalformedRequest):
        sf.Contact.create({"LastName": "Reed", "LeadSource": "Web"})
