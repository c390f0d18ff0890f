"""One sync attempt from start to finish (the task's body): lease, gates, plan, write, classify
the outcome and store it.

See docs/architecture.md ("One attempt" and "Failures").
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.utils import timezone

from integrations.salesforce.api.errors import (
    SalesforceAuthError,
    SalesforceError,
    SalesforceRateLimited,
    SalesforceReconnectRequired,
    SalesforceTransientError,
    SalesforceValidationError,
)
from integrations.salesforce.api.headers import HeaderOptionError, parse_header_options
from integrations.salesforce.connections import connection_mark_needs_reconnect
from integrations.salesforce.models import (
    InquirySync,
    SalesforceConnection,
    SyncAttempt,
    SyncStatus,
)
from integrations.salesforce.oauth.tokens import salesforce_client
from integrations.salesforce.selectors import effective_salesforce_settings
from integrations.salesforce.sync.claims import remember_person
from integrations.salesforce.sync.items import SUCCESS_STATUSES, SyncItem, is_linked
from integrations.salesforce.sync.locks import LockBusy, lock_ttl_seconds, person_lock
from integrations.salesforce.sync.mapping import (
    CONTACT,
    account_fields,
    account_name,
)
from integrations.salesforce.sync.matching import (
    account_key,
    person_keys,
)
from integrations.salesforce.sync.planning import plan_writes
from integrations.salesforce.sync.scheduling import (
    LOCK_BUSY_RETRY_SECONDS,
    MAX_TRANSIENT_ATTEMPTS,
    RATE_LIMIT_BASE_SECONDS,
    enqueue_sync,
    retry_delay,
    take_lease,
)
from integrations.salesforce.sync.writing import write_plan

logger = logging.getLogger(__name__)


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


def _gates(sync: InquirySync) -> tuple[AttemptResult | None, SyncItem | None, Any]:
    """The gates in the issue's order; returns (result, None, None) when a gate stops the
    sync, else (None, item, connection)."""
    inquiry = sync.inquiry
    effective = effective_salesforce_settings(source=inquiry.source)
    own = effective.settings
    detail: dict[str, Any] = {"settings_from": effective.owner.slug}
    if not own.enabled:
        return AttemptResult(SyncStatus.DISABLED, detail=detail), None, None
    connection = effective.usable_connection
    if connection is None:
        return AttemptResult(SyncStatus.WAITING_RECONNECT, detail=detail), None, None
    linked = is_linked(sync, connection.org_id)
    if own.only_with_contact_info and not inquiry.has_contact_info and not linked:
        return AttemptResult(SyncStatus.WAITING_CONTACT_INFO, detail=detail), None, None
    try:
        headers = parse_header_options(own.header_options)
    except HeaderOptionError as exc:
        error = SalesforceValidationError("INVALID_HEADER_OPTIONS", exc.error, ["header_options"])
        return AttemptResult(SyncStatus.FAILED, error=error, detail=detail), None, None
    region = inquiry.source.phone_region or "US"
    item = SyncItem(
        sync=sync,
        inquiry=inquiry,
        settings=own,
        headers=headers,
        keys=person_keys(email=inquiry.email, phone=inquiry.phone, region=region),
        source_name=inquiry.source.name,
        region=region,
    )
    if own.record_type == CONTACT and account_name(inquiry.company or ""):
        item.account_name = account_fields(company=inquiry.company).values["Name"]
        item.account_key = account_key(item.account_name)
    return None, item, connection


def _attempt(sync: InquirySync) -> AttemptResult:
    stopped, item, connection = _gates(sync)
    if stopped is not None:
        return stopped
    assert item is not None and connection is not None
    client = salesforce_client(connection)
    org_id = connection.org_id
    result = AttemptResult(SyncStatus.PENDING, org_id=org_id)
    try:
        lock_keys: list[str] = []
        if not is_linked(sync, org_id):
            # A Contact of a company also locks the company, so two new people of one new
            # company never both create its Account.
            lock_keys = [*item.keys.keys, *([item.account_key] if item.account_key else [])]
        with person_lock(org_id=org_id, keys=lock_keys, wait=min(30.0, lock_ttl_seconds() / 2)):
            plans = plan_writes(client=client, org_id=org_id, items=[item])
            (outcome,) = write_plan(client=client, plans=plans)
            if outcome.error is None and outcome.status in SUCCESS_STATUSES:
                remember_person(org_id, item, outcome)
    except LockBusy:
        result.status = SyncStatus.RETRYING
        result.error = SalesforceTransientError("PERSON_BUSY", "Another sync holds this person.")
        result.retry_in = LOCK_BUSY_RETRY_SECONDS
        result.api_calls = client.api_calls
        return result
    except SalesforceError as exc:
        result.error = exc
        result.api_calls = client.api_calls
        if isinstance(exc, SalesforceAuthError):
            _connection_needs_reconnect(connection, exc)
        return result
    result.api_calls = client.api_calls
    if isinstance(outcome.error, SalesforceAuthError):
        _connection_needs_reconnect(connection, outcome.error)
    result.status = outcome.status
    result.sobject = outcome.sobject
    result.record_id = outcome.record_id
    result.link = outcome.link
    result.error = outcome.error
    result.retry_in = outcome.retry_in
    result.unlink = bool(outcome.detail.pop("unlink", False))
    result.detail = outcome.detail
    return result


def _connection_needs_reconnect(connection: SalesforceConnection, error: SalesforceError) -> None:
    """Stop every sync of this connection until the owner reconnects (a refused refresh has
    already said so; other auth errors, such as an API-disabled org, are marked here)."""
    if isinstance(error, SalesforceReconnectRequired):
        return
    connection_mark_needs_reconnect(
        connection=connection,
        reason=f"Salesforce refused this connection ({error.error_code}: {error.message}).",
    )


def _classify(result: AttemptResult, attempt_number: int) -> None:
    """Turn an error into a status and, for retries, a delay."""
    error = result.error
    if error is None or result.status in SUCCESS_STATUSES:
        return
    if isinstance(error, SalesforceAuthError):
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


def sync_inquiry_run(*, inquiry_id: int) -> AttemptResult | None:
    """Sync one inquiry if it is due and no other worker is on it (the task's body).

    Returns the attempt's result, or None when there was nothing to do (not due, already
    synced, leased by another worker, or deleted). Safe to run twice.
    """
    if take_lease(inquiry_id) is None:
        return None
    sync = (
        InquirySync.objects.select_related("inquiry__source").filter(inquiry_id=inquiry_id).first()
    )
    if sync is None:  # the inquiry was deleted meanwhile
        return None
    version = sync.requested_version
    started = timezone.now()
    attempt_number = sync.attempt_count + 1
    try:
        result = _attempt(sync)
    except SoftTimeLimitExceeded:
        result = AttemptResult(
            SyncStatus.RETRYING,
            error=SalesforceTransientError("TIME_LIMIT", "The sync took too long and stopped."),
        )
    except Exception as exc:
        # A bug of ours: keep the row failed and visible rather than retrying it forever.
        logger.exception("sync of inquiry %s crashed", inquiry_id)
        result = AttemptResult(
            SyncStatus.FAILED,
            error=SalesforceError("INTERNAL_ERROR", f"The sync stopped unexpectedly ({exc})."),
        )
    _classify(result, attempt_number)
    _finish(sync, version, started, attempt_number, result)
    return result


def _keep(detail: dict[str, Any], attempt_detail: dict[str, Any], key: str) -> None:
    """Carry `key` of the attempt's detail onto the row's (the card reads the row), or drop the
    row's stale value when the attempt has none."""
    if attempt_detail.get(key):
        detail[key] = attempt_detail[key]
    else:
        detail.pop(key, None)


