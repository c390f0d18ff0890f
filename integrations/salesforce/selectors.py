"""Reads for the Salesforce integration. `effective_salesforce_settings` is the one place that
decides which settings and which connection apply to a source."""

from __future__ import annotations

from dataclasses import dataclass

from autorespond.models import Source
from integrations.salesforce.models import SalesforceConnection, SalesforceSettings


@dataclass(frozen=True)
class EffectiveSettings:
    """What applies to `source`: the settings and connection of `owner`, the source they come from
    (the source itself, or the nearest ancestor it inherits from)."""

    source: Source
    owner: Source
    settings: SalesforceSettings
    connection: SalesforceConnection | None

    @property
    def inherited(self) -> bool:
        return self.owner.pk != self.source.pk

    @property
    def usable_connection(self) -> SalesforceConnection | None:
        if self.connection is not None and self.connection.is_usable:
            return self.connection
        return None


def salesforce_settings_of(*, source: Source) -> SalesforceSettings:
    """The source's own settings row, or an unsaved one with the defaults when it has none."""
    try:
        return source.salesforce_settings
    except SalesforceSettings.DoesNotExist:
        return SalesforceSettings(source=source)


def salesforce_connection_of(*, source: Source) -> SalesforceConnection | None:
    try:
        return source.salesforce_connection
    except SalesforceConnection.DoesNotExist:
        return None


def effective_salesforce_settings(*, source: Source) -> EffectiveSettings:
    """Follow "Inherit from parent" upwards: a source that inherits uses its parent's settings and
    connection, and the parent may itself inherit from its own parent. A business (no parent)
    always uses its own. The source tree has no cycles (see `autorespond.services.source_upsert`),
    and the walk also stops at a source it has already seen, to be safe."""
    owner = source
    seen = {owner.pk}
    own = salesforce_settings_of(source=owner)
    while own.inherit_from_parent and owner.parent_id is not None and owner.parent_id not in seen:
        owner = owner.parent
        seen.add(owner.pk)
        own = salesforce_settings_of(source=owner)
    return EffectiveSettings(
        source=source,
        owner=owner,
        settings=own,
        connection=salesforce_connection_of(source=owner),
    )
