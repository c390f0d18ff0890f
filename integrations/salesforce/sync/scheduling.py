"""When a sync runs: requesting it, retry delays, leases, drains, resuming waiting syncs, the
sweeper.

The `InquirySync` row, not a broker message, is the truth: `request_sync` marks it due and
enqueues a drain of its org after commit; `syncs_sweep` re-sends due rows that no worker leases
and that were not enqueued recently. See docs/architecture.md ("Scheduling").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import random
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
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
from integrations.salesforce.sync import drain_marks
from integrations.salesforce.sync.locks import lock_ttl_seconds, redis_client, redis_key
from integrations.salesforce.task_queue import SYNC_DRAIN, SYNC_INQUIRY, send_task

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
# Up to this many due syncs are re-enqueued per sweep in one-inquiry-per-task mode; a drain
# sweep sends one message per source with due syncs, up to this many sources.
SWEEP_BATCH = 1000
# Failures of our own infrastructure (database, Redis) and unexpected errors are retried soon:
# from INFRASTRUCTURE_RETRY_BASE_SECONDS, never longer apart than INFRASTRUCTURE_RETRY_CAP_SECONDS.
INFRASTRUCTURE_RETRY_BASE_SECONDS = 2
INFRASTRUCTURE_RETRY_CAP_SECONDS = 30


def lease_seconds() -> int:
    """How long a worker owns a sync without renewing it: `SYNC_LEASE_SECONDS`. A running
    drain's heartbeat renews it (`heartbeat`), so a killed worker's syncs are free again within
    this many seconds and a live one never loses them."""
    return lock_ttl_seconds()


def batch_size() -> int:
    """How many due syncs of one org a drain takes (`SYNC_BATCH_SIZE`; 1 = one per task)."""
    return max(1, min(200, int(getattr(settings, "SYNC_BATCH_SIZE", 200) or 1)))


def new_lease_token() -> str:
    return secrets.token_hex(8)


def retry_cap_seconds() -> int:
    return min(RETRY_CAP_SECONDS, max(60, settings.CELERY_VISIBILITY_TIMEOUT // 2))


def retry_delay(attempt: int, *, base: float = RETRY_BASE_SECONDS) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, …): capped exponential backoff
    with equal jitter."""
    delay = min(retry_cap_seconds(), base * 2 ** max(0, attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)


# --------------------------------------------------------------------------- requesting


_SEND_RETRY = {"max_retries": 1, "interval_start": 0.2, "interval_step": 0.5}


def enqueue_sync(inquiry_id: int, countdown: float | None = None) -> bool:
    """Send the one-inquiry task; a broker failure is logged, not raised (returns False): the
    row is still due and the sweeper will send it."""
    try:
        send_task(
            SYNC_INQUIRY, (inquiry_id,), countdown=countdown, retry=True, retry_policy=_SEND_RETRY
        )
    except Exception:  # broker down: kombu raises a variety of connection errors
        logger.warning("could not enqueue sync of inquiry %s; the sweeper will", inquiry_id)
        return False
    return True


def _queued_key(source_id: int) -> str:
    return redis_key(f"drain-queued:{source_id}")


def _scheduled_key(source_id: int) -> str:
    return redis_key(f"drain-at:{source_id}")


def enqueue_drain(
    source_id: int, countdown: float | None = None, *, force: bool = False, parallel: bool = False
) -> bool:
    """Send a drain of the syncs of `source_id`'s org: now, or in `countdown` seconds.

    Deduplicated through Redis so an org has one drain message waiting at a time, however many
    inquiries arrive (fairness: a burst of one org never buries another org's message): a drain
    sent now sets `drain-queued:<source>` (cleared when a drain starts, `drain_started`); a later
    one is skipped while an earlier or equal one is scheduled. `force` sends regardless (the
    sweeper's). Redis errors only cost deduplication. Returns whether a message went out (or
    one was already waiting); False when the broker refused, so the sweeper will. `parallel`
    marks a backlog's extra drain, which may run beside the org's others (`drain_running`).
    """
    client = redis_client() if not force else None
    try:
        if client is not None and not countdown:
            if not client.set(_queued_key(source_id), "1", nx=True, ex=lease_seconds() * 4):
                return True
        elif client is not None and countdown:
            now = timezone.now().timestamp()
            at = now + countdown
            current = client.get(_scheduled_key(source_id))
            # A drain still to come, no later than this one: it will do.
            if current is not None and now < float(current) <= at + 1:
                return True
            client.set(_scheduled_key(source_id), str(at), ex=int(countdown) + 60)
    except Exception:  # Redis down: send without deduplication (extra drains are no-ops)
        logger.warning("drain deduplication unavailable; sending anyway", exc_info=True)
    try:
        args = (source_id, True) if parallel else (source_id,)
        send_task(SYNC_DRAIN, args, countdown=countdown, retry=True, retry_policy=_SEND_RETRY)
    except Exception:  # broker down
        logger.warning(
            "could not enqueue drain of source %s; the sweeper will", source_id, exc_info=True
        )
        if client is not None and not countdown:
            # Redis down too: the key expires by itself.
            with contextlib.suppress(Exception):
                client.delete(_queued_key(source_id))
        return False
    return True


def drain_started(source_ids: Iterable[int]) -> None:
    """A drain of the org of `source_ids` (the source it was sent for, its org's owner and the
    sources that inherit from it) is about to look for due rows: later requests must send a new
    message (the rows they commit from now on may be missed by this look). One Redis call and,
    on PostgreSQL, one short transaction for the intake's marks (`drain_marks.clear`, whose
    database errors it raises: a drain that could not clear them must not look).

    Only a drain that goes on to lease calls this. A drain that finds its org's drains busy
    leaves the marks alone: the retry it sends (`enqueue_drain` with a countdown) is the message
    still waiting for those rows, so requests meanwhile need not send one each."""
    source_ids = list(dict.fromkeys(source_ids))
    client = redis_client()
    keys = [_queued_key(source_id) for source_id in source_ids]
    if client is not None and keys:
        try:
            client.delete(*keys)
        except Exception:  # Redis down: the keys expire by themselves
            logger.warning("could not clear the drain-queued marks of sources %s", source_ids)
    # The intake's marks in PostgreSQL, after the Redis ones. The other way round, an intake
    # between the two would set a new mark, find this drain's Redis mark still set and send no
    # message: its mark would vouch for a drain that had already cleared, and the next
    # inquiries, trusting it, would wait for the sweeper. This way an intake that sets a mark
    # either sends a message or met the Redis mark of a drain that has yet to clear.
    drain_marks.clear(source_ids)


@contextlib.contextmanager
def drain_running(owner_id: int, token: str) -> Iterator[tuple[int, Callable[[], None]]]:
    """Count the drains of one org running now: yields (how many, this one included; a renew
    callable for the heartbeat). One drain per org at a time takes what arrives (what arrives
    meanwhile waits for it to finish and goes in the next batch: batches grow with the load,
    with no fixed wait); a drain with a full batch (a backlog) starts another in parallel while
    fewer than `SYNC_DRAINS_PER_ORG` run, so a big backlog uses a few workers, never all of
    them, and other orgs' drains always find one free.

    Kept in Redis as a sorted set of drain tokens scored by when their lease ends, renewed by
    the heartbeat: a killed worker's drain stops counting within a lease. Without Redis (or
    with Redis down) every drain counts as alone; leases still keep them apart.
    """
    client = redis_client()
    key = redis_key(f"drains-running:{owner_id}")
    running = 1

    def renew() -> None:
        if client is not None:
            client.zadd(key, {token: time.time() + lease_seconds()}, xx=True)

    if client is not None:
        try:
            now = time.time()
            pipe = client.pipeline()
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zadd(key, {token: now + lease_seconds()})
            pipe.zcard(key)
            pipe.expire(key, lease_seconds() * 4)
            running = int(pipe.execute()[2])
        except Exception:  # Redis down: no count (see above)
            client = None
    try:
        yield running, renew
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.zrem(key, token)


def drains_per_org() -> int:
    return max(1, int(getattr(settings, "SYNC_DRAINS_PER_ORG", 3) or 1))


def drain_seconds() -> float:
    """How long one drain task goes on taking its org's next batches (`SYNC_DRAIN_SECONDS`)
    before it hands over to a new message at the back of the queue, so orgs take turns."""
    return max(0.0, float(getattr(settings, "SYNC_DRAIN_SECONDS", 5) or 0))


def enqueue_requested(inquiry_id: int, source_id: int, countdown: float | None = None) -> bool:
    """Send what a sync request needs (its org's drain, or its own task with
    `SYNC_BATCH_SIZE=1`), after the request's commit; when nothing went out, the next sweep
    sends it at once rather than after its grace. Returns whether it went out."""
    sent = enqueue_sync(inquiry_id, countdown) if batch_size() == 1 else enqueue_drain(source_id)
    if not sent:
        drain_marks.forget(source_id)
        with contextlib.suppress(Exception):
            InquirySync.objects.filter(inquiry_id=inquiry_id).update(enqueued_at=None)
    return sent


def request_sync(*, inquiry: Inquiry) -> InquirySync:
    """Mark the inquiry as due for a sync and, after commit, enqueue a drain of its org (or,
    with `SYNC_BATCH_SIZE=1`, its own task). Ids only.

    One statement: the row is created with `requested_version` 1, or its version is bumped, in
    an `INSERT … ON CONFLICT (inquiry) DO UPDATE … RETURNING`, so simultaneous requests each
    count and the intake path stays within its statement budget (issue 11). The returned row is
    cached on `inquiry` (`inquiry.salesforce_sync`), so the status shown right after needs no
    query."""
    params = insert_params(InquirySync, {"inquiry_id": inquiry.pk, **request_sync_values()})
    sync = fetch_returned(InquirySync, _request_sync_statement(vendor()), params)
    assert sync is not None  # an upsert always returns its row
    sync.inquiry = inquiry  # also caches the sync on the inquiry (a one-to-one)
    enqueue_after_commit(inquiry)
    return sync


def enqueue_after_commit(inquiry: Inquiry) -> None:
    """Once the transaction that requested `inquiry`'s sync commits (at once outside one),
    send what it needs (`enqueue_requested`)."""
    inquiry_id, source_id = inquiry.pk, inquiry.source_id
    transaction.on_commit(lambda: enqueue_requested(inquiry_id, source_id))


def request_sync_values(now: dt.datetime | None = None) -> dict[str, Any]:
    """The values of a new `InquirySync` row that a request writes (all but `inquiry_id`), due
    `now` (by default the current time)."""
    now = now or timezone.now()
    return {
        "requested_version": 1,
        "due_at": now,
        "status": SyncStatus.PENDING,
        "enqueued_at": now,
    }


@functools.cache
def _request_sync_statement(vendor: str) -> str:
    """The SQL of `request_sync` (built once per database vendor)."""
    columns = insert_columns(InquirySync)
    return (
        # Only quoted identifiers of the model are formatted in; every value is a parameter.
        f"INSERT INTO {quote(InquirySync._meta.db_table)} ({', '.join(columns)})"  # noqa: S608
        f" VALUES ({', '.join(['%s'] * len(columns))}) {request_sync_on_conflict()}"
        f" RETURNING {returning_columns(InquirySync)}"
    )


@functools.cache
def request_sync_on_conflict() -> str:
    """The ON CONFLICT clause of a sync request: a row that exists gets its requested version
    bumped and is due now (shared by `request_sync` and the intake's joined statement)."""
    return (
        f"ON CONFLICT ({quote('inquiry_id')}) DO UPDATE SET"
        f" {quote('requested_version')} = {column(InquirySync, 'requested_version')} + 1,"
        f" {quote('due_at')} = EXCLUDED.{quote('due_at')},"
        f" {quote('status')} = EXCLUDED.{quote('status')},"
        f" {quote('enqueued_at')} = EXCLUDED.{quote('enqueued_at')},"
        f" {quote('updated_at')} = EXCLUDED.{quote('updated_at')}"
    )


def schedule_next(passes: Iterable[tuple[int, int, float]]) -> None:
    """Send the messages for the next passes of finished syncs: (inquiry id, source id, seconds
    from now). In drain mode one drain per source, at the soonest of its passes."""
    passes = list(passes)
    if batch_size() == 1:
        for inquiry_id, _source_id, seconds in passes:
            enqueue_sync(inquiry_id, seconds or None)
        return
    soonest: dict[int, float] = {}
    for _inquiry_id, source_id, seconds in passes:
        soonest[source_id] = min(seconds, soonest.get(source_id, seconds))
    for source_id, seconds in soonest.items():
        enqueue_drain(source_id, seconds or None)


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


def _unleased(now: dt.datetime) -> Q:
    return Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)


