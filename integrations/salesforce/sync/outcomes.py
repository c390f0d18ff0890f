"""The outcome of a sync attempt: its result, how an error is classified (retry when, fail
when), and storing a drain's outcomes together.

Only Salesforce's verdict on the data makes a sync fail for good: our own infrastructure failing
(database, Redis) is retried within seconds, an unexpected error a few times with backoff. See
docs/architecture.md ("Failures").
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from django.db import InterfaceError, OperationalError, close_old_connections, transaction
from django.utils import timezone

from autorespond.db import bulk_update_values
from integrations.salesforce.api.errors import (
    SalesforceAuthError,
    SalesforceError,
    SalesforceRateLimited,
    SalesforceTransientError,
)
from integrations.salesforce.models import InquirySync, SyncAttempt, SyncStatus
from integrations.salesforce.sync.items import SUCCESS_STATUSES
from integrations.salesforce.sync.scheduling import (
    INFRASTRUCTURE_RETRY_BASE_SECONDS,
    INFRASTRUCTURE_RETRY_CAP_SECONDS,
    MAX_TRANSIENT_ATTEMPTS,
    RATE_LIMIT_BASE_SECONDS,
    retry_delay,
    schedule_next,
)

logger = logging.getLogger(__name__)

# An unexpected error (a bug of ours, or something nobody foresaw) is retried this many times
# with backoff before the sync shows as failed (with Retry); its traceback goes to the log.
MAX_UNEXPECTED_ATTEMPTS = 3
# Our database being briefly unavailable while the outcome is stored: tries, and the pause
# before each (seconds). After that the lease runs out and the sweeper sends the sync again.
_FINISH_TRIES = (0.5, 1.0, 2.0, 4.0)


class InfrastructureError(SalesforceError):
    """Our own database or Redis failed during a sync: never the sync's fault, always retried
    within seconds (never marked failed)."""


class UnexpectedError(SalesforceError):
    """An exception nobody foresaw: retried a few times, then shown as failed (with Retry)."""


def infrastructure_error(exc: BaseException) -> InfrastructureError | None:
    """The typed error for a failure of our own infrastructure, or None for anything else."""
    if isinstance(exc, redis.RedisError):
        return InfrastructureError(
            "REDIS_UNAVAILABLE",
            "Our lock service (Redis) was unavailable for a moment; trying again in a few seconds.",
        )
    if isinstance(exc, OperationalError | InterfaceError):
        return InfrastructureError(
            "DATABASE_UNAVAILABLE",
            "Our database was busy or unavailable for a moment; trying again in a few seconds.",
        )
    return None


@dataclass
class AttemptResult:
    """The outcome of one attempt, before it is stored."""

    status: str
    api_calls: int = 0
    sobject: str = ""
    record_id: str = ""
    org_id: str = ""
    link: str = ""
    error: SalesforceError | None = None
    retry_in: float | None = None
    unlink: bool = False
    detail: dict[str, Any] = field(default_factory=dict)
    # False for a sync that only waited (its org paused): not a failed attempt of its own.
    counts: bool = True


def crashed(exc: BaseException, inquiry_id: int | None = None) -> AttemptResult:
    infra = infrastructure_error(exc)
    if infra is not None:
        logger.warning("sync of inquiry %s met an infrastructure error: %r", inquiry_id, exc)
        return AttemptResult(SyncStatus.RETRYING, error=infra)
    logger.exception("sync of inquiry %s crashed", inquiry_id)
    return AttemptResult(
        SyncStatus.RETRYING,
        error=UnexpectedError(
            "INTERNAL_ERROR",
            f"The sync stopped unexpectedly ({type(exc).__name__}); it is tried again.",
        ),
    )


def classify(result: AttemptResult, attempt_number: int) -> None:
    """Turn an error into a status and, for retries, a delay."""
    error = result.error
    if error is None or result.status in SUCCESS_STATUSES or not result.counts:
        return
    if isinstance(error, InfrastructureError):
        result.status = SyncStatus.RETRYING
        result.retry_in = min(
            INFRASTRUCTURE_RETRY_CAP_SECONDS,
            retry_delay(attempt_number, base=INFRASTRUCTURE_RETRY_BASE_SECONDS),
        )
    elif isinstance(error, UnexpectedError):
        if attempt_number >= MAX_UNEXPECTED_ATTEMPTS:
            result.status = SyncStatus.FAILED
        else:
            result.status = SyncStatus.RETRYING
            result.retry_in = retry_delay(attempt_number)
    elif isinstance(error, SalesforceAuthError):
        result.status = SyncStatus.WAITING_RECONNECT
    elif isinstance(error, SalesforceRateLimited):
        result.status = SyncStatus.RETRYING
        result.retry_in = retry_delay(attempt_number, base=RATE_LIMIT_BASE_SECONDS)
    elif isinstance(error, SalesforceTransientError):
        if result.retry_in is None and attempt_number >= MAX_TRANSIENT_ATTEMPTS:
            result.status = SyncStatus.FAILED
        else:
            result.status = SyncStatus.RETRYING
            if result.retry_in is None:
                result.retry_in = retry_delay(attempt_number)
    elif result.status not in (SyncStatus.RETRYING, SyncStatus.BLOCKED_DUPLICATE):
        result.status = SyncStatus.FAILED


# --------------------------------------------------------------------------- storing


def finish_many(
    rows: Sequence[InquirySync],
    versions: dict[int, int],
    started: dt.datetime,
    results: dict[int, AttemptResult],
    token: str,
) -> None:
    """Store every attempt and each row's new state in one transaction, then send the next
    passes. A database failure here is retried a few times (the outcome happened in Salesforce
    and must be recorded); if it persists, the lease runs out and the sync is tried again,
    which the claims and the lost-create re-match make safe."""
    for pause in (*_FINISH_TRIES, None):
        try:
            passes = _store(rows, versions, started, results, token)
            break
        except (OperationalError, InterfaceError):
            if pause is None:
                logger.exception("could not store %s sync outcome(s); their leases will expire",
                                 len(rows))  # fmt: skip
                return
            logger.warning("database unavailable while storing sync outcomes; retrying")
            close_old_connections()
            time.sleep(pause)
    for row in rows:
        result = results[row.pk]
        error = result.error
        logger.info(
            "salesforce sync inquiry=%s status=%s calls=%s%s",
            row.inquiry_id,
            result.status,
            result.api_calls,
            f" error={error.error_code}" if error else "",
        )
    if passes:
        try:
            schedule_next(passes)
        except Exception:  # the rows are due; the sweeper sends them
            logger.warning("could not send the next passes", exc_info=True)


def _store(
    rows: Sequence[InquirySync],
    versions: dict[int, int],
    started: dt.datetime,
    results: dict[int, AttemptResult],
    token: str,
) -> list[tuple[int, int, float]]:
    now = timezone.now()
    passes: list[tuple[int, int, float]] = []
    attempts: list[SyncAttempt] = []
    changed: list[InquirySync] = []
    source_of = {row.pk: row.inquiry.source_id for row in rows}
    with transaction.atomic():
        locked = list(
            InquirySync.objects.select_for_update().filter(pk__in=list(versions)).order_by("pk")
        )
        for row in locked:
            result = results[row.pk]
            version = versions[row.pk]
            error = result.error
            previous = (row.status, row.error_code)
            detail = dict(row.detail)
            attempt_detail = dict(result.detail)
            row.status = result.status
            row.last_attempt_at = started
            if row.lease_token == token:
                row.lease_expires_at, row.lease_token = None, ""
            row.error_code = error.error_code if error else ""
            row.error_message = error.message if error else ""
            row.error_fields = list(error.fields) if error else []
            next_in: float | None = None
            if result.status in SUCCESS_STATUSES:
                row.synced_version = version
                row.synced_at = now
                row.attempt_count = 0
                row.org_id, row.sobject, row.record_id = (
                    result.org_id,
                    result.sobject,
                    result.record_id,
                )
                detail["link"] = result.link
                detail.pop("pending_create", None)
                detail["truncated"] = attempt_detail.get("truncated", [])
                # What the write left out of the record (issue 13), shown by the card.
                detail["left_out"] = attempt_detail.get("left_out", [])
                _keep(detail, attempt_detail, "duplicate")
            elif result.status in (SyncStatus.RETRYING, SyncStatus.WAITING_BUDGET):
                if result.counts:
                    row.attempt_count = row.attempt_count + 1
                if result.unlink:
                    row.record_id, row.sobject = "", ""
                    detail.pop("link", None)
                next_in = result.retry_in if result.retry_in is not None else 0
            else:
                row.attempt_count = (
                    row.attempt_count + 1 if result.status == SyncStatus.FAILED else 0
                )
                if result.status == SyncStatus.BLOCKED_DUPLICATE:
                    # The rule and the records it named (ids only), for the card (issue 13).
                    _keep(detail, attempt_detail, "duplicate")
            again = row.requested_version > version
            if next_in is None and again:
                next_in = 0
            row.due_at = now + dt.timedelta(seconds=next_in) if next_in is not None else None
            row.enqueued_at = row.due_at
            row.detail = detail
            row.updated_at = now
            changed.append(row)
            if result.counts or result.api_calls or previous != (row.status, row.error_code):
                attempts.append(
                    SyncAttempt(
                        sync=row,
                        started_at=started,
                        finished_at=now,
                        api_calls=result.api_calls,
                        outcome=result.status,
                        error_code=row.error_code,
                        error_message=row.error_message,
                        error_fields=row.error_fields,
                        detail={**attempt_detail, "version": version},
                    )
                )
            if next_in is not None:
                passes.append((row.inquiry_id, source_of[row.pk], next_in))
        bulk_update_values(InquirySync, changed, _STORED)
        SyncAttempt.objects.bulk_create(attempts)
    return passes


# The columns a finished attempt changes, with their PostgreSQL types for the VALUES list.
_STORED = {
    "status": "text", "last_attempt_at": "timestamptz", "lease_expires_at": "timestamptz",
    "lease_token": "text", "error_code": "text", "error_message": "text",
    "error_fields": "jsonb", "synced_version": "integer", "synced_at": "timestamptz",
    "attempt_count": "integer", "org_id": "text", "sobject": "text", "record_id": "text",
    "due_at": "timestamptz", "enqueued_at": "timestamptz", "detail": "jsonb",
    "updated_at": "timestamptz",
}  # fmt: skip


def _keep(detail: dict[str, Any], attempt_detail: dict[str, Any], key: str) -> None:
    """Carry `key` of the attempt's detail onto the row's (the card reads the row), or drop the
    row's stale value when the attempt has none."""
    if attempt_detail.get(key):
        detail[key] = attempt_detail[key]
    else:
        detail.pop(key, None)