def _finish(
    sync: InquirySync,
    version: int,
    started: dt.datetime,
    attempt_number: int,
    result: AttemptResult,
) -> None:
    """Store the attempt and the row's new state; enqueue the next pass when one is due."""
    now = timezone.now()
    error = result.error
    with transaction.atomic():
        row = InquirySync.objects.select_for_update().get(pk=sync.pk)
        detail = dict(row.detail)
        attempt_detail = dict(result.detail)
        row.status = result.status
        row.last_attempt_at = started
        row.lease_expires_at = None
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
            _keep(detail, attempt_detail, "duplicate")
            _keep(detail, attempt_detail, "left_out")
        elif result.status == SyncStatus.RETRYING:
            row.attempt_count = attempt_number
            if result.unlink:
                row.record_id, row.sobject = "", ""
                detail.pop("link", None)
            next_in = result.retry_in if result.retry_in is not None else 0
        else:
            row.attempt_count = attempt_number if result.status == SyncStatus.FAILED else 0
            if result.status == SyncStatus.BLOCKED_DUPLICATE:
                _keep(detail, attempt_detail, "duplicate")
        again = row.requested_version > version
        if next_in is None and again:
            next_in = 0
        row.due_at = now + dt.timedelta(seconds=next_in) if next_in is not None else None
        row.detail = detail
        row.save()
        SyncAttempt.objects.create(
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
        if next_in is not None:
            inquiry_id = row.inquiry_id
            countdown = next_in or None
            transaction.on_commit(lambda: enqueue_sync(inquiry_id, countdown))
    logger.info(
        "salesforce sync inquiry=%s status=%s calls=%s%s",
        sync.inquiry_id,
        result.status,
        result.api_calls,
        f" error={error.error_code}" if error else "",
    )
