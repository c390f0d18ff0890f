"""The org's schema as the sync needs it: one value object read from describe.

Real orgs differ: an admin adds required fields, restricts a picklist, renames its values, turns
State and Country/Territory picklists on (reported to be on by default in new orgs), or takes a
field away from the connected user. `OrgSchema` is what we take from the describe of Lead,
Contact and Account (SALESFORCE.md section 2; DescribeFieldResult): which fields exist and are
createable/updateable, which are required on create, their lengths, picklist values (value,
label, default, validFor) and whether they are restricted, and whether the State/Country
picklists are on (the `StateCode`/`CountryCode` fields exist).

Where it comes from (`org_schema_for`, `org_schema_refresh`): `SalesforceClient.describe_many`
reads the three describes in ONE Composite call; the interpretation is stored per connection
(`SalesforceOrgSchema`, with `fetched_at`) so a sync normally costs no describe at all. It is
read again by Validate Connection (the call Validate makes anyway) and after Salesforce refused a
field in a way that says our copy is out of date (INVALID_FIELD, a picklist error:
`SCHEMA_ERRORS`), by the next sync.

`OrgSchema.assumed()` is the schema of a new org as SALESFORCE.md section 3 lists it; the mapping
uses it when no describe could be read, so tests of the pure mapping need no org.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from integrations.salesforce.models import SalesforceConnection, SalesforceOrgSchema

if TYPE_CHECKING:
    from integrations.salesforce.api.client import SalesforceClient

LEAD = "Lead"
CONTACT = "Contact"
ACCOUNT = "Account"
DESCRIBED = (LEAD, CONTACT, ACCOUNT)

#: Salesforce error codes after which the stored schema is read again by the next sync.
SCHEMA_ERRORS = frozenset(
    {"INVALID_FIELD", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "INVALID_FIELD_FOR_INSERT_UPDATE"}
)
# Bumped when the stored shape changes: older rows are read again.
_VERSION = 1


@dataclass(frozen=True)
class PicklistValue:
    """One active PicklistEntry: its API value, label, default flag and validFor bitmap."""

    value: str
    label: str
    default: bool = False
    valid_for: str = ""  # base64, one bit per controlling value (dependent picklists)

    def valid_for_index(self, index: int) -> bool:
        """Whether this value is valid for the controlling value at `index` (describe's
        validFor: base64 of a bit set, most significant bit first)."""
        if not self.valid_for:
            return True
        data = base64.b64decode(self.valid_for)
        byte = index // 8
        return byte < len(data) and bool(data[byte] & (0x80 >> (index % 8)))


@dataclass(frozen=True)
class FieldInfo:
    """One field as describe reports it, reduced to what the mapping uses."""

    name: str
    type: str = "string"
    length: int = 0  # in characters; 0 when not a text field
    createable: bool = True
    updateable: bool = True
    required: bool = False  # on create: not nillable, createable and not defaulted
    restricted: bool = False
    picklist: tuple[PicklistValue, ...] = ()

    @property
    def is_picklist(self) -> bool:
        return self.type in ("picklist", "multipicklist")

    @property
    def default_value(self) -> str | None:
        return next((p.value for p in self.picklist if p.default), None)

    def picklist_value(self, wanted: str) -> str | None:
        """The picklist's own API value for `wanted`: the same value, else the value whose
        value or label matches ignoring case and spacing; None when there is none."""
        if wanted in {p.value for p in self.picklist}:
            return wanted
        key = _fold(wanted)
        for entry in self.picklist:
            if _fold(entry.value) == key or _fold(entry.label) == key:
                return entry.value
        return None

    @classmethod
    def from_describe(cls, raw: Mapping[str, Any]) -> FieldInfo:
        picklist = tuple(
            PicklistValue(
                value=str(p.get("value") or ""),
                label=str(p.get("label") or p.get("value") or ""),
                default=bool(p.get("defaultValue")),
                valid_for=str(p.get("validFor") or ""),
            )
            for p in raw.get("picklistValues") or []
            if p.get("active", True) and p.get("value")
        )
        createable = bool(raw.get("createable"))
        return cls(
            name=str(raw["name"]),
            type=str(raw.get("type") or "string"),
            length=int(raw.get("length") or 0),
            createable=createable,
            updateable=bool(raw.get("updateable")),
            required=createable
            and not raw.get("nillable", True)
            and not raw.get("defaultedOnCreate", False),
            restricted=bool(raw.get("restrictedPicklist")),
            picklist=picklist,
        )


def _fold(text: str) -> str:
    return " ".join((text or "").split()).casefold()


@dataclass(frozen=True)
class OrgSchema:
    """The fields of Lead, Contact and Account in one org (see the module docstring)."""

    objects: Mapping[str, Mapping[str, FieldInfo]]
    fetched_at: dt.datetime | None = None
    #: The objects the connected user may create (describe's object-level `createable`).
    createable_objects: frozenset[str] = frozenset(DESCRIBED)
    assumed_default: bool = field(default=False, compare=False)

    def field(self, sobject: str, name: str) -> FieldInfo | None:
        return self.objects.get(sobject, {}).get(name)

    def fields(self, sobject: str) -> Iterable[FieldInfo]:
        return self.objects.get(sobject, {}).values()

    @property
    def state_country_picklists(self) -> bool:
        """Whether State and Country/Territory picklists are on (the code fields exist)."""
        return self.field(LEAD, "CountryCode") is not None

    def country(self, sobject: str, code_field: str, wanted: str) -> PicklistValue | None:
        """The CountryCode entry for an ISO code or a label (`wanted`), or None."""
        info = self.field(sobject, code_field)
        if info is None:
            return None
        value = info.picklist_value(wanted)
        return next((p for p in info.picklist if p.value == value), None) if value else None

    def state(
        self, sobject: str, country_field: str, state_field: str, country: str, wanted: str
    ) -> PicklistValue | None:
        """The StateCode entry for a state code or label that belongs to `country` (a
        CountryCode value), or None when the org lists no such state for that country."""
        countries = self.field(sobject, country_field)
        states = self.field(sobject, state_field)
        if countries is None or states is None:
            return None
        index = next((i for i, p in enumerate(countries.picklist) if p.value == country), None)
        if index is None:
            return None
        key = _fold(wanted)
        for entry in states.picklist:
            if not entry.valid_for_index(index):
                continue
            if _fold(entry.value) == key or _fold(entry.label) == key:
                return entry
        return None

    # --- storing -----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "version": _VERSION,
            "createable_objects": sorted(self.createable_objects),
            "objects": {
                sobject: [
                    {
                        "name": f.name,
                        "type": f.type,
                        "length": f.length,
                        "createable": f.createable,
                        "updateable": f.updateable,
                        "required": f.required,
                        "restricted": f.restricted,
                        "picklist": [
                            [p.value, p.label, p.default, p.valid_for] for p in f.picklist
                        ],
                    }
                    for f in fields.values()
                ]
                for sobject, fields in self.objects.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], fetched_at: dt.datetime | None) -> OrgSchema:
        objects = {
            sobject: {
                f["name"]: FieldInfo(
                    name=f["name"],
                    type=f["type"],
                    length=f["length"],
                    createable=f["createable"],
                    updateable=f["updateable"],
                    required=f["required"],
                    restricted=f["restricted"],
                    picklist=tuple(PicklistValue(*p) for p in f["picklist"]),
                )
                for f in fields
            }
            for sobject, fields in data["objects"].items()
        }
        return cls(
            objects=objects,
            fetched_at=fetched_at,
            createable_objects=frozenset(data.get("createable_objects", DESCRIBED)),
        )

    @classmethod
    def from_describes(cls, describes: Mapping[str, Mapping[str, Any]]) -> OrgSchema:
        """From the describe payloads of the objects (`{"Lead": {...}, …}`)."""
        objects = {
            sobject: {
                str(raw["name"]): FieldInfo.from_describe(raw)
                for raw in payload.get("fields") or []
            }
            for sobject, payload in describes.items()
        }
        return cls(
            objects=objects,
            fetched_at=timezone.now(),
            createable_objects=frozenset(
                sobject for sobject, payload in describes.items() if payload.get("createable")
            ),
        )

    @classmethod
    def assumed(cls) -> OrgSchema:
        """A new org's schema (SALESFORCE.md section 3): the fields we write, their lengths,
        LastName and Company required, LeadSource and Status with the default values,
        unrestricted, no State/Country picklists."""
        return _ASSUMED


def _text(name: str, length: int, **kw: Any) -> FieldInfo:
    return FieldInfo(name, "string", length, **kw)


def _picklist(
    name: str, values: Iterable[str], default: str | None = None, length: int = 255
) -> FieldInfo:
    return FieldInfo(
        name,
        "picklist",
        length,
        picklist=tuple(PicklistValue(v, v, v == default) for v in values),
    )


# SALESFORCE.md section 3 (Field Reference lengths; "Default picklist values").
_LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
_LEAD_STATUSES = (
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
)
_PERSON = (
    _text("FirstName", 40),
    _text("LastName", 80, required=True),
    _text("Email", 80),
    _text("Phone", 40),
    _text("Description", 32000),
    # 40: the picklist length SALESFORCE.md section 3 gives (what the emulator enforces).
    _picklist("LeadSource", _LEAD_SOURCES, length=40),
)
_ASSUMED = OrgSchema(
    objects={
        LEAD: {
            f.name: f
            for f in (
                *_PERSON,
                _text("Company", 255, required=True),
                _text("Street", 255),
                _text("City", 40),
                _text("State", 80),
                _text("PostalCode", 20),
                _text("Country", 80),
                _picklist("Status", _LEAD_STATUSES, default="Open - Not Contacted"),
            )
        },
        CONTACT: {
            f.name: f
            for f in (
                *_PERSON,
                _text("MailingStreet", 255),
                _text("MailingCity", 40),
                _text("MailingState", 80),
                _text("MailingPostalCode", 20),
                _text("MailingCountry", 80),
                FieldInfo("AccountId", "reference", 18),
            )
        },
        ACCOUNT: {"Name": _text("Name", 255, required=True)},
    },
    assumed_default=True,
)


# --------------------------------------------------------------------------- cache


def org_schema_refresh(*, client: SalesforceClient) -> OrgSchema:
    """Read the describes of Lead, Contact and Account (one API call) and store the schema on
    the client's connection. Raises SalesforceError when the call fails."""
    schema = OrgSchema.from_describes(client.describe_many(DESCRIBED))
    connection = client.connection
    SalesforceOrgSchema.objects.update_or_create(
        connection=connection,
        defaults={
            "org_id": connection.org_id,
            "data": schema.to_json(),
            "fetched_at": schema.fetched_at,
            "stale": False,
        },
    )
    return schema


def org_schema_stored(*, connection: SalesforceConnection) -> OrgSchema | None:
    """The stored schema of the connection's org, or None when there is none, it is of
    another org (a reconnect to another org), marked stale, or of an older shape."""
    row = SalesforceOrgSchema.objects.filter(connection=connection).first()
    if (
        row is None
        or row.stale
        or row.org_id != connection.org_id
        or row.data.get("version") != _VERSION
    ):
        return None
    return OrgSchema.from_json(row.data, row.fetched_at)


def org_schema_for(*, client: SalesforceClient) -> OrgSchema:
    """The org's schema for a sync: the stored one, else read now (one API call)."""
    return org_schema_stored(connection=client.connection) or org_schema_refresh(client=client)


def org_schema_mark_stale(*, connection: SalesforceConnection) -> None:
    """Salesforce refused a field in a way that says our copy is out of date: the next sync
    reads the describes again."""
    SalesforceOrgSchema.objects.filter(connection=connection).update(stale=True)
