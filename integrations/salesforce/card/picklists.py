"""The owner's Lead source and Lead Status choices on the card: the org's own values.

The values come from the org's schema as the sync stored it (`sync.org_schema`, read from
describe at the first sync and on every Validate Connection), so the card makes no API call.
Blank means the org's default, which the choice's label names: the org's "Web" Lead source when
its picklist has one (else none), and the Lead Status picklist's default. A stored choice the
org no longer lists stays selectable, marked, so saving the form never changes it silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from integrations.salesforce.models import SalesforceConnection, SalesforceSettings
from integrations.salesforce.sync.mapping import WEB_LEAD_SOURCE
from integrations.salesforce.sync.org_schema import LEAD, OrgSchema, org_schema_stored

Choices = list[tuple[str, str]]


@dataclass(frozen=True)
class LeadPicklistChoices:
    """The choices of the card's two select fields, blank (the org's default) first."""

    lead_source: Choices
    lead_status: Choices
    from_org: bool  # False: no schema read yet (connect, then Validate Connection)


def _choices(schema: OrgSchema | None, name: str, default_label: str, current: str) -> Choices:
    info = schema.field(LEAD, name) if schema else None
    values = [(p.value, p.label) for p in info.picklist] if info else []
    choices: Choices = [("", default_label), *values]
    if current and current not in {value for value, _ in values}:
        choices.append((current, f"{current} (not in your org's list)"))
    return choices


def lead_picklist_choices(
    *, connection: SalesforceConnection | None, current: SalesforceSettings
) -> LeadPicklistChoices:
    """The Lead source and Lead Status choices for `current`'s form, from the connection's
    stored schema (none before the org's schema was first read)."""
    schema = org_schema_stored(connection=connection) if connection else None
    source_info = schema.field(LEAD, "LeadSource") if schema else None
    web = source_info.picklist_value(WEB_LEAD_SOURCE) if source_info else None
    status_info = schema.field(LEAD, "Status") if schema else None
    default_status = status_info.default_value if status_info else None
    source_default = "Your org's default"
    if web:
        source_default = f"Your org's default ({web})"
    elif schema is not None:
        source_default = "None (your org has no Web value)"
    status_default = (
        f"Your org's default status ({default_status})"
        if default_status
        else "Your org's default status"
    )
    return LeadPicklistChoices(
        lead_source=_choices(schema, "LeadSource", source_default, current.lead_source),
        lead_status=_choices(schema, "Status", status_default, current.lead_status),
        from_org=schema is not None,
    )
