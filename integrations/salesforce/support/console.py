"""The support console: reads (selectors) and staff actions (services) over every connection.

Every action writes one `StaffAction` row, the console's audit log. See docs/architecture.md
("The support console").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from autorespond.models import Source
from integrations.salesforce.models import (
    PERSON_RETRY_STATUSES,
    ConnectionStatus,
    InquirySync,
    SalesforceConnection,
    SalesforceSettings,
    StaffAction,
    StaffActionKind,
    SyncStatus,
)
from integrations.salesforce.oauth.flow import DisconnectResult, connection_disconnect
from integrations.salesforce.selectors import effective_salesforce_settings
from integrations.salesforce.sync.scheduling import sync_retry
from integrations.salesforce.validation import ValidationResult, connection_validate

logger = logging.getLogger(__name__)

# Syncs that have not reached Salesforce yet but are expected to.
WAITING_STATUSES = (
    SyncStatus.PENDING,
    SyncStatus.RETRYING,
    SyncStatus.WAITING_RECONNECT,
    SyncStatus.WAITING_CONTACT_INFO,
)

# The console's status filter: the connection's own status, and two views support asks for.
STATUS_FILTERS = {
    "connected": "Connected",
    "needs_reconnect": "Needs reconnect",
    "validation_failed": "Last validation failed",
    "failed_syncs": "Has failed syncs",
}

User = AbstractBaseUser | AnonymousUser


# --- Reads -------------------------------------------------------------------------------------


class SourceTree:
    """Every source's parent, name and "Inherit from parent" flag, loaded in two queries."""

    def __init__(self) -> None:
        self.sources: dict[int, Source] = {s.pk: s for s in Source.objects.all()}
        self.inherits: set[int] = set(
            SalesforceSettings.objects.filter(inherit_from_parent=True).values_list(
                "source_id", flat=True
            )
        )

    def business_of(self, source_id: int) -> Source:
        node = self.sources[source_id]
        seen = {node.pk}
        while node.parent_id is not None and node.parent_id not in seen:
            node = self.sources[node.parent_id]
            seen.add(node.pk)
        return node

    def owner_of(self, source_id: int) -> int:
        """The source whose settings and connection apply to `source_id`: the same walk as
        `selectors.effective_salesforce_settings`."""
        owner = source_id
        seen = {owner}
        while owner in self.inherits:
            parent_id = self.sources[owner].parent_id
            if parent_id is None or parent_id in seen:
                break
            owner = parent_id
            seen.add(owner)
        return owner

    def users_of(self, owner_ids: Iterable[int]) -> dict[int, list[int]]:
        """For each owner source, the ids of the sources whose settings come from it."""
        wanted = set(owner_ids)
        users: dict[int, list[int]] = {pk: [] for pk in wanted}
        for source_id in self.sources:
            owner = self.owner_of(source_id)
            if owner in wanted:
                users[owner].append(source_id)
        return users

    def descendants_of(self, root_ids: Iterable[int]) -> set[int]:
        children: dict[int, list[int]] = {}
        for source in self.sources.values():
            if source.parent_id is not None:
                children.setdefault(source.parent_id, []).append(source.pk)
        found = set(root_ids)
        frontier = list(found)
        while frontier:
            frontier = [c for pk in frontier for c in children.get(pk, []) if c not in found]
            found.update(frontier)
        return found


@dataclass
class ConnectionRow:
    """One line of the console: a connection with its business and the syncs that use it."""

    connection: SalesforceConnection
    business: Source
    source_ids: list[int] = field(default_factory=list)
    waiting: int = 0
    failed: int = 0
    # The newest sync of those sources that is failing now (failed, retrying or waiting).
    last_error: InquirySync | None = None

    @property
    def description(self) -> str:
        return connection_description(connection=self.connection, business=self.business)


def connection_description(
    *, connection: SalesforceConnection, business: Source | None = None
) -> str:
    """How the audit log and the pages name a connection, in words that survive its deletion."""
    business = business or connection.source.business()
    where = connection.source.name
    if business.pk != connection.source_id:
        where = f"{where} ({business.name})"
    user = connection.username or connection.user_id
    return f"{user} @ {connection.org_id} for {where}"


