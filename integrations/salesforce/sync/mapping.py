"""Mapping an inquiry to Salesforce fields: the one place that decides what we write.

`salesforce_fields` is a pure function (no database, no network): the sync service calls it for
every write with the org's schema (`org_schema.OrgSchema`, read from describe), and tests call it
directly. What the org's schema decides is never guessed: a field the org lacks, or the
connected user may not write, is not sent.

Decisions, with their reasons:

* **Lead**: FirstName, LastName, Company, Email, Phone, Street, City, State, PostalCode,
  Country, Description, LeadSource, Status. **Contact**: the same person fields with the Mailing
  address (MailingStreet, MailingCity, MailingState, MailingPostalCode, MailingCountry) and
  LeadSource; Contacts have no Company field: the company becomes the Contact's **Account**
  (`account_fields`: Name = the company, spaces collapsed, cut to Account.Name's length). The
  sync finds that Account by Name or creates it (`integrations.salesforce.sync.writing`);
  without a company a Contact has no Account (a private contact, visible to its owner and
  admins only).
* **Lead source** (seed 004 lists it on every record), on create only (it records where a lead
  first came from; a later inquiry must not rewrite that attribution): the owner's choice
  (`SalesforceSettings.lead_source`), else the org's `Web` value when its picklist has one.
  **Include source name** puts the source's name there instead when the picklist accepts it
  (one of its values, or any value that fits when the picklist is not restricted); otherwise the
  name goes in a `Source: <name>` line of the Description. A Contact gets the same value in its
  own LeadSource field.
* **Status** (Lead create only): the owner's choice (`SalesforceSettings.lead_status`) when it is
  one of the org's Lead Status values; else nothing is sent and Salesforce applies the org's
  default status. On update, Status is the sales team's progress and is not ours to change.
* **Picklists**: a value is sent as the org's own API value (matched ignoring case and spacing).
  A value a restricted picklist does not list is left out (and noted) rather than refused:
  INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST would lose the whole record.
* **State and Country**: the country is the inquiry's (a name or an ISO code,
  `autorespond.validators.country_code`), else the source's region (`Source.phone_region`).
  With the org's State and Country/Territory picklists on, we send `StateCode`/`CountryCode`
  (the ISO codes; Salesforce fills the text fields with the labels itself), the state matched by
  code or label among the states the org lists for that country; a state it does not list is
  left out with a note instead of failing the record (FIELD_INTEGRITY_EXCEPTION). Off, State is
  sent as typed, and Country only when the inquiry gave one (its English name).
* **Description** carries the inquiry's job description only with "Include job description"
  (sendJobDescription); off, the Description field is left alone.
* **Placeholders**: required fields (describe: not nillable, createable, not defaulted) we do not
  know get Salesforce's own Web-to-Lead placeholder `[not provided]` (a required picklist gets
  its default value). Only on create: an update never writes a placeholder over a real value.
* **Updates send non-empty values only**, so a field that is empty on our side never blanks the
  value in Salesforce.
* **Email** is checked by Salesforce's address rules (`autorespond.validators`) and left out,
  with a note, when they refuse it: the record still reaches Salesforce with the phone.
* **Lengths** are measured in UTF-16 code units (an emoji counts 2), the safe reading of
  Salesforce's limits (docs/salesforce-facts.md "Lengths": reported, unconfirmed for the API);
  a longer value is cut at a character boundary, and every cut is reported in
  `SalesforceFields.truncated`. An over-long email is left out instead: a cut address would be a
  different, invalid one.
* **What was left out** (`SalesforceFields.left_out`, stored as the sync's
  `detail["left_out"]` and shown on the card): the field, Salesforce's error code for it and the
  reason in plain words, never the value (it is personal data). The sync also passes fields
  Salesforce refused on a previous write (`refused`), which are left out the same way.
* **Phone**: written in the national format when the number belongs to the source's region
  (`(415) 555-1212`, as Salesforce's own UI shows US numbers) and in the international format
  otherwise (`+44 20 7946 0958`); a number `phonenumbers` cannot read is written as given.
  Matching does not depend on the format (see `integrations.salesforce.sync.matching`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import phonenumbers
import pycountry

from autorespond.validators import country_code, salesforce_email_refusal
from integrations.salesforce.sync.org_schema import ACCOUNT, CONTACT, LEAD, FieldInfo, OrgSchema

if TYPE_CHECKING:
    from autorespond.models import Inquiry

__all__ = [
    "ACCOUNT",
    "CONTACT",
    "LEAD",
    "PLACEHOLDER",
    "LeftOut",
    "SalesforceFields",
    "Truncation",
    "account_fields",
    "account_name",
    "format_phone",
    "salesforce_fields",
    "utf16_length",
]

#: Salesforce Web-to-Lead's own value for required fields the visitor did not fill in.
PLACEHOLDER = "[not provided]"
#: The Lead Source value a web inquiry gets by default, when the org's picklist has it.
WEB_LEAD_SOURCE = "Web"

# Inquiry attribute -> Salesforce field, per record type.
_PERSON_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    LEAD: (
        ("first_name", "FirstName"),
        ("last_name", "LastName"),
        ("company", "Company"),
        ("email", "Email"),
        ("street", "Street"),
        ("city", "City"),
        ("postal_code", "PostalCode"),
    ),
    CONTACT: (
        ("first_name", "FirstName"),
        ("last_name", "LastName"),
        ("email", "Email"),
        ("street", "MailingStreet"),
        ("city", "MailingCity"),
        ("postal_code", "MailingPostalCode"),
    ),
}
# The address prefix of each record type (Street/State… on Lead, MailingStreet… on Contact).
_ADDRESS_PREFIX = {LEAD: "", CONTACT: "Mailing"}


@dataclass(frozen=True)
class Truncation:
    """A value that did not fit its Salesforce field: cut to `max_length`, or `omitted`.
    Lengths are in UTF-16 code units."""

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
class LeftOut:
    """A field left out of the record: Salesforce's error code for it, and why in plain words
    (never the value). The shape of `InquirySync.detail["left_out"]` items."""

    field: str
    code: str
    reason: str

    def as_detail(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "reason": self.reason}


@dataclass(frozen=True)
class SalesforceFields:
    """The field values to write to one record, what had to be cut to fit, and what was left
    out."""

    sobject: str
    values: dict[str, str]
    truncated: tuple[Truncation, ...] = field(default=())
    left_out: tuple[LeftOut, ...] = field(default=())

    def truncation_detail(self) -> list[dict[str, object]]:
        return [t.as_detail() for t in self.truncated]

    def left_out_detail(self) -> list[dict[str, str]]:
        return [item.as_detail() for item in self.left_out]


def utf16_length(value: str) -> int:
    """The length Salesforce is reported to compare with a field's length: UTF-16 code units
    (an emoji outside the Basic Multilingual Plane counts 2)."""
    return len(value.encode("utf-16-le")) // 2


def _cut(value: str, limit: int) -> str:
    """`value` cut to `limit` UTF-16 code units, never splitting a surrogate pair."""
    out: list[str] = []
    used = 0
    for char in value:
        size = 2 if ord(char) > 0xFFFF else 1
        if used + size > limit:
            break
        out.append(char)
        used += size
    return "".join(out)


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


def _country_name(code: str) -> str:
    found = pycountry.countries.get(alpha_2=code)
    return str(getattr(found, "name", code)) if found else code


class _Builder:
    """The state of one mapping: values so far and what was cut or left out."""

    def __init__(self, sobject: str, schema: OrgSchema, *, for_update: bool) -> None:
        self.sobject = sobject
        self.schema = schema
        self.for_update = for_update
        self.values: dict[str, str] = {}
        self.truncated: list[Truncation] = []
        self.left_out: list[LeftOut] = []

    def info(self, name: str) -> FieldInfo | None:
        return self.schema.field(self.sobject, name)

    def writable(self, name: str) -> bool:
        info = self.info(name)
        return info is not None and (info.updateable if self.for_update else info.createable)

    def leave_out(self, name: str, code: str, reason: str) -> None:
        self.values.pop(name, None)
        if not any(item.field == name for item in self.left_out):
            self.left_out.append(LeftOut(name, code, reason))


def salesforce_fields(
    *,
    inquiry: Inquiry,
    sobject: str,
    for_update: bool,
    source_name: str,
    phone_region: str,
    send_job_description: bool,
    include_source_name: bool,
    schema: OrgSchema | None = None,
    lead_source: str = "",
    lead_status: str = "",
    refused: Mapping[str, LeftOut] | None = None,
) -> SalesforceFields:
    """The fields to write for `inquiry` to a `sobject` ("Lead" or "Contact") record.

    `schema` is the org's (`OrgSchema.assumed()`, a new org's, when None); `lead_source` and
    `lead_status` are the owner's choices (blank = the org's default); `refused` maps fields
    Salesforce refused on an earlier write of this record to why, and they are left out.
    `for_update` selects the update rules: non-empty values only, no placeholders, no
    LeadSource or Status. See the module docstring for every decision.
    """
    if sobject not in _PERSON_FIELDS:
        raise ValueError(f"Unsupported record type {sobject!r}: expected Lead or Contact")
    build = _Builder(sobject, schema or OrgSchema.assumed(), for_update=for_update)
    values = build.values
    for attribute, sf_field in _PERSON_FIELDS[sobject]:
        values[sf_field] = (getattr(inquiry, attribute) or "").strip()
    values["Phone"] = format_phone(inquiry.phone or "", region=phone_region)
    _address(build, inquiry, phone_region)

    email = values.get("Email", "")
    refusal = salesforce_email_refusal(email) if email else None
    if refusal:
        build.leave_out(
            "Email",
            "INVALID_EMAIL_ADDRESS",
            f"Salesforce does not accept this email address: {refusal}",
        )

    description_parts: list[str] = []
    if send_job_description and (inquiry.job_description or "").strip():
        description_parts.append(inquiry.job_description.strip())
    name = source_name.strip()
    if not for_update:
        source_line = _lead_source(build, lead_source, name if include_source_name else "")
        if source_line:
            description_parts.append(source_line)
        if sobject == LEAD and lead_status.strip():
            _picklist_choice(build, "Status", lead_status.strip(), "Lead Status")
    elif include_source_name and name and not build.writable("LeadSource"):
        description_parts.append(f"Source: {name}")
    values["Description"] = "\n\n".join(description_parts)

    if not for_update:
        _placeholders(build)

    # Empty values are never sent: on create Salesforce's default (empty) is the same, and on
    # update an empty value would blank what Salesforce has.
    for key in [k for k, v in values.items() if not v]:
        del values[key]
    for key, item in (refused or {}).items():
        if key in values:
            build.leave_out(key, item.code, item.reason)
    _writable_only(build)
    _fit_lengths(build)
    return SalesforceFields(
        sobject=sobject,
        values=dict(values),
        truncated=tuple(build.truncated),
        left_out=tuple(build.left_out),
    )


def _address(build: _Builder, inquiry: Inquiry, region: str) -> None:
    """State and Country, by the org's State and Country/Territory picklists (see the module
    docstring)."""
    prefix = _ADDRESS_PREFIX[build.sobject]
    state = (inquiry.state or "").strip()
    given_country = (getattr(inquiry, "country", "") or "").strip()
    code = country_code(given_country) if given_country else None
    has_address = any(
        (getattr(inquiry, name) or "").strip()
        for name in ("street", "city", "state", "postal_code")
    )
    if not build.schema.state_country_picklists:
        build.values[f"{prefix}State"] = state
        if given_country:
            build.values[f"{prefix}Country"] = _country_name(code) if code else given_country
        return
    if not (given_country or has_address):
        return  # nothing of an address: no country to claim for the person
    country_field, state_field = f"{prefix}CountryCode", f"{prefix}StateCode"
    wanted = code or (region or "").upper()
    country = build.schema.country(build.sobject, country_field, wanted) if wanted else None
    if country is None:
        if given_country:
            build.leave_out(
                f"{prefix}Country",
                "FIELD_INTEGRITY_EXCEPTION",
                "Your Salesforce org does not list this country/territory in its picklist.",
            )
        if state:
            build.leave_out(
                f"{prefix}State",
                "FIELD_INTEGRITY_EXCEPTION",
                "The state was left out: it needs a country/territory your org lists.",
            )
        return
    build.values[country_field] = country.value
    if not state:
        return
    found = build.schema.state(build.sobject, country_field, state_field, country.value, state)
    if found is None:
        build.leave_out(
            f"{prefix}State",
            "FIELD_INTEGRITY_EXCEPTION",
            f"Your Salesforce org does not list this state for {country.label}.",
        )
        return
    build.values[state_field] = found.value


def _picklist_choice(build: _Builder, name: str, wanted: str, label: str) -> bool:
    """Put the org's value for `wanted` in picklist `name`; True when it was written. A value a
    restricted picklist lacks is left out with a note."""
    info = build.info(name)
    if info is None or not build.writable(name):
        return False
    value = info.picklist_value(wanted)
    if value is None and info.restricted:
        build.leave_out(
            name,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"The chosen {label} is not one of your org's {label} values any more.",
        )
        return False
    build.values[name] = value or wanted
    return True


def _lead_source(build: _Builder, chosen: str, source_name: str) -> str:
    """Set LeadSource on a create; returns the Description line for a source name the picklist
    does not accept ("" when none)."""
    info = build.info("LeadSource")
    usable = info is not None and build.writable("LeadSource")
    if source_name and usable and info is not None:
        value = info.picklist_value(source_name)
        fits = utf16_length(source_name) <= (info.length or 255)
        if value is not None or (not info.restricted and fits):
            build.values["LeadSource"] = value or source_name
            return ""
    if chosen.strip():
        _picklist_choice(build, "LeadSource", chosen.strip(), "Lead Source")
    elif usable and info is not None:
        web = info.picklist_value(WEB_LEAD_SOURCE)
        if web:
            build.values["LeadSource"] = web
    return f"Source: {source_name}" if source_name else ""


def _placeholders(build: _Builder) -> None:
    """Fill the org's required text fields we have no value for (and required picklists with
    their default), so REQUIRED_FIELD_MISSING cannot lose the record."""
    for info in build.schema.fields(build.sobject):
        if not info.required or build.values.get(info.name) or not info.createable:
            continue
        if info.type in ("string", "textarea"):
            build.values[info.name] = PLACEHOLDER
        elif info.is_picklist and info.picklist:
            build.values[info.name] = info.default_value or info.picklist[0].value


def _writable_only(build: _Builder) -> None:
    """Leave out fields the org lacks or the connected user may not write. When the user may
    write none of the object's fields (no permission on the object at all), nothing is left out:
    Salesforce's own refusal then says what is missing."""
    action = "edit" if build.for_update else "create"
    if not any(
        (f.updateable if build.for_update else f.createable)
        for f in build.schema.fields(build.sobject)
    ):
        return
    for name in list(build.values):
        if build.info(name) is None:
            build.leave_out(
                name, "INVALID_FIELD", f"Your Salesforce org has no {name} field on this record."
            )
        elif not build.writable(name):
            build.leave_out(
                name,
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"The connected Salesforce user may not {action} the {name} field.",
            )


