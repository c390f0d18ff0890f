"""Unit tests of the one mapping function: inquiry → Salesforce fields."""

from __future__ import annotations

import pytest

from autorespond.models import Inquiry
from integrations.salesforce.sync.mapping import (
    PLACEHOLDER,
    account_fields,
    account_name,
    format_phone,
    salesforce_fields,
)


def _inquiry(**values: str) -> Inquiry:
    base = {
        "first_name": "Ann",
        "last_name": "Lee",
        "company": "Lee Bakery",
        "email": "Ann@Example.com",
        "phone": "415-555-1212",
        "street": "1 Main St",
        "city": "Springfield",
        "state": "IL",
        "postal_code": "62701",
        "job_description": "Leaking kitchen tap",
    }
    base.update(values)
    return Inquiry(external_id="x", **base)


def _map(inquiry: Inquiry, sobject: str = "Lead", **options: object):  # type: ignore[no-untyped-def]
    kwargs = {
        "for_update": False,
        "source_name": "Joe's Plumbing",
        "phone_region": "US",
        "send_job_description": False,
        "include_source_name": False,
    }
    kwargs.update(options)
    return salesforce_fields(inquiry=inquiry, sobject=sobject, **kwargs)  # type: ignore[arg-type]


def test_lead_create_maps_person_fields_with_the_web_lead_source_and_no_status() -> None:
    """Status is left to the org's default unless the owner chose one (issue 13)."""
    mapped = _map(_inquiry())
    assert mapped.values == {
        "LeadSource": "Web",
        "FirstName": "Ann",
        "LastName": "Lee",
        "Company": "Lee Bakery",
        "Email": "Ann@Example.com",
        "Phone": "(415) 555-1212",
        "Street": "1 Main St",
        "City": "Springfield",
        "State": "IL",
        "PostalCode": "62701",
    }
    assert mapped.truncated == ()


def test_contact_uses_mailing_address_and_has_no_company() -> None:
    mapped = _map(_inquiry(), "Contact")
    assert mapped.values == {
        "LeadSource": "Web",
        "FirstName": "Ann",
        "LastName": "Lee",
        "Email": "Ann@Example.com",
        "Phone": "(415) 555-1212",
        "MailingStreet": "1 Main St",
        "MailingCity": "Springfield",
        "MailingState": "IL",
        "MailingPostalCode": "62701",
    }


def test_job_description_only_when_asked() -> None:
    assert "Description" not in _map(_inquiry()).values
    on = _map(_inquiry(), send_job_description=True)
    assert on.values["Description"] == "Leaking kitchen tap"


def test_source_name_goes_to_lead_source_on_leads_and_contacts() -> None:
    assert _map(_inquiry()).values["LeadSource"] == "Web"
    lead = _map(_inquiry(), include_source_name=True)
    assert lead.values["LeadSource"] == "Joe's Plumbing"
    assert "Description" not in lead.values
    contact = _map(_inquiry(), "Contact", include_source_name=True, send_job_description=True)
    assert contact.values["LeadSource"] == "Joe's Plumbing"
    assert contact.values["Description"] == "Leaking kitchen tap"


def test_long_source_name_goes_to_description_instead_of_lead_source() -> None:
    name = "Joe's Plumbing and Heating of Greater Springfield East"
    mapped = _map(_inquiry(), include_source_name=True, source_name=name)
    assert mapped.values["LeadSource"] == "Web"
    assert mapped.values["Description"] == f"Source: {name}"


def test_placeholders_for_unknown_required_fields_on_create_only() -> None:
    bare = _inquiry(last_name="", company="", first_name="", email="", phone="")
    assert _map(bare).values["LastName"] == PLACEHOLDER
    assert _map(bare).values["Company"] == PLACEHOLDER
    assert _map(bare, "Contact").values["LastName"] == PLACEHOLDER
    update = _map(bare, for_update=True)
    assert "LastName" not in update.values and "Company" not in update.values


def test_update_sends_non_empty_values_only_and_keeps_lead_source() -> None:
    mapped = _map(
        _inquiry(company="", street="", city="  "),
        for_update=True,
        include_source_name=True,
    )
    assert "Company" not in mapped.values
    assert "Street" not in mapped.values
    assert "City" not in mapped.values
    assert "LeadSource" not in mapped.values
    assert mapped.values["LastName"] == "Lee"


def test_values_longer_than_the_field_are_cut_and_recorded() -> None:
    mapped = _map(_inquiry(first_name="A" * 45, city="C" * 50))
    assert mapped.values["FirstName"] == "A" * 40
    assert mapped.values["City"] == "C" * 40
    assert mapped.truncation_detail() == [
        {"field": "FirstName", "length": 45, "max_length": 40, "action": "cut"},
        {"field": "City", "length": 50, "max_length": 40, "action": "cut"},
    ]


def test_an_over_long_email_is_left_out_rather_than_cut() -> None:
    email = "a" * 75 + "@example.com"
    mapped = _map(_inquiry(email=email))
    assert "Email" not in mapped.values
    assert mapped.truncation_detail() == [
        {"field": "Email", "length": 87, "max_length": 80, "action": "omitted"}
    ]


def test_phone_format_national_in_region_international_elsewhere() -> None:
    assert format_phone("+1 415 555 1212", region="US") == "(415) 555-1212"
    assert format_phone("020 7946 0958", region="GB") == "020 7946 0958"
    assert format_phone("+44 20 7946 0958", region="US") == "+44 20 7946 0958"
    assert format_phone("call me maybe", region="US") == "call me maybe"
    assert format_phone("", region="US") == ""


def test_a_contacts_company_becomes_the_account_name_with_spaces_collapsed() -> None:
    assert account_name("  Lee \t Bakery ") == "Lee Bakery"
    assert account_name("") == ""
    assert account_fields(company=" Lee  Bakery").values == {"Name": "Lee Bakery"}
    with pytest.raises(ValueError, match="needs a company"):
        account_fields(company="   ")


def test_an_account_name_longer_than_255_is_cut_and_recorded() -> None:
    account = account_fields(company="B" * 300)
    assert account.values["Name"] == "B" * 255
    assert account.truncation_detail() == [
        {"field": "Account.Name", "length": 300, "max_length": 255, "action": "cut"}
    ]
