"""Which syncs one drain takes: those of every source that writes to the same Salesforce org as
the same Salesforce user (`drain_group`).

Why: a business and its locations may each have their own card (Leads here, Contacts there,
other header options) and their own connection, made by the same admin to the same org. Their
records get the same owner, creator and permissions whichever connection writes them, so one
drain looks them up and writes them in the same Composite calls; a drain per card would pay
its own look-up and write calls for every card (issue 12: 20 orgs with two cards each cost
0.06 calls per inquiry). Different users or different orgs are never drained together.

See docs/architecture.md ("Scheduling").
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from autorespond.models import Source
from integrations.salesforce.models import ConnectionStatus, SalesforceConnection
from integrations.salesforce.selectors import effective_salesforce_settings


@dataclass(frozen=True)
class DrainGroup:
    """The sources one drain takes.

    `key`: the smallest pk of `owner_ids`, the same whichever source's message starts the
    drain; the drain's marks, running count, place and continuations are kept under it.
    `owner_ids`: the sources whose own settings and connection apply (sorted). `source_ids`:
    those and every source inheriting from one of them.
    """

    key: int
    owner_ids: list[int]
    source_ids: list[int]


def drain_group(*, source: Source) -> DrainGroup:
    """The drain group of `source`: the owner of its settings and every other owner whose
    usable connection is to the same org as the same user, with the sources that inherit
    from them. An owner without a usable connection is a group of its own (its syncs only
    wait for a reconnect). Raises what the database raises."""
    effective = effective_salesforce_settings(source=source)
    owner_ids = [effective.owner.pk]
    connection = effective.usable_connection
    if connection is not None:
        same_user = (
            SalesforceConnection.objects.filter(
                org_id=connection.org_id,
                user_id=connection.user_id,
                status=ConnectionStatus.CONNECTED,
            )
            # A source that inherits uses its parent's connection, never its own row.
            .exclude(
                Q(source__parent__isnull=False)
                & Q(source__salesforce_settings__inherit_from_parent=True)
            )
            .values_list("source_id", flat=True)
        )
        owner_ids = sorted({*owner_ids, *same_user})
    return DrainGroup(
        key=owner_ids[0], owner_ids=owner_ids, source_ids=inheriting_source_ids(owner_ids)
    )


def inheriting_source_ids(owner_ids: list[int]) -> list[int]:
    """`owner_ids` and every source below one of them whose settings come from it ("Inherit
    from parent", possibly over several levels), owners first."""
    ids = list(dict.fromkeys(owner_ids))
    frontier = list(ids)
    while frontier:
        frontier = list(
            Source.objects.filter(
                parent_id__in=frontier, salesforce_settings__inherit_from_parent=True
            )
            .exclude(pk__in=ids)
            .values_list("pk", flat=True)
        )
        ids.extend(frontier)
    return ids
