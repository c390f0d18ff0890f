"""State and Country/Territory picklists on writes (issue 13, case 3).

Facts (docs/salesforce-facts.md section 3a): with the feature on, text fields take only the full
integration value and the *Code fields take ISO codes; a code fills the text and a text fills
the code; a state must belong to its country; a State without a Country fails with
FIELD_INTEGRITY_EXCEPTION unless the org has a default country. Off: plain text.
"""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from salesforce_emulator import EmulatorControl, EmulatorControlError

LEAD = {"LastName": "Reed", "Company": "Reed Plumbing"}
STATE_TEXT_ERROR = (
    "There's a problem with this state, even though it may appear correct. Please select a "
    "state from the list of valid states.: State/Province"
)
COUNTRY_TEXT_ERROR = (
    "There's a problem with this country, even though it may appear correct. Please select a "
    "country/territory from the list of valid countries.: Country"
)


@pytest.fixture
def picklists_on(emulator_control: EmulatorControl, emulator_org: dict[str, Any]) -> str:
    org_id = emulator_org["org_id"]
    emulator_control.set_org_settings(org_id, state_country_picklists=True)
    return org_id


def refused(sf: Salesforce, sobject: str, fields: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        getattr(sf, sobject).create(fields)
    error: dict[str, Any] = caught.value.content[0]
    return error


def test_text_fields_are_free_text_when_the_feature_is_off(sf: Salesforce) -> None:
    """An org without the feature stores State/Country as typed."""
    lead = sf.Lead.create({**LEAD, "State": "CA", "Country": "USA"})["id"]
    stored = sf.Lead.get(lead)
    assert (stored["State"], stored["Country"]) == ("CA", "USA")
    assert "StateCode" not in stored


def test_codes_fill_the_text_fields(sf: Salesforce, picklists_on: str) -> None:
    """Field-syncing logic: a valid code fills the integration value."""
    lead = sf.Lead.create({**LEAD, "StateCode": "CA", "CountryCode": "US"})["id"]
    stored = sf.Lead.get(lead)
    assert (stored["State"], stored["Country"]) == ("California", "United States")
    assert (stored["StateCode"], stored["CountryCode"]) == ("CA", "US")


def test_full_labels_fill_the_codes(sf: Salesforce, picklists_on: str) -> None:
    """Field-syncing logic: a valid integration value fills the code."""
    contact = sf.Contact.create(
        {"LastName": "Reed", "MailingState": "Ontario", "MailingCountry": "Canada"}
    )["id"]
    stored = sf.Contact.get(contact)
    assert (stored["MailingStateCode"], stored["MailingCountryCode"]) == ("ON", "CA")


def test_a_code_in_the_text_field_is_refused(sf: Salesforce, picklists_on: str) -> None:
    """The text fields take only full names: "CA" in State fails with the state error."""
    error = refused(sf, "Lead", {**LEAD, "State": "CA", "Country": "United States"})
    assert error["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert error["message"] == STATE_TEXT_ERROR
    assert error["fields"] == ["State"]


def test_an_unknown_country_text_is_refused(sf: Salesforce, picklists_on: str) -> None:
    """ "USA" is not the integration value "United States": the country error."""
    error = refused(sf, "Lead", {**LEAD, "Country": "USA"})
    assert (error["errorCode"], error["message"]) == (
        "FIELD_INTEGRITY_EXCEPTION",
        COUNTRY_TEXT_ERROR,
    )
    assert error["fields"] == ["Country"]


def test_an_unknown_country_code_is_a_restricted_picklist_error(
    sf: Salesforce, picklists_on: str
) -> None:
    """Help 000386448: "<Label>: bad value for restricted picklist field: <value>"."""
    error = refused(sf, "Account", {"Name": "Acme", "BillingCountryCode": "XX"})
    assert error["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert error["message"] == "Billing Country Code: bad value for restricted picklist field: XX"


def test_an_unknown_state_code_names_the_field(sf: Salesforce, picklists_on: str) -> None:
    """ "The StateCode field contains Zz, which isn't an available state." """
    error = refused(sf, "Lead", {**LEAD, "StateCode": "Zz", "CountryCode": "US"})
    assert error["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert error["message"].startswith("The StateCode field contains Zz, which isn't an available")


def test_a_state_without_a_country_fails(sf: Salesforce, picklists_on: str) -> None:
    """No country and no org default: FIELD_INTEGRITY_EXCEPTION naming the state's label."""
    error = refused(sf, "Lead", {**LEAD, "State": "California"})
    assert error["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert error["message"] == (
        "A country/territory must be specified before specifying a state value for field: "
        "State/Province"
    )
    assert error["fields"] == ["State"]


def test_the_default_country_lets_a_state_alone_through(
    sf: Salesforce, emulator_control: EmulatorControl, picklists_on: str
) -> None:
    """With an org default country, a state alone is read in that country."""
    emulator_control.set_org_settings(picklists_on, default_country="US")
    lead = sf.Lead.create({**LEAD, "State": "Texas"})["id"]
    stored = sf.Lead.get(lead)
    assert (stored["StateCode"], stored["CountryCode"], stored["Country"]) == (
        "TX",
        "US",
        "United States",
    )


def test_a_state_must_belong_to_its_country(sf: Salesforce, picklists_on: str) -> None:
    """Ontario is not a US state; UK has no states configured, so any state text fails."""
    error = refused(sf, "Lead", {**LEAD, "State": "Ontario", "Country": "United States"})
    assert error["message"] == STATE_TEXT_ERROR
    error = refused(sf, "Lead", {**LEAD, "State": "Oxfordshire", "CountryCode": "GB"})
    assert error["message"] == STATE_TEXT_ERROR
    lead = sf.Lead.create({**LEAD, "CountryCode": "GB", "City": "Oxford"})["id"]
    assert sf.Lead.get(lead)["Country"] == "United Kingdom"


def test_code_and_label_must_agree_on_update(sf: Salesforce, picklists_on: str) -> None:
    """Field-syncing logic: update with mismatched code and integration value saves nothing;
    on create the code wins."""
    lead = sf.Lead.create({**LEAD, "CountryCode": "US", "Country": "Canada"})["id"]
    assert sf.Lead.get(lead)["Country"] == "United States"
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.update(lead, {"CountryCode": "CA", "Country": "Germany"})
    assert caught.value.content[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert sf.Lead.get(lead)["CountryCode"] == "US"


def test_removing_the_country_removes_the_state(sf: Salesforce, picklists_on: str) -> None:
    """Field-syncing logic: removing the country code removes the state too."""
    lead = sf.Lead.create({**LEAD, "StateCode": "NY", "CountryCode": "US"})["id"]
    sf.Lead.update(lead, {"CountryCode": None})
    stored = sf.Lead.get(lead)
    assert (stored["State"], stored["StateCode"], stored["Country"]) == (None, None, None)


def test_updating_the_state_alone_keeps_the_country(sf: Salesforce, picklists_on: str) -> None:
    lead = sf.Lead.create({**LEAD, "StateCode": "NY", "CountryCode": "US"})["id"]
    sf.Lead.update(lead, {"State": "Oregon"})
    stored = sf.Lead.get(lead)
    assert (stored["StateCode"], stored["CountryCode"]) == ("OR", "US")


def test_default_country_must_be_known(
    emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    with pytest.raises(EmulatorControlError):
        emulator_control.set_org_settings(emulator_org["org_id"], default_country="XX")


def test_code_columns_are_queryable_only_with_the_feature(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id, StateCode FROM Lead")
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD"
    emulator_control.set_org_settings(emulator_org["org_id"], state_country_picklists=True)
    sf.Lead.create({**LEAD, "StateCode": "WA", "CountryCode": "AU"})
    (row,) = sf.query("SELECT StateCode, State, Country FROM Lead")["records"]
    assert (row["StateCode"], row["State"], row["Country"]) == (
        "WA",
        "Western Australia",
        "Australia",
    )
