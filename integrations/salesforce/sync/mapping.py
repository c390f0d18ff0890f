"""Mapping an inquiry to Salesforce fields: the one place that decides what we write.

`salesforce_fields` is a pure function (no database, no network): the sync service calls it for
every write, and tests call it directly.

Decisions, with their reasons:

* **Lead**: FirstName, LastName, Company, Email, Phone, Street, City, State, PostalCode,
  Description, LeadSource. **Contact**: the same person fields with the Mailing address
  (MailingStreet, MailingCity, MailingState, MailingPostalCode); Contacts have no Company field:
  the company becomes the Contact's **Account** (`account_fields`: Name = the company, spaces
  collapsed, cut to Account.Name's 255 characters). The sync finds that Account by Name or
  creates it (see `integrations.salesforce.sync.runner`); without a company a Contact has no Account
  (a private contact, visible to its owner and admins only).
* **Status is never sent.** On create, Salesforce fills Lead.Status with the org's default
  LeadStatus (the one marked IsDefault, SALESFORCE.md section 3); the values are the org admin's
  to define, so any hard-coded value could be wrong, or rejected by a restricted picklist. On
  update, Status is the sales team's progress on the lead and is not ours to change.
* **Description** carries the inquiry's job description only with "Include job description"
  (sendJobDescription); off, the Description field is left alone.
* **Include source name**: on a Lead the source's name goes into LeadSource when it fits the
  picklist's 40 characters; a longer name, and every Contact, gets a `Source: <name>` line in
  the Description instead. (Contact.LeadSource exists, but it describes where the Lead a Contact
  was converted from came from; a Contact we create or update was never a Lead of that source.)
  LeadSource is written on create only: it records where a lead first came from, and a later
  inquiry from another source must not rewrite that attribution. Off, the source is left out.
* **Placeholders**: required fields we do not know get Salesforce's own Web-to-Lead placeholder
  `[not provided]` (Lead.LastName, Lead.Company, Contact.LastName). Only on create: an update
  never writes a placeholder over a real value.
* **Updates send non-empty values only**, so a field that is empty on our side never blanks the
  value in Salesforce.
* **Lengths**: values longer than the Salesforce field (SALESFORCE.md section 3) are cut to fit
  and every cut is reported in `SalesforceFields.truncated` (the sync records it in the attempt's
  detail). An email address longer than Email's 80 characters is left out instead: a cut address
  would be a different, invalid address.
* **Phone**: written in the national format when the number belongs to the source's region
  (`(415) 555-1212`, as Salesforce's own UI shows US numbers) and in the international format
  otherwise (`+44 20 7946 0958`); a number `phonenumbers` cannot read is written as given.
  Matching does not depend on the format (see `integrations.salesforce.sync.matching`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import phonenumbers

if TYPE_CHECKING:
    from autorespond.models import Inquiry

LEAD = "Lead"
CONTACT = "Contact"
ACCOUNT = "Account"

#: Salesforce Web-to-Lead's own value for required fields the visitor did not fill in.
PLACEHOLDER = "[not provided]"

# Field lengths from SALESFORCE.md section 3 (Salesforce Field Reference). LeadSource 40 is the
# picklist length there (UNCONFIRMED for LeadSource itself, but it is what the emulator enforces).
FIELD_LENGTHS: dict[str, dict[str, int]] = {
    LEAD: {
        "FirstName": 40,
        "LastName": 80,
        "Company": 255,
        "Email": 80,
        "Phone": 40,
        "Street": 255,
        "City": 40,
        "State": 80,
        "PostalCode": 20,
        "Description": 32000,
        "LeadSource": 40,
    },
    CONTACT: {
        "FirstName": 40,
        "LastName": 80,
        "Email": 80,
        "Phone": 40,
        "MailingStreet": 255,
        "MailingCity": 40,
        "MailingState": 80,
        "MailingPostalCode": 20,
        "Description": 32000,
    },
}

# Account.Name (SALESFORCE.md section 3 / the emulator's schema).
ACCOUNT_NAME_LENGTH = 255

# Required on create (REQUIRED_FIELD_MISSING otherwise), so they get the placeholder.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    LEAD: ("LastName", "Company"),
    CONTACT: ("LastName",),
}

# Inquiry attribute -> Salesforce field, per record type.
_PERSON_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    LEAD: (
        ("first_name", "FirstName"),
        ("last_name", "LastName"),
        ("company", "Company"),
        ("email", "Email"),
        ("street", "Street"),
        ("city", "City"),
        ("state", "State"),
        ("postal_code", "PostalCode"),
    ),
    CONTACT: (
        ("first_name", "FirstName"),
        ("last_name", "LastName"),
        ("email", "Email"),
        ("street", "MailingStreet"),
        ("city", "MailingCity"),
        ("state", "MailingState"),
        ("postal_code", "MailingPostalCode"),
    ),
}


@dataclass(frozen=True)
class Truncation:
    """A value that did not fit its Salesforce field: cut to `max_length`, or `omitted`."""

    field: str
    length: int
    max_length: int
    omitted: bool = False

    def as_detail(self) -> dict[str, object]:
        return {
            "field": self.field,
            "length": self.length,
            "max_length": self.max_length,
            "action": "omitted" if self.omitted else "cut",
        }


@dataclass(frozen=True)
class SalesforceFields:
    """The field values to write to one record, and what had to be cut to fit."""

    sobject: str
    values: dict[str, str]
    truncated: tuple[Truncation, ...] = field(default=())

    def truncation_detail(self) -> list[dict[str, object]]:
        return [t.as_detail() for t in self.truncated]


def format_phone(raw: str, *, region: str) -> str:
    """The phone number as we write it: national format in the source's region, else
    international; unreadable input is returned as given (stripped)."""
    text = raw.strip()
    if not text:
        return ""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return text
    if not phonenumbers.is_possible_number(number):
        return text
    if phonenumbers.region_code_for_number(number) == region.upper():
        style = phonenumbers.PhoneNumberFormat.NATIONAL
    else:
        style = phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(number, style)


def salesforce_fields(
    *,
    inquiry: Inquiry,
    sobject: str,
    for_update: bool,
    source_name: str,
    phone_region: str,
    send_job_description: bool,
    include_source_name: bool,
) -> SalesforceFields:
    """The fields to write for `inquiry` to a `sobject` ("Lead" or "Contact") record.

    `for_update` selects the update rules: non-empty values only, no placeholders, no
    LeadSource. See the module docstring for every decision.
    """
    if sobject not in FIELD_LENGTHS:
        raise ValueError(f"Unsupported record type {sobject!r}: expected Lead or Contact")
    values: dict[str, str] = {}
    for attribute, sf_field in _PERSON_FIELDS[sobject]:
        values[sf_field] = (getattr(inquiry, attribute) or "").strip()
    values["Phone"] = format_phone(inquiry.phone or "", region=phone_region)

    description_parts: list[str] = []
    if send_job_description and (inquiry.job_description or "").strip():
        description_parts.append(inquiry.job_description.strip())
    name = source_name.strip()
    if include_source_name and name:
        if sobject == LEAD and len(name) <= FIELD_LENGTHS[LEAD]["LeadSource"]:
            if not for_update:
                values["LeadSource"] = name
        else:
            description_parts.append(f"Source: {name}")
    values["Description"] = "\n\n".join(description_parts)

    if not for_update:
        for required in REQUIRED_FIELDS[sobject]:
            if not values.get(required):
                values[required] = PLACEHOLDER

    # Empty values are never sent: on create Salesforce's default (empty) is the same, and on
    # update an empty value would blank what Salesforce has.
    values = {name: value for name, value in values.items() if value}

    truncated: list[Truncation] = []
    lengths = FIELD_LENGTHS[sobject]
    for sf_field, value in list(values.items()):
        limit = lengths[sf_field]
        if len(value) <= limit:
            continue
        if sf_field == "Email":
            del values[sf_field]
            truncated.append(Truncation(sf_field, len(value), limit, omitted=True))
        else:
            values[sf_field] = value[:limit]
            truncated.append(Truncation(sf_field, len(value), limit))
    return SalesforceFields(sobject=sobject, values=values, truncated=tuple(truncated))


def account_name(company: str) -> str:
    """The Account.Name for an inquiry's company, uncut: trimmed, inner whitespace collapsed (so
    `Lee  Bakery` and `Lee Bakery` are one company); empty when there is no company."""
    return " ".join((company or "").split())


def account_fields(*, company: str) -> SalesforceFields:
    """The fields of the Account created for a Contact's company: Name only, cut to 255
    characters (the cut is reported like the person fields')."""
    name = account_name(company)
    if not name:
        raise ValueError("an Account needs a company name")
    truncated: tuple[Truncation, ...] = ()
    if len(name) > ACCOUNT_NAME_LENGTH:
        truncated = (Truncation("Account.Name", len(name), ACCOUNT_NAME_LENGTH),)
        name = name[:ACCOUNT_NAME_LENGTH].rstrip()
    return SalesforceFields(sobject=ACCOUNT, values={"Name": name}, truncated=truncated)
