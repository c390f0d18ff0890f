"""An org's picklists: admin-configured value lists, restricted picklists, defaults.

Org settings (control API ``PATCH /_emulator/orgs/<id>/settings`` or the org's seed spec):

- ``picklist_values``: ``{"Lead.LeadSource": ["Web", "Referral"], …}`` replaces a field's values
  (a new org has SALESFORCE.md section 3's defaults);
- ``restricted_picklists``: ``["Lead.LeadSource", …]``: those fields refuse a value outside their
  list with ``INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST`` ("<Label>: bad value for restricted
  picklist field: X"); unrestricted picklists accept any value through the API
  (docs/salesforce-facts.md section 3a);
- ``default_lead_status``: the Lead Status value marked default (describe's ``defaultValue``).

The State/Country code picklists are restricted and configured by ``addresses.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import addresses, schema
from .errors import SalesforceError
from .schema import FieldDef, SObjectDef

RESTRICTED_PICKLIST_ERROR = "{label}: bad value for restricted picklist field: {value}"
# UNCONFIRMED: whether a restricted picklist compares API values case-sensitively. The emulator
# is strict (exact match), the safer reading for a client.
RESTRICTED_PICKLIST_CASE_SENSITIVE = True


@dataclass(frozen=True)
class SchemaConfig:
    """The org settings that change its schema as describe and writes see it."""

    state_country_picklists: bool = False
    default_country: str | None = None
    picklist_values: Mapping[str, list[str]] = field(default_factory=dict)
    restricted_picklists: frozenset[str] = frozenset()
    default_lead_status: str = schema.DEFAULT_LEAD_STATUS

    def has(self, f: FieldDef) -> bool:
        """Whether the field exists in this org."""
        return f.feature is None or (
            f.feature == addresses.FEATURE and self.state_country_picklists
        )


@dataclass(frozen=True)
class Entry:
    """One PicklistEntry of describe."""

    value: str
    label: str
    default: bool = False
    valid_for: str | None = None


def key(sobject: str, f: FieldDef) -> str:
    return f"{sobject}.{f.name}"


def entries(config: SchemaConfig, sobject: str, f: FieldDef) -> list[Entry]:
    """The field's active picklist values as describe lists them."""
    if f.type != "picklist":
        return []
    if f.feature == addresses.FEATURE:
        if f.controller:  # a StateCode
            return [Entry(c, label, False, bits) for c, label, bits in addresses.state_picklist()]
        return [
            Entry(c, label, c == config.default_country)
            for c, label in addresses.country_picklist()
        ]
    wanted = default_value(config, sobject, f)
    return [Entry(v, v, v == wanted) for v in values(config, sobject, f)]


# Standard picklists whose values come from one standard value set shared by several fields
# (Metadata API "StandardValueSet Names and Standard Picklist Fields"): an admin edits Lead Source
# once for Leads and Contacts. UNCONFIRMED for LeadSource's row (the shared pattern is documented,
# e.g. AccountRating = Account.Rating and Lead.Rating). A field-specific override still wins.
SHARED_VALUE_SETS = {
    "Contact.LeadSource": "Lead.LeadSource",
    "Lead.LeadSource": "Contact.LeadSource",
}


def values(config: SchemaConfig, sobject: str, f: FieldDef) -> list[str]:
    own = key(sobject, f)
    if own in config.picklist_values:
        return list(config.picklist_values[own])
    shared = SHARED_VALUE_SETS.get(own)
    if shared in config.picklist_values:
        return list(config.picklist_values[shared])
    return list(f.picklist)


def default_value(config: SchemaConfig, sobject: str, f: FieldDef) -> str | None:
    if f.feature == addresses.FEATURE:
        return None if f.controller else config.default_country
    if sobject == "Lead" and f.name == "Status":
        return config.default_lead_status
    wanted = f.picklist_default
    return wanted if wanted in values(config, sobject, f) else None


def is_restricted(config: SchemaConfig, sobject: str, f: FieldDef) -> bool:
    return f.type == "picklist" and (
        f.feature == addresses.FEATURE or key(sobject, f) in config.restricted_picklists
    )


def check_restricted(
    config: SchemaConfig, definition: SObjectDef, given: Mapping[str, Any]
) -> None:
    """Refuse a value outside a restricted picklist (the address code fields excepted: the
    address rules check those with their own errors)."""
    for name, value in given.items():
        f = definition.field(name)
        if f is None or value is None or f.feature == addresses.FEATURE:
            continue
        if not is_restricted(config, definition.name, f):
            continue
        allowed = values(config, definition.name, f)
        ok = (
            value in allowed
            if RESTRICTED_PICKLIST_CASE_SENSITIVE
            else str(value).casefold() in {a.casefold() for a in allowed}
        )
        if not ok:
            raise SalesforceError(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                RESTRICTED_PICKLIST_ERROR.format(label=f.label, value=value),
                [f.name],
            )


def _picklist_field(name: str) -> tuple[str, FieldDef]:
    sobject, _, field_name = str(name).partition(".")
    definition = schema.sobject_def(sobject)
    f = definition.field(field_name) if definition else None
    if definition is None or f is None or f.type != "picklist" or f.feature:
        raise ValueError(f"{name!r} is not a configurable picklist (write Object.Field)")
    return definition.name, f


def normalize_picklist_values(raw: Any) -> dict[str, list[str]]:
    """Check the ``picklist_values`` setting; keys become canonical ("lead.leadsource" ok)."""
    if not isinstance(raw, Mapping):
        raise ValueError("picklist_values must be an object of Object.Field -> [values]")
    out: dict[str, list[str]] = {}
    for name, listed in raw.items():
        sobject, f = _picklist_field(name)
        if not isinstance(listed, list) or not all(isinstance(v, str) and v for v in listed):
            raise ValueError(f"picklist_values[{name!r}] must be a list of non-empty strings")
        out[key(sobject, f)] = list(dict.fromkeys(listed))
    return out


def normalize_restricted(raw: Any) -> list[str]:
    """Check the ``restricted_picklists`` setting (a list of Object.Field)."""
    if not isinstance(raw, list | tuple | set | frozenset):
        raise ValueError("restricted_picklists must be a list of Object.Field names")
    out = []
    for name in raw:
        sobject, f = _picklist_field(name)
        out.append(key(sobject, f))
    return sorted(set(out))
