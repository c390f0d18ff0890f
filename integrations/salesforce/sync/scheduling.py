"""When a sync runs: requesting it, retry delays, the lease, resuming waiting syncs, the sweeper.

The `InquirySync` row, not a broker message, is the truth: `request_sync` marks it due and
enqueues the task after commit; `syncs_sweep` re-enqueues due rows that no worker leases. See
docs/architecture.md ("Scheduling").
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import random
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from autorespond.db import (
    column,
    fetch_returned,
    insert_columns,
    insert_params,
    quote,
    returning_columns,
    vendor,
)
from autorespond.models import Inquiry, Source
from autorespond.selectors import source_descendant_ids
from integrations.salesforce.models import (
    InquirySync,
    SalesforceConnection,
    SyncStatus,
)
from integrations.salesforce.selectors import effective_salesforce_settings
from integrations.salesforce.sync.locks import lock_ttl_seconds
from integrations.salesforce.task_queue import SYNC_INQUIRY, send_task

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 5
RETRY_CAP_SECONDS = 15 * 60
RATE_LIMIT_BASE_SECONDS = 60
# A person lock held by another worker: come back soon, not with the growing backoff.
LOCK_BUSY_RETRY_SECONDS = 3
# Transient failures are retried this many times (about 5 hours with the cap) before the sync is
# marked failed; a person can still press Retry. Rate limits are not counted: the org's daily
# allowance comes back by itself.
MAX_TRANSIENT_ATTEMPTS = 25
# Up to this many due syncs are re-enqueued per sweep.
SWEEP_BATCH = 1000


def lease_seconds() -> int:
    """How long a worker owns a sync: a little longer than a task may run (Celery kills a task
    at its hard time limit), so a lease never ends under a live worker."""
    return lock_ttl_seconds() + 5


def retry_cap_seconds() -> int:
    return min(RETRY_CAP_SECONDS, max(60, settings.CELERY_VISIBILITY_TIMEOUT // 2))


def retry_delay(attempt: int, *, base: float = RETRY_BASE_SECONDS) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, …): capped exponential backoff
    with equal jitter."""
    delay = min(retry_cap_seconds(), base * 2 ** max(0, attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)


# --------------------------------------------------------------------------- requesting


def enqueue_sync(inquiry_id: int, countdown: float | None = None) -> None:
    """Send the task; a broker failure is logged, not raised: the row is still due and the
    sweeper will send it."""
    try:
        send_task(
            SYNC_INQUIRY,
            (inquiry_id,),
            countdown=countdown,
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0.2, "interval_step": 0.5},
        )
    except Exception:  # broker down: kombu raises a variety of connection errors
        logger.warning("could not enqueue sync of inquiry %s; the sweeper will", inquiry_id)


def request_sync(*, inquiry: Inquiry) -> InquirySync:
    """Mark the inquiry as due for a sync and enqueue it after commit (ids only).

    One statement: the row is created with `requested_version` 1, or its version is bumped, in
    an `INSERT … ON CONFLICT (inquiry) DO UPDATE … RETURNING`, so simultaneous requests each
    count and the intake path stays within its statement budget (issue 11). The returned row is
    cached on `inquiry` (`inquiry.salesforce_sync`), so the status shown right after needs no
    query."""
    row = InquirySync(
        inquiry=inquiry, requested_version=1, due_at=timezone.now(), status=SyncStatus.PENDING
    )
    sync = fetch_returned(InquirySync, _request_sync_statement(vendor()), insert_params(row))
    assert sync is not None  # an upsert always returns its row
    sync.inquiry = inquiry  # also caches the sync on the inquiry (a one-to-one)
    inquiry_id = inquiry.pk
    transaction.on_commit(lambda: enqueue_sync(inquiry_id))
    return sync


@functools.cache
def _request_sync_statement(vendor: str) -> str:
    """The SQL of `request_sync` (built once per database vendor)."""
    columns = insert_columns(InquirySync)
    return (
        # Only quoted identifiers of the model are formatted in; every value is a parameter.
        f"INSERT INTO {quote(InquirySync._meta.db_table)} ({', '.join(columns)})"  # noqa: S608
        f" VALUES ({', '.join(['%s'] * len(columns))})"
        f" ON CONFLICT ({quote('inquiry_id')}) DO UPDATE SET"
        f" {quote('requested_version')} = {column(InquirySync, 'requested_version')} + 1,"
        f" {quote('due_at')} = EXCLUDED.{quote('due_at')},"
        f" {quote('status')} = EXCLUDED.{quote('status')},"
        f" {quote('updated_at')} = EXCLUDED.{quote('updated_at')}"
        f" RETURNING {returning_columns(InquirySync)}"
    )