def syncs_sweep(*, limit: int = SWEEP_BATCH) -> int:
    """Re-send syncs that are due, not leased by a running worker, and whose message was not
    sent recently (`enqueued_at` older than `SYNC_ENQUEUED_GRACE_SECONDS`, or consumed): a lost
    message, a Redis restart or a killed worker delays a sync, never loses it, and a sweep never
    piles copies of a waiting message up. In drain mode one message per source with due syncs
    (the drains then take 200 at a time); else one per sync, up to `limit`. Returns how many
    rows were re-sent."""
    now = timezone.now()
    grace = dt.timedelta(seconds=getattr(settings, "SYNC_ENQUEUED_GRACE_SECONDS", 15))
    due = (
        InquirySync.objects.filter(due_at__isnull=False, due_at__lte=now)
        .filter(_unleased(now))
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - grace))
    )
    if batch_size() == 1:
        ids = list(due.order_by("due_at").values_list("pk", "inquiry_id")[:limit])
        sent = [pk for pk, inquiry_id in ids if enqueue_sync(inquiry_id)]
        count = InquirySync.objects.filter(pk__in=sent).update(enqueued_at=now)
    else:
        source_ids = sorted(
            set(due.values_list("inquiry__source_id", flat=True).distinct()[:limit])
        )
        sent = [sid for sid in source_ids if enqueue_drain(sid, force=True)]
        count = due.filter(inquiry__source_id__in=sent).update(enqueued_at=now) if sent else 0
    if count:
        logger.info("sweeper re-enqueued %s due sync(s)", count)
    return count


