"""Lengths in UTF-16 code units and Salesforce's stricter email check (issue 13, cases 2 and 5).

Facts (docs/salesforce-facts.md section 3, "Lengths" and "Email"): an emoji counts as two
characters (UNCONFIRMED for the API: ``strings.COUNT_UTF16_CODE_UNITS``); Salesforce refuses
addresses a loose check accepts (help 000384328 and integrations' reports).
"""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from salesforce_emulator import EmulatorControl, WriteOptions
from salesforce_emulator.strings import COUNT_UTF16_CODE_UNITS, email_problem, length, truncate

LEAD = {"LastName": "Reed", "Company": "Reed Plumbing"}
EMOJI = "\N{GRINNING FACE}"


def test_utf16_is_the_default_reading() -> None:
    assert COUNT_UTF16_CODE_UNITS is True
    assert length(EMOJI * 25) == 50
    assert length(EMOJI * 25, utf16=False) == 25


def test_an_emoji_counts_two_towards_a_field_length(sf: Salesforce) -> None:
    """FirstName is 40: 25 emoji (40 code points would pass a code-point cut) is 50 units."""
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({**LEAD, "FirstName": EMOJI * 25})
    error = caught.value.content[0]
    assert error["errorCode"] == "STRING_TOO_LONG"
    assert error["fields"] == ["FirstName"]
    assert sf.Lead.create({**LEAD, "FirstName": EMOJI * 20})["success"] is True


def test_an_org_can_count_code_points_instead(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    emulator_control.set_org_settings(emulator_org["org_id"], count_utf16_code_units=False)
    assert sf.Lead.create({**LEAD, "FirstName": EMOJI * 25})["success"] is True


def test_truncation_header_never_splits_a_surrogate_pair(sf_emulator: Any, sf: Salesforce) -> None:
    """AllowFieldTruncationHeader cuts to 40 units: 20 emoji, not 20.5."""
    org = next(iter(sf_emulator.state.orgs.values()))
    lead = org.create(
        "Lead",
        {**LEAD, "FirstName": "a" + EMOJI * 25},
        WriteOptions(api="soap", allow_field_truncation=True),
    )
    assert org.get("Lead", lead)["FirstName"] == "a" + EMOJI * 19
    assert truncate("a" + EMOJI, 2) == "a"


@pytest.mark.parametrize(
    "address",
    [
        "bea@localhost",  # no dot in the domain
        "bea@[192.168.0.1]",  # IP literal
        "bea@192.168.0.1",  # IP address as domain
        ".bea@example.com",  # leading dot in the local part (help 000384328)
        "bea@exa..mple.com",  # an empty domain label
        "bea(x)@example.com",  # a character outside the local part's list
        "b ea@example.com",
        "bea@-example.com",
        "béa@example.com",  # non-ASCII without the org setting
        "bea@exämple.com",
        "bea@@example.com",
    ],
)
def test_addresses_salesforce_refuses(sf: Salesforce, address: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({**LEAD, "Email": address})
    error = caught.value.content[0]
    assert error["errorCode"] == "INVALID_EMAIL_ADDRESS"
    assert error["fields"] == ["Email"]


@pytest.mark.parametrize(
    "address",
    [
        "bea@example.com",
        "bea.o'neil+web@mail.example.co.uk",
        "b-e_a@ex-ample.io",
        "a..a@test.jp",  # help 000384328: ".." in the middle is allowed
        "a..@test.jp",  # and at the end
    ],
)
def test_addresses_salesforce_accepts(sf: Salesforce, address: str) -> None:
    assert email_problem(address) is None
    lead = sf.Lead.create({**LEAD, "Email": address})["id"]
    assert sf.Lead.get(lead)["Email"] == address


def test_an_org_may_store_addresses_in_lower_case(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """Help 000384328: "Salesforce stores email addresses in lower case" (a switch here)."""
    emulator_control.set_org_settings(emulator_org["org_id"], email_stored_lowercase=True)
    lead = sf.Lead.create({**LEAD, "Email": "Bea.Reed@Example.COM"})["id"]
    assert sf.Lead.get(lead)["Email"] == "bea.reed@example.com"


def test_international_addresses_need_the_org_setting(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    emulator_control.set_org_settings(
        emulator_org["org_id"], email_address_internationalization=True
    )
    lead = sf.Lead.create({**LEAD, "Email": "béa@exämple.com"})["id"]
    assert sf.Lead.get(lead)["Email"] == "béa@exämple.com"
    with pytest.raises(SalesforceMalformedRequest):
        sf.Lead.create({**LEAD, "Email": "bea@localhost"})  # still no dot