def _fit_lengths(build: _Builder) -> None:
    """Cut text to the field's length in UTF-16 code units; an email that does not fit is left
    out (a cut address is another, invalid one)."""
    for name, value in list(build.values.items()):
        info = build.info(name)
        limit = info.length if info else 0
        if not limit or info is None or info.is_picklist:
            continue
        size = utf16_length(value)
        if size <= limit:
            continue
        if name == "Email":
            build.truncated.append(Truncation(name, size, limit, omitted=True))
            build.leave_out(
                name, "STRING_TOO_LONG", f"The email address is longer than {limit} characters."
            )
        else:
            build.values[name] = _cut(value, limit)
            build.truncated.append(Truncation(name, size, limit))


def account_name(company: str) -> str:
    """The Account.Name for an inquiry's company, uncut: trimmed, inner whitespace collapsed (so
    `Lee  Bakery` and `Lee Bakery` are one company); empty when there is no company."""
    return " ".join((company or "").split())


def account_fields(*, company: str, schema: OrgSchema | None = None) -> SalesforceFields:
    """The fields of the Account created for a Contact's company: Name only, cut to the org's
    Account.Name length in UTF-16 code units (the cut is reported like the person fields')."""
    name = account_name(company)
    if not name:
        raise ValueError("an Account needs a company name")
    info = (schema or OrgSchema.assumed()).field(ACCOUNT, "Name")
    limit = info.length if info and info.length else 255
    truncated: tuple[Truncation, ...] = ()
    if utf16_length(name) > limit:
        truncated = (Truncation("Account.Name", utf16_length(name), limit),)
        name = _cut(name, limit).rstrip()
    return SalesforceFields(sobject=ACCOUNT, values={"Name": name}, truncated=truncated)
