"""State and Country/Territory picklists: the codes, the labels, and what a write may carry.

An org switch (``Org.state_country_picklists``) turns the feature on. Facts and sources are in
docs/salesforce-facts.md section 3a; in short:

- Off (the emulator's default): ``State``/``Country`` (``MailingState``… on Contact,
  ``BillingState``… on Account) are plain text, and the ``*Code`` fields do not exist.
- On: each address has text fields that take only the full "integration value" ("California",
  "United States") and code picklists (``StateCode``/``CountryCode``) that take ISO codes. A valid
  code fills the text field and a valid text fills the code (Salesforce Help, "State and
  Country/Territory Picklist Field-Syncing Logic"). The state must belong to the country; a state
  without any country fails unless the org has a default country (``Org.default_country``).

The table below is not the whole world: enough countries and states for tests. As in a new org,
only some countries have states configured (US, Canada, Australia here); any state text for the
others fails, as reported for the UK, Germany and France (salesforce.stackexchange q/122863).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import SalesforceError

FEATURE = "state_country_picklists"

# Country code -> integration value (the label in the org's picklist).
COUNTRIES: dict[str, str] = {
    "US": "United States",
    "CA": "Canada",
    "AU": "Australia",
    "GB": "United Kingdom",
    "IE": "Ireland",
    "DE": "Germany",
    "FR": "France",
    "NZ": "New Zealand",
}

US_STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota",
    "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
    "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon",
    "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota",
    "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia",
    "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
}  # fmt: skip
CA_PROVINCES = {
    "AB": "Alberta", "BC": "British Columbia", "MB": "Manitoba", "NB": "New Brunswick",
    "NL": "Newfoundland and Labrador", "NS": "Nova Scotia", "NT": "Northwest Territories",
    "NU": "Nunavut", "ON": "Ontario", "PE": "Prince Edward Island", "QC": "Quebec",
    "SK": "Saskatchewan", "YT": "Yukon Territories",
}  # fmt: skip
AU_STATES = {
    "ACT": "Australian Capital Territory", "NSW": "New South Wales", "NT": "Northern Territory",
    "QLD": "Queensland", "SA": "South Australia", "TAS": "Tasmania", "VIC": "Victoria",
    "WA": "Western Australia",
}  # fmt: skip
# Country code -> {state code -> integration value}.
STATES: dict[str, dict[str, str]] = {"US": US_STATES, "CA": CA_PROVINCES, "AU": AU_STATES}

# Error texts (docs/salesforce-facts.md section 3a). The text-field messages end with ": <field
# label>", as every capture shows.
STATE_TEXT_ERROR = (
    "There's a problem with this state, even though it may appear correct. Please select a "
    "state from the list of valid states."
)
COUNTRY_TEXT_ERROR = (
    "There's a problem with this country, even though it may appear correct. Please select a "
    "country/territory from the list of valid countries."
)
STATE_WITHOUT_COUNTRY_ERROR = (
    "A country/territory must be specified before specifying a state value for field: {label}"
)
# StoreConnect support captures; SALESFORCE.md 3a quotes the StateCode one.
STATE_CODE_ERROR = (
    "The {field} field contains {value}, which isn't an available state. Your administrator can "
    "add it for you."
)
# Salesforce Help 000386448: "Mailing Country Code: bad value for restricted picklist field:
# {value}" (the code fields are restricted picklists).
COUNTRY_CODE_ERROR_CODE = "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
COUNTRY_CODE_ERROR = "{label}: bad value for restricted picklist field: {value}"
# UNCONFIRMED: whether integration values compare case-insensitively through the API. The
# emulator accepts "california" for "California" and stores the configured label.
TEXT_VALUES_CASE_SENSITIVE = False
# UNCONFIRMED: whether codes compare case-insensitively ("us" for "US").
CODES_CASE_SENSITIVE = False


@dataclass(frozen=True)
class AddressFields:
    """The four fields of one address that the picklists tie together."""

    state: str
    country: str
    state_code: str
    country_code: str
    state_label: str
    country_label: str
    state_code_label: str
    country_code_label: str


def _address(prefix: str, label: str) -> AddressFields:
    space = f"{label} " if label else ""
    return AddressFields(
        f"{prefix}State",
        f"{prefix}Country",
        f"{prefix}StateCode",
        f"{prefix}CountryCode",
        f"{space}State/Province",
        f"{space}Country",
        f"{space}State/Province Code",
        f"{space}Country Code",
    )


ADDRESSES: dict[str, list[AddressFields]] = {
    "Lead": [_address("", "")],
    "Contact": [_address("Mailing", "Mailing")],
    "Account": [_address("Billing", "Billing")],
}


def validate_default_country(code: str | None) -> str | None:
    """The org setting ``default_country``: None or a known country code (normalised)."""
    if code in (None, ""):
        return None
    found = _country_by_code(str(code))
    if found is None:
        raise ValueError(f"default_country must be one of {sorted(COUNTRIES)}")
    return found


def country_picklist() -> list[tuple[str, str]]:
    """(code, label) of every country, in label order (the order describe lists them)."""
    return sorted(COUNTRIES.items(), key=lambda item: item[1])


def state_picklist() -> list[tuple[str, str, str]]:
    """(code, label, validFor) of every state; validFor names its country (see ``valid_for``)."""
    countries = [code for code, _ in country_picklist()]
    out = []
    for country, states in STATES.items():
        bits = valid_for(countries.index(country))
        out.extend((code, label, bits) for code, label in sorted(states.items()))
    return sorted(out, key=lambda item: item[1])


def valid_for(controller_index: int) -> str:
    """describe's PicklistEntry.validFor: base64 of a bit set, one bit per controlling value,
    most significant bit first (DescribeSObjectResult docs; "oAAA" style values in captures)."""
    data = bytearray(controller_index // 8 + 1)
    data[controller_index // 8] |= 0x80 >> (controller_index % 8)
    return base64.b64encode(bytes(data)).decode()


def apply(
    sobject: str,
    values: dict[str, Any],
    existing: Mapping[str, Any],
    *,
    creating: bool,
    default_country: str | None,
) -> None:
    """Check and sync the address fields of one write, in place (picklists on).

    ``values`` holds the fields the write sets (canonical names, already coerced; None clears);
    ``existing`` is the record before an update ({} on create). Raises SalesforceError with
    FIELD_INTEGRITY_EXCEPTION or INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST as Salesforce does.
    """
    for address in ADDRESSES.get(sobject, []):
        _apply_one(address, values, existing, creating=creating, default_country=default_country)


def _apply_one(
    a: AddressFields,
    values: dict[str, Any],
    existing: Mapping[str, Any],
    *,
    creating: bool,
    default_country: str | None,
) -> None:
    touched = {a.state, a.country, a.state_code, a.country_code} & values.keys()
    if not touched:
        return
    country = _resolve_country(a, values, existing, creating=creating)
    state_given = a.state in values or a.state_code in values
    if country is None and state_given and _state_value(a, values) is not None:
        if default_country is None:
            field = a.state_code if values.get(a.state_code) else a.state
            raise SalesforceError(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                STATE_WITHOUT_COUNTRY_ERROR.format(label=a.state_label),
                [field],
            )
        country = default_country
    if state_given:
        state = _resolve_state(a, values, country, creating=creating)
    elif country != existing.get(a.country_code):
        # The country changed under a kept state: it must belong to the new country (Help,
        # field-syncing logic: "The new state isn't in the new country … error message").
        state = existing.get(a.state_code)
        if state is not None and (country is None or state not in STATES.get(country, {})):
            if country is None:
                state = None  # removing the country removes the state
            else:
                raise _state_text_error(a)
    else:
        state = existing.get(a.state_code)
    values[a.country_code] = country
    values[a.country] = COUNTRIES[country] if country else None
    values[a.state_code] = state
    values[a.state] = STATES[country][state] if country and state else None


def _state_value(a: AddressFields, values: Mapping[str, Any]) -> Any:
    return values.get(a.state_code) or values.get(a.state)


def _resolve_country(
    a: AddressFields, values: Mapping[str, Any], existing: Mapping[str, Any], *, creating: bool
) -> str | None:
    code_given, text_given = a.country_code in values, a.country in values
    if not code_given and not text_given:
        return existing.get(a.country_code)
    by_code = by_text = None
    if code_given and values[a.country_code] is not None:
        by_code = _country_by_code(values[a.country_code])
        if by_code is None:
            raise SalesforceError(
                400,
                COUNTRY_CODE_ERROR_CODE,
                COUNTRY_CODE_ERROR.format(label=a.country_code_label, value=values[a.country_code]),
                [a.country_code],
            )
    if text_given and values[a.country] is not None:
        by_text = _country_by_label(values[a.country])
        if by_text is None:
            raise SalesforceError(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                f"{COUNTRY_TEXT_ERROR}: {a.country_label}",
                [a.country],
            )
    if by_code and by_text and by_code != by_text and not creating:
        # Help, field-syncing logic: on update, mismatched integration and code values save
        # nothing and give an error (its text is UNCONFIRMED; the country text error is used).
        raise SalesforceError(
            400,
            "FIELD_INTEGRITY_EXCEPTION",
            f"{COUNTRY_TEXT_ERROR}: {a.country_label}",
            [a.country],
        )
    # On create the code wins ("Salesforce updates your new record's integration value to match
    # the code value").
    return by_code or by_text


def _resolve_state(
    a: AddressFields, values: Mapping[str, Any], country: str | None, *, creating: bool
) -> str | None:
    states = STATES.get(country or "", {})
    by_code = by_text = None
    code = values.get(a.state_code)
    if code is not None:
        by_code = _lookup(code, states, CODES_CASE_SENSITIVE)
        if by_code is None:
            raise SalesforceError(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                STATE_CODE_ERROR.format(field=a.state_code, value=code),
                [a.state_code],
            )
    text = values.get(a.state)
    if text is not None:
        by_text = states_code_of(states, text)
        if by_text is None:
            raise _state_text_error(a)
    if by_code and by_text and by_code != by_text and not creating:
        raise _state_text_error(a)
    return by_code or by_text


def states_code_of(states: Mapping[str, str], label: str) -> str | None:
    """The code of a state given its integration value (never its code: "CA" is no label)."""
    for code, name in states.items():
        same = name == label if TEXT_VALUES_CASE_SENSITIVE else name.casefold() == label.casefold()
        if same:
            return code
    return None


def _state_text_error(a: AddressFields) -> SalesforceError:
    return SalesforceError(
        400, "FIELD_INTEGRITY_EXCEPTION", f"{STATE_TEXT_ERROR}: {a.state_label}", [a.state]
    )


def _lookup(key: str, table: Mapping[str, str], case_sensitive: bool) -> str | None:
    if key in table:
        return key
    if not case_sensitive:
        for candidate in table:
            if candidate.casefold() == str(key).casefold():
                return candidate
    return None


def _country_by_code(code: str) -> str | None:
    return _lookup(code, COUNTRIES, CODES_CASE_SENSITIVE)


def _country_by_label(label: str) -> str | None:
    for code, name in COUNTRIES.items():
        same = name == label if TEXT_VALUES_CASE_SENSITIVE else name.casefold() == label.casefold()
        if same:
            return code
    return None