def take_lease(inquiry_id: int, token: str = "") -> dt.datetime | None:
    """Lease one due sync for this worker (`token` marks it for the heartbeat); None when it is
    not due or another worker holds it."""
    now = timezone.now()
    lease_until = now + dt.timedelta(seconds=lease_seconds())
    taken = (
        InquirySync.objects.filter(inquiry_id=inquiry_id, due_at__isnull=False)
        # A second early: the countdown of a retry is timed by the worker's clock.
        .filter(due_at__lte=now + dt.timedelta(seconds=1))
        .filter(_unleased(now))
        .update(lease_expires_at=lease_until, lease_token=token, enqueued_at=None)
    )
    return lease_until if taken else None


def lease_due_syncs(*, source_ids: list[int], limit: int, token: str) -> list[int]:
    """Lease up to `limit` due syncs of `source_ids` for one drain, oldest due first; returns
    their row ids.

    PostgreSQL: `SELECT … FOR UPDATE SKIP LOCKED` picks rows no other drain is picking at this
    moment, then they are leased under `token`. SQLite has no row locks (Django drops the
    clause): its writers are serialised, and the UPDATE repeats the due-and-unleased condition,
    so a row another drain leased in between is not taken twice; the rows are read back by
    token.
    """
    now = timezone.now()
    lease_until = now + dt.timedelta(seconds=lease_seconds())
    due = (
        InquirySync.objects.filter(inquiry__source_id__in=source_ids, due_at__isnull=False)
        .filter(due_at__lte=now + dt.timedelta(seconds=1))
        .filter(_unleased(now))
    )
    with transaction.atomic():
        picked = list(
            due.order_by("due_at")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", flat=True)[:limit]
        )
        if not picked:
            return []
        due.filter(pk__in=picked).update(
            lease_expires_at=lease_until, lease_token=token, enqueued_at=None
        )
    return list(
        InquirySync.objects.filter(pk__in=picked, lease_token=token).values_list("pk", flat=True)
    )


def has_full_batch(*, source_ids: list[int], limit: int) -> bool:
    """Whether at least `limit` unleased syncs of `source_ids` are due now (a backlog)."""
    now = timezone.now()
    due = (
        InquirySync.objects.filter(inquiry__source_id__in=source_ids, due_at__isnull=False)
        .filter(due_at__lte=now + dt.timedelta(seconds=1))
        .filter(_unleased(now))
    )
    return due.values("pk")[:limit].count() >= limit


def next_due_in(*, source_ids: list[int]) -> float | None:
    """Seconds until the soonest unleased due sync of `source_ids` (0 if one is due now), or
    None when none is scheduled. A drain that ends asks this to send its continuation."""
    now = timezone.now()
    soonest = (
        InquirySync.objects.filter(inquiry__source_id__in=source_ids, due_at__isnull=False)
        .filter(_unleased(now))
        .order_by("due_at")
        .values_list("due_at", flat=True)
        .first()
    )
    if soonest is None:
        return None
    return max(0.0, (soonest - now).total_seconds())