def _sync_counts(source_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """(waiting, failed) per source, in one grouped query."""
    rows = (
        InquirySync.objects.filter(inquiry__source_id__in=list(source_ids))
        .values("inquiry__source_id")
        .annotate(
            waiting=Count("pk", filter=Q(status__in=WAITING_STATUSES)),
            failed=Count("pk", filter=Q(status=SyncStatus.FAILED)),
        )
    )
    return {row["inquiry__source_id"]: (row["waiting"], row["failed"]) for row in rows}


# A sync in one of these states with an error code is failing now; a sync that later went
# through may keep its last error, which is history rather than a current problem.
ERROR_STATUSES = (
    SyncStatus.FAILED,
    SyncStatus.BLOCKED_DUPLICATE,
    SyncStatus.RETRYING,
    SyncStatus.WAITING_RECONNECT,
)


def _last_errors(source_ids: Iterable[int]) -> dict[int, InquirySync]:
    """The newest failing sync per source, in two queries (a subquery per source, then rows)."""
    newest = (
        InquirySync.objects.filter(inquiry__source_id=OuterRef("pk"), status__in=ERROR_STATUSES)
        .exclude(error_code="")
        .order_by("-updated_at", "-pk")
        .values("pk")[:1]
    )
    sync_ids = dict(
        Source.objects.filter(pk__in=list(source_ids))
        .annotate(last_error_id=Subquery(newest))
        .filter(last_error_id__isnull=False)
        .values_list("pk", "last_error_id")
    )
    syncs = InquirySync.objects.select_related("inquiry").in_bulk(sync_ids.values())
    return {source_id: syncs[sync_id] for source_id, sync_id in sync_ids.items()}


def console_connections(
    *, status: str = "", query: str = "", tree: SourceTree | None = None
) -> QuerySet[SalesforceConnection]:
    """The connections the console lists, broken ones first, narrowed by the filter and search.

    `query` matches the business or source (name or slug; a source that inherits finds the
    connection it uses), the Salesforce username or display name, or the org id.
    """
    connections = SalesforceConnection.objects.select_related("source").order_by(
        "-status", "source__name", "pk"
    )
    if status in (ConnectionStatus.CONNECTED, ConnectionStatus.NEEDS_RECONNECT):
        connections = connections.filter(status=status)
    elif status == "validation_failed":
        connections = connections.filter(last_validation_ok=False)
    elif status == "failed_syncs":
        tree = tree or SourceTree()
        failing_sources = (
            InquirySync.objects.filter(status=SyncStatus.FAILED)
            .order_by()
            .values_list("inquiry__source_id", flat=True)
            .distinct()
        )
        owners = {tree.owner_of(pk) for pk in failing_sources}
        connections = connections.filter(source_id__in=owners)
    query = query.strip()
    if "\x00" in query:
        # No name, slug or user can hold a NUL (PostgreSQL stores none in text), so nothing
        # matches; and PostgreSQL refuses a NUL in a query's parameter with an error (a 500).
        return connections.none()
    if query:
        tree = tree or SourceTree()
        matched = Source.objects.filter(Q(name__icontains=query) | Q(slug__icontains=query))
        # A business matches with everything below it; each matched source leads to the
        # connection it actually uses.
        sources = tree.descendants_of(matched.values_list("pk", flat=True))
        owners = {tree.owner_of(pk) for pk in sources}
        connections = connections.filter(
            Q(source_id__in=owners)
            | Q(username__icontains=query)
            | Q(display_name__icontains=query)
            | Q(org_id__iexact=query)
        )
    return connections


def console_connection_rows(
    *, connections: Iterable[SalesforceConnection], tree: SourceTree | None = None
) -> list[ConnectionRow]:
    """The connections with business and sync counts; a fixed number of queries for any page."""
    connections = list(connections)
    tree = tree or SourceTree()
    users = tree.users_of(c.source_id for c in connections)
    all_ids = [pk for ids in users.values() for pk in ids]
    counts = _sync_counts(all_ids)
    errors = _last_errors(all_ids)
    rows = []
    for connection in connections:
        source_ids = users.get(connection.source_id, [connection.source_id])
        row = ConnectionRow(
            connection=connection,
            business=tree.business_of(connection.source_id),
            source_ids=sorted(source_ids),
        )
        for source_id in source_ids:
            waiting, failed = counts.get(source_id, (0, 0))
            row.waiting += waiting
            row.failed += failed
            error = errors.get(source_id)
            if error is not None and (
                row.last_error is None or error.updated_at > row.last_error.updated_at
            ):
                row.last_error = error
        rows.append(row)
    return rows


def console_connection_row(*, connection: SalesforceConnection) -> ConnectionRow:
    return console_connection_rows(connections=[connection])[0]


def console_connection_syncs(*, row: ConnectionRow, status: str = "") -> QuerySet[InquirySync]:
    """The sync history of the sources using the connection, newest first, with attempts."""
    syncs = (
        InquirySync.objects.filter(inquiry__source_id__in=row.source_ids)
        .select_related("inquiry", "inquiry__source")
        .prefetch_related("attempts")
        .order_by("-updated_at", "-pk")
    )
    if status == "failed":
        syncs = syncs.filter(status=SyncStatus.FAILED)
    elif status == "waiting":
        syncs = syncs.filter(status__in=WAITING_STATUSES)
    return syncs


def console_failed_syncs(*, connection: SalesforceConnection) -> QuerySet[InquirySync]:
    row = console_connection_row(connection=connection)
    return InquirySync.objects.filter(
        inquiry__source_id__in=row.source_ids, status=SyncStatus.FAILED
    ).select_related("inquiry", "inquiry__source")


def staff_actions(*, connection_id: int | None = None) -> QuerySet[StaffAction]:
    actions = StaffAction.objects.select_related("actor").order_by("-created_at", "-pk")
    if connection_id is not None:
        actions = actions.filter(connection_id=connection_id)
    return actions


# --- Actions -----------------------------------------------------------------------------------


def staff_action_record(
    *,
    actor: User | None,
    action: StaffActionKind,
    target: str,
    connection_id: int | None = None,
    source_id: int | None = None,
    detail: dict | None = None,
) -> StaffAction:
    """Write one line of the audit log."""
    person = actor if actor is not None and actor.is_authenticated else None
    return StaffAction.objects.create(
        actor=person,
        actor_name=person.get_username() if person is not None else "",
        action=action,
        target=target[:400],
        connection_id=connection_id,
        source_id=source_id,
        detail=detail or {},
    )


def console_connection_validate(
    *, connection: SalesforceConnection, actor: User
) -> ValidationResult:
    """Validate one connection now, as support, and log it."""
    description = connection_description(connection=connection)
    result = connection_validate(connection=connection)
    staff_action_record(
        actor=actor,
        action=StaffActionKind.VALIDATED,
        target=description,
        connection_id=connection.pk,
        source_id=connection.source_id,
        detail={"ok": result.ok, "message": result.message},
    )
    return result


def console_sync_retry(*, sync: InquirySync, actor: User) -> bool:
    """Send a failed sync again; False (and nothing done) when it is not failed."""
    if sync.status not in PERSON_RETRY_STATUSES:
        return False
    _retry(sync)
    staff_action_record(
        actor=actor,
        action=StaffActionKind.RETRIED,
        target=f"Inquiry {sync.inquiry.external_id} of {sync.inquiry.source.name}",
        source_id=sync.inquiry.source_id,
        connection_id=_connection_id_of(sync.inquiry.source),
        detail={
            "sync_id": sync.pk,
            "inquiry_id": sync.inquiry_id,
            "error_code": sync.error_code,
            "error_message": sync.error_message,
        },
    )
    return True


def console_connection_retry_failed(*, connection: SalesforceConnection, actor: User) -> int:
    """Send again every failed sync of the sources using the connection; returns how many."""
    syncs = list(console_failed_syncs(connection=connection))
    for sync in syncs:
        _retry(sync)
    staff_action_record(
        actor=actor,
        action=StaffActionKind.RETRIED_ALL,
        target=connection_description(connection=connection),
        connection_id=connection.pk,
        source_id=connection.source_id,
        detail={"count": len(syncs), "sync_ids": [s.pk for s in syncs][:500]},
    )
    return len(syncs)


def console_connection_disconnect(
    *, connection: SalesforceConnection, actor: User
) -> DisconnectResult:
    """Disconnect as support (revoke at Salesforce, delete the tokens) and log it."""
    description = connection_description(connection=connection)
    connection_id, source_id = connection.pk, connection.source_id
    result = connection_disconnect(connection=connection)
    staff_action_record(
        actor=actor,
        action=StaffActionKind.DISCONNECTED,
        target=description,
        connection_id=connection_id,
        source_id=source_id,
        detail={"revoked": result.revoked, "message": result.message},
    )
    return result


def _retry(sync: InquirySync) -> None:
    sync_retry(sync=sync)


def _connection_id_of(source: Source) -> int | None:
    connection = effective_salesforce_settings(source=source).connection
    return connection.pk if connection is not None else None