def inquiry_sync_status(inquiry: Inquiry) -> dict[str, Any] | None:
    """The inquiry's sync status as the ingestion API shows it (`sync` in README), or None
    before its first sync was requested. Registered with `autorespond.hooks`. Uses the row
    cached on the inquiry when `request_sync` just wrote it (no query)."""
    try:
        sync = inquiry.salesforce_sync
    except InquirySync.DoesNotExist:
        return None
    return {
        "status": sync.status,
        "status_label": sync.get_status_display(),
        "salesforce_object": sync.sobject,
        "salesforce_id": sync.record_id,
        "error_code": sync.error_code,
        "error_message": sync.error_message,
        "failed_attempts": sync.attempt_count,
        "last_attempt_at": sync.last_attempt_at,
        "next_attempt_at": sync.due_at if sync.status == SyncStatus.RETRYING else None,
        "synced_at": sync.synced_at,
    }


def on_inquiry_changed(inquiry: Inquiry) -> None:
    """`autorespond.hooks` handler: an inquiry was created or changed, so sync it."""
    request_sync(inquiry=inquiry)


def sync_retry(*, sync: InquirySync) -> InquirySync:
    """A person's Retry (the card's button): forget the failure count and sync again now."""
    InquirySync.objects.filter(pk=sync.pk).update(attempt_count=0)
    return request_sync(inquiry=sync.inquiry)


def sync_resume_waiting(*, connection: SalesforceConnection) -> int:
    """Request again every sync that waits for a reconnect and now uses `connection` (the
    connection's own source and the sources that inherit it). Returns how many."""
    resumed = 0
    uses_connection: dict[int, bool] = {}
    waiting = InquirySync.objects.filter(status=SyncStatus.WAITING_RECONNECT).select_related(
        "inquiry__source"
    )
    for sync in waiting.iterator():
        source = sync.inquiry.source
        if source.pk not in uses_connection:
            effective = effective_salesforce_settings(source=source)
            uses_connection[source.pk] = (
                effective.connection is not None and effective.connection.pk == connection.pk
            )
        if uses_connection[source.pk]:
            request_sync(inquiry=sync.inquiry)
            resumed += 1
    return resumed


def sync_resume_waiting_for_contact_info(*, source: Source) -> int:
    """After a settings change of `source`: request again the syncs of `source`, and of the
    sources below it, that wait for contact info, so that turning "Create customer only when
    contact info is captured" off sends them now. Where the gate still applies, the sync just
    records the wait again (no API call). Returns how many."""
    source_ids = source_descendant_ids(root_ids=[source.pk])
    waiting = InquirySync.objects.filter(
        status=SyncStatus.WAITING_CONTACT_INFO, inquiry__source_id__in=source_ids
    ).select_related("inquiry")
    resumed = 0
    for sync in waiting.iterator():
        request_sync(inquiry=sync.inquiry)
        resumed += 1
    return resumed


def syncs_sweep(*, limit: int = SWEEP_BATCH) -> int:
    """Re-enqueue syncs that are due and not leased by a running worker. Returns how many."""
    now = timezone.now()
    due = (
        InquirySync.objects.filter(due_at__isnull=False, due_at__lte=now)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .order_by("due_at")
        .values_list("inquiry_id", flat=True)[:limit]
    )
    count = 0
    for inquiry_id in due:
        enqueue_sync(inquiry_id)
        count += 1
    if count:
        logger.info("sweeper re-enqueued %s due sync(s)", count)
    return count


def take_lease(inquiry_id: int) -> dt.datetime | None:
    now = timezone.now()
    lease_until = now + dt.timedelta(seconds=lease_seconds())
    taken = (
        InquirySync.objects.filter(inquiry_id=inquiry_id, due_at__isnull=False)
        # A second early: the countdown of a retry is timed by the worker's clock.
        .filter(due_at__lte=now + dt.timedelta(seconds=1))
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .update(lease_expires_at=lease_until)
    )
    return lease_until if taken else None
