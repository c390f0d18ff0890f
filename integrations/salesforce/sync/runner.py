"""One drain from start to finish (the tasks' body): lease the due syncs of one org (or one
sync), pass the gates, ask the org's health (breaker, budget), lock the people, plan, write,
classify every outcome and store them together.

See docs/architecture.md ("Scheduling", "One attempt" and "Failures").
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from autorespond.models import Source
from integrations.salesforce.api.errors import (
    SalesforceAuthError,
    SalesforceError,
    SalesforceReconnectRequired,
    SalesforceTransientError,
    SalesforceValidationError,
)
from integrations.salesforce.api.headers import HeaderOptionError, parse_header_options
from integrations.salesforce.connections import connection_mark_needs_reconnect
from integrations.salesforce.models import (
    InquirySync,
    SalesforceConnection,
    SyncStatus,
)
from integrations.salesforce.oauth.tokens import salesforce_client
from integrations.salesforce.selectors import EffectiveSettings, effective_salesforce_settings
from integrations.salesforce.sync.claims import remember_people
from integrations.salesforce.sync.drain_groups import drain_group
from integrations.salesforce.sync.health import (
    BREAKER,
    BUDGET,
    Pause,
    breaker_failed,
    breaker_succeeded,
    budget_check,
    budget_note,
    budget_still_exhausted,
    is_outage,
    org_gate,
)
from integrations.salesforce.sync.heartbeat import Heartbeat
from integrations.salesforce.sync.items import SUCCESS_STATUSES, SyncItem, WriteOutcome, is_linked
from integrations.salesforce.sync.locks import LockBusy, PersonLocks, lock_ttl_seconds
from integrations.salesforce.sync.mapping import (
    CONTACT,
    account_fields,
    account_name,
)
from integrations.salesforce.sync.matching import (
    account_key,
    person_keys,
)
from integrations.salesforce.sync.outcomes import AttemptResult, classify, crashed, finish_many
from integrations.salesforce.sync.places import DrainSlot
from integrations.salesforce.sync.planning import plan_writes
from integrations.salesforce.sync.scheduling import (
    INFRASTRUCTURE_RETRY_BASE_SECONDS,
    LOCK_BUSY_RETRY_SECONDS,
    batch_size,
    drain_running,
    drain_seconds,
    drain_started,
    drains_per_org,
    enqueue_drain,
    has_full_batch,
    lease_due_syncs,
    new_lease_token,
    next_due_in,
    take_lease,
)
from integrations.salesforce.sync.writing import write_plan

logger = logging.getLogger(__name__)

# A drain that finds its org's drain running comes back after this many seconds.
DRAIN_BUSY_RETRY_SECONDS = 0.5
# A drain that finds every place for small batches taken comes back after this many seconds,
# unless a drain that ends sends it sooner (`DrainSlot.release`).
SMALL_DRAIN_RETRY_SECONDS = 1.0
# A sync whose batch went through another source's connection that Salesforce refused comes
# back after this many seconds, through its own connection (`_through_other`).
SHARED_CONNECTION_RETRY_SECONDS = 1.0


def _gates(
    sync: InquirySync, effective_of: dict[int, EffectiveSettings]
) -> tuple[AttemptResult | None, SyncItem | None, Any]:
    """The gates in the issue's order; returns (result, None, None) when a gate stops the
    sync, else (None, item, connection). `effective_of` caches the settings per source."""
    inquiry = sync.inquiry
    effective = effective_of.get(inquiry.source_id)
    if effective is None:
        effective = effective_of[inquiry.source_id] = effective_salesforce_settings(
            source=inquiry.source
        )
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


def _connection_needs_reconnect(connection: SalesforceConnection, error: SalesforceError) -> None:
    """Stop every sync of this connection until the owner reconnects (a refused refresh has
    already said so; other auth errors, such as an API-disabled org, are marked here)."""
    if isinstance(error, SalesforceReconnectRequired):
        return
    connection_mark_needs_reconnect(
        connection=connection,
        reason=f"Salesforce refused this connection ({error.error_code}: {error.message}).",
    )


# A leased row that passed the gates, with its own source's connection.
_Member = tuple[InquirySync, SyncItem, SalesforceConnection]


def _through_other(result: AttemptResult, used: SalesforceConnection) -> AttemptResult:
    """The result of a sync written through another source's connection to its org and user
    (`used`): when Salesforce refused that connection (now marked, `_connection_needs_reconnect`
    or the refused refresh), the sync's own connection may still be fine, so it comes back
    soon, through its own, rather than wait for a reconnect it does not need."""
    if not isinstance(result.error, SalesforceAuthError):
        return result
    error = SalesforceTransientError(
        "SHARED_CONNECTION_REFUSED",
        f"Salesforce refused the connection of {used.source} to this org "
        f"({result.error.error_code}); retrying with this source's own connection.",
    )
    return dataclasses.replace(
        result, status=SyncStatus.RETRYING, error=error, retry_in=SHARED_CONNECTION_RETRY_SECONDS
    )


# --------------------------------------------------------------------------- one org's batch


def _paused(pause: Pause, org_id: str) -> AttemptResult:
    wait = max(0.0, (pause.until - timezone.now()).total_seconds()) + random.uniform(0, 1)
    return AttemptResult(
        pause.status, org_id=org_id, error=pause.error, retry_in=wait, counts=False
    )


def _result_of(outcome: WriteOutcome, org_id: str) -> AttemptResult:
    return AttemptResult(
        outcome.status or SyncStatus.PENDING,
        org_id=org_id,
        sobject=outcome.sobject,
        record_id=outcome.record_id,
        link=outcome.link,
        error=outcome.error,
        retry_in=outcome.retry_in,
        unlink=bool(outcome.detail.pop("unlink", False)),
        detail=outcome.detail,
    )


def _lock_keys(row: InquirySync, item: SyncItem, org_id: str) -> list[str]:
    if is_linked(row, org_id):
        return []
    # A Contact of a company also locks the company, so two new people of one new company
    # never both create its Account.
    return [*item.keys.keys, *([item.account_key] if item.account_key else [])]


def _attempt_org(
    connection: SalesforceConnection,
    pairs: Sequence[tuple[InquirySync, SyncItem]],
    beat: Heartbeat,
) -> dict[int, AttemptResult]:
    """Sync the items of one org and Salesforce user together, through `connection` (one of
    theirs): health gate, person locks, one plan, one write. Each item keeps its own source's
    settings (record type, headers, options); the writes group by them."""
    org_id = connection.org_id
    pause, probe = org_gate(connection)
    if pause is not None:
        return {row.pk: _paused(pause, org_id) for row, _ in pairs}
    client = salesforce_client(connection)
    results: dict[int, AttemptResult] = {}
    if probe == BUDGET:
        try:
            allowed = budget_check(client)
        except SalesforceError as exc:  # an outage: the breaker takes over
            breaker_failed(connection, exc, probe=False)
            return {row.pk: AttemptResult(SyncStatus.PENDING, error=exc) for row, _ in pairs}
        if not allowed:
            budget_still_exhausted(connection)
            pause, _ = org_gate(connection)
            if pause is not None:
                return {row.pk: _paused(pause, org_id) for row, _ in pairs}
        budget_note(connection, client.latest_usage, probed=True)

    locks = PersonLocks(org_id)
    beat.watch(locks)
    locked: list[tuple[InquirySync, SyncItem]] = []
    busy = AttemptResult(
        SyncStatus.RETRYING,
        org_id=org_id,
        error=SalesforceTransientError("PERSON_BUSY", "Another sync holds this person."),
        retry_in=LOCK_BUSY_RETRY_SECONDS,
    )
    try:
        if len(pairs) == 1:  # a lone inquiry waits a little for its person
            (row, item) = pairs[0]
            try:
                locks.take(_lock_keys(row, item, org_id), wait=min(10.0, lock_ttl_seconds() / 2))
                locked.append((row, item))
            except LockBusy:
                results[row.pk] = busy
        else:  # in a batch the busy ones come back soon (one Redis round trip for all)
            taken = locks.take_many([_lock_keys(row, item, org_id) for row, item in pairs])
            for (row, item), ok in zip(pairs, taken, strict=True):
                if ok:
                    locked.append((row, item))
                else:
                    results[row.pk] = dataclasses.replace(busy)
        if locked:
            items = [item for _, item in locked]
            try:
                plans = plan_writes(client=client, org_id=org_id, items=items)
                outcomes = write_plan(client=client, plans=plans)
            except SalesforceError as exc:
                outcomes = [WriteOutcome(item, "", error=exc) for item in items]
            remember_people(
                org_id,
                [
                    (item, outcome)
                    for (_row, item), outcome in zip(locked, outcomes, strict=True)
                    if outcome.error is None and outcome.status in SUCCESS_STATUSES
                ],
            )
            for (row, _item), outcome in zip(locked, outcomes, strict=True):
                results[row.pk] = _result_of(outcome, org_id)
    finally:
        locks.release()

    # The batch's calls, shared out so that the attempts add up to them.
    total = client.api_calls
    attempted = [row.pk for row, _ in locked]
    if attempted:
        base, extra = divmod(total, len(attempted))
        for index, pk in enumerate(attempted):
            results[pk].api_calls = base + (1 if index < extra else 0)
            if len(pairs) > 1:
                results[pk].detail["batch"] = {"size": len(pairs), "api_calls": total}
    errors = [r.error for r in results.values() if r.error is not None]
    auth = next((e for e in errors if isinstance(e, SalesforceAuthError)), None)
    if auth is not None:
        _connection_needs_reconnect(connection, auth)
    outage = next((e for e in errors if is_outage(e)), None)
    if outage is not None:
        breaker_failed(connection, outage, probe=probe == BREAKER)
        if probe == BREAKER:
            # A failed probe: the org is still down. Its syncs wait for the next probe, showing
            # the org's outage; not a failure of their own (a long outage never fails them).
            pause, _ = org_gate(connection)
            if pause is not None:
                for pk, result in list(results.items()):
                    if is_outage(result.error):
                        waiting = _paused(pause, org_id)
                        waiting.api_calls = result.api_calls
                        waiting.detail = {**result.detail, "cause": result.error.error_code}
                        results[pk] = waiting
    elif probe == BREAKER:
        if total:
            breaker_succeeded(connection)
        else:  # nothing was sent, so nothing was tested: let the next drain probe
            SalesforceConnection.objects.filter(org_id=org_id).update(
                breaker_probe_at=timezone.now()
            )
    budget_note(connection, client.latest_usage)
    return results


def _run_leased(
    ids: Sequence[int], token: str, renew: Callable[[], None] | None = None
) -> dict[int, AttemptResult]:
    """Run the leased syncs `ids` (one drain) and store every outcome; returns them by row.
    `renew` is beaten by the heartbeat too (the drain's place among its org's drains)."""
    rows = list(
        InquirySync.objects.select_related("inquiry__source").filter(pk__in=ids).order_by("pk")
    )
    if not rows:
        return {}
    versions = {row.pk: row.requested_version for row in rows}
    started = timezone.now()
    results: dict[int, AttemptResult] = {}
    with Heartbeat(token, [row.pk for row in rows]) as beat:
        if renew is not None:
            beat.also(renew)
        try:
            # By org and Salesforce user: the sources of a drain group share one client.
            groups: dict[tuple[str, str], list[_Member]] = {}
            effective_of: dict[int, EffectiveSettings] = {}
            for row in rows:
                try:
                    stopped, item, connection = _gates(row, effective_of)
                except SoftTimeLimitExceeded:
                    raise
                except Exception as exc:
                    results[row.pk] = crashed(exc, row.inquiry_id)
                    continue
                if stopped is not None:
                    results[row.pk] = stopped
                    continue
                assert item is not None and connection is not None
                key = (connection.org_id, connection.user_id)
                groups.setdefault(key, []).append((row, item, connection))
            for members in groups.values():
                # The same connection each time (its HTTP session and token stay warm).
                chosen = min((connection for *_, connection in members), key=lambda c: c.pk)
                pairs = [(row, item) for row, item, _ in members]
                try:
                    results.update(_attempt_org(chosen, pairs, beat))
                except SoftTimeLimitExceeded:
                    raise
                except Exception as exc:
                    for row, _item in pairs:
                        results.setdefault(row.pk, crashed(exc, row.inquiry_id))
                for row, _item, connection in members:
                    if connection.pk != chosen.pk:
                        results[row.pk] = _through_other(results[row.pk], chosen)
        except SoftTimeLimitExceeded:
            for row in rows:
                results.setdefault(
                    row.pk,
                    AttemptResult(
                        SyncStatus.RETRYING,
                        error=SalesforceTransientError(
                            "TIME_LIMIT", "The sync took too long and stopped."
                        ),
                    ),
                )
    for row in rows:
        classify(results[row.pk], row.attempt_count + 1)
    finish_many(rows, versions, started, results, token)
    return results


# --------------------------------------------------------------------------- entry points


def sync_inquiry_run(*, inquiry_id: int) -> AttemptResult | None:
    """Sync one inquiry if it is due and no other worker is on it (the one-inquiry task's body).

    Returns the attempt's result, or None when there was nothing to do (not due, already
    synced, leased by another worker, or deleted). Safe to run twice.
    """
    token = new_lease_token()
    try:
        if take_lease(inquiry_id, token) is None:
            return None
        sync_id = InquirySync.objects.filter(inquiry_id=inquiry_id).values_list("pk", flat=True)
        ids = list(sync_id)
    except (OperationalError, InterfaceError):
        # Our database is busy: the row is still due; the sweeper (or its lease) brings it back.
        logger.warning("could not lease the sync of inquiry %s", inquiry_id, exc_info=True)
        return None
    if not ids:  # the inquiry was deleted meanwhile
        return None
    return _run_leased(ids, token).get(ids[0])


def sync_drain_run(*, source_id: int, parallel: bool = False) -> int:
    """Sync the due inquiries of the drain group of `source_id` (the drain task's body: the
    sources that write to its org as its Salesforce user, `drain_group`): up to
    `SYNC_BATCH_SIZE` of them together, oldest due first, then the next batch of what is due by
    then, for up to `SYNC_DRAIN_SECONDS`; then send the next drain if more are due now or later.
    Returns how many syncs it ran.

    Going on in the same task rather than through a new message saves the message's round
    trip and this set-up (the group's sources) per batch; the time bound hands the worker back
    so that other orgs' drains, queued behind, take their turn. A drain of less than a full
    batch first takes one of the places for small batches (`DrainSlot`); with none free its
    group waits in line (returns 0, its rows still due), and it stops after a small batch when
    other groups wait. The group's running count, place and continuations are kept under its
    key, whichever of its sources the message named."""
    token = new_lease_token()
    try:
        source = Source.objects.filter(pk=source_id).first()
        if source is None:
            drain_started([source_id])
            return 0
        group = drain_group(source=source)
        source_ids = group.source_ids
        if source.pk not in source_ids:  # pragma: no cover - defensive
            source_ids.append(source.pk)
    except (OperationalError, InterfaceError):
        # Our database is busy or away: try again in a few seconds (the rows stay due; the
        # sweeper is the second line).
        logger.warning("drain of source %s could not start; retrying soon", source_id)
        enqueue_drain(source_id, INFRASTRUCTURE_RETRY_BASE_SECONDS)
        return 0
    done = 0
    slot = DrainSlot(group.key, token)
    with drain_running(group.key, token) as (running, renew):
        if running > (drains_per_org() if parallel else 1):
            # Another drain of the group is running: what is due now goes in its next batch, or
            # in ours when we come back in a moment (in case it has just looked for more).
            # The drain-queued marks stay: this retry is the message waiting for those rows.
            # It names this message's source, not the group's key: if the group changes
            # meanwhile (a connection refused, a card switched), the source is still drained.
            enqueue_drain(source_id, DRAIN_BUSY_RETRY_SECONDS)
            return 0
        if not parallel and batch_size() > 1 and not slot.acquire():
            try:
                backlog = has_full_batch(source_ids=source_ids, limit=batch_size())
            except (OperationalError, InterfaceError):
                backlog = False
            if not backlog:
                # Every place for small batches is taken: the group waits in line, and what
                # arrives meanwhile joins its batch. A drain that ends sends the oldest
                # waiting group's drain; this retry is the fallback. The marks stay (so,
                # as above, the retry names this message's source).
                enqueue_drain(source_id, SMALL_DRAIN_RETRY_SECONDS)
                return 0

        def beat_renew() -> None:
            renew()
            slot.renew()  # nothing once the place is given back

        try:
            until = time.monotonic() + drain_seconds()
            while True:
                try:
                    # Every source of the group: intake marks the source of each inquiry. Its
                    # marks cleared or not at all: a drain that could not clear them must not
                    # look (an intake may be relying on one), so it retries like a lease.
                    drain_started([source_id, *source_ids])
                    ids = lease_due_syncs(source_ids=source_ids, limit=batch_size(), token=token)
                except (OperationalError, InterfaceError):
                    logger.warning("drain of source %s could not lease; retrying soon", source_id)
                    enqueue_drain(source_id, INFRASTRUCTURE_RETRY_BASE_SECONDS)
                    return done
                full = len(ids) == batch_size() and batch_size() > 1
                if full and running < drains_per_org():
                    # A backlog: another worker takes the next batch meanwhile.
                    enqueue_drain(group.key, parallel=True)
                if full and slot.held:
                    slot.release()  # a backlog needs no place (see DrainSlot)
                if not ids:
                    break
                _run_leased(ids, token, beat_renew)
                done += len(ids)
                if batch_size() == 1 or time.monotonic() >= until:
                    break
                if not full and slot.others_waiting():
                    # Other groups wait for a place: hand it over rather than take our group's
                    # next small batch (our continuation queues behind them, below).
                    break
        finally:
            slot.release()
    try:
        soonest = next_due_in(source_ids=source_ids)
    except (OperationalError, InterfaceError):
        soonest = float(INFRASTRUCTURE_RETRY_BASE_SECONDS)
    if soonest is not None:
        enqueue_drain(group.key, soonest or None)
    return done
