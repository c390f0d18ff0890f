"""What the intake asks of the sync and shows of it: the sync request made by the intake's own
statement, the hook's handler, and the sync status the API shows.

On PostgreSQL the core writes an inquiry and every integration's row about it in one statement
(`autorespond.hooks.InquiryChangedWrite`): here, the Salesforce integration's `InquirySync`
request, the same upsert as `scheduling.request_sync` (row created with `requested_version` 1,
or its version bumped, due now), read from the core's `changed_inquiry` CTE, so it happens only
when the inquiry was created or changed; and the source's drain mark (`drain_marks`), which
spares the wake-up when a drain is already on its way. On SQLite `request_sync` runs as the
handler, inside the inquiry's transaction. Registered in `apps.py`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from autorespond.db import (
    from_returned,
    insert_columns,
    insert_fields,
    insert_params,
    quote,
    returning_columns,
)
from autorespond.hooks import InquiryChangedWrite
from autorespond.models import Inquiry
from integrations.salesforce.models import InquirySync, SyncStatus
from integrations.salesforce.sync import drain_marks
from integrations.salesforce.sync.scheduling import (
    batch_size,
    enqueue_after_commit,
    request_sync,
    request_sync_on_conflict,
    request_sync_values,
)

# Short names: the joined statement must stay under 4096 characters (see drain_marks).
RESULT = "sf_sync"
_ROW = "sf_row"


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
        # The enum's label: `get_status_display()` builds a dict of all choices on every call.
        "status_label": SyncStatus(sync.status).label,
        "salesforce_object": sync.sobject,
        "salesforce_id": sync.record_id,
        "error_code": sync.error_code,
        "error_message": sync.error_message,
        "failed_attempts": sync.attempt_count,
        "last_attempt_at": sync.last_attempt_at,
        "next_attempt_at": (
            sync.due_at if sync.status in (SyncStatus.RETRYING, SyncStatus.WAITING_BUDGET) else None
        ),
        "synced_at": sync.synced_at,
    }


def on_inquiry_changed(inquiry: Inquiry) -> None:
    """`autorespond.hooks` handler: an inquiry was created or changed, so sync it."""
    request_sync(inquiry=inquiry)


def _inquiry_index() -> int:
    return [f.attname for f in insert_fields(InquirySync)].index("inquiry_id")


def sync_request_ctes() -> str:
    """The CTEs ending with `RESULT`: the request's upsert for the changed inquiry, returning
    the sync row it wrote (no row when the inquiry did not change), and after its columns
    whether a drain of the source is already on its way (`drain_marks.intake_ctes`)."""
    table = quote(InquirySync._meta.db_table)
    values = ["%s"] * len(insert_columns(InquirySync))
    values[_inquiry_index()] = f"changed_inquiry.{quote(Inquiry._meta.pk.column)}"
    mark_ctes, drain_on_its_way = drain_marks.intake_ctes("changed_inquiry")
    return (
        # Only quoted identifiers of the models are formatted in; every value is a parameter.
        f"{_ROW} AS (INSERT INTO {table} ({', '.join(insert_columns(InquirySync))})"  # noqa: S608
        f" SELECT {', '.join(values)} FROM changed_inquiry {request_sync_on_conflict()}"
        f" RETURNING {returning_columns(InquirySync)}), {mark_ctes},"
        f" {RESULT} AS (SELECT {_ROW}.*, {drain_on_its_way} FROM {_ROW})"
    )


def sync_request_params() -> list[Any]:
    """The parameters of `sync_request_ctes` for one statement (the inquiry's id comes from the
    statement itself): the constant ones prepared once per process, the times now."""
    constant, times = _constant_params()
    params = list(constant)
    now = timezone.now()
    for index in times:
        params[index] = now
    params.append(drain_marks.FRESH_SECONDS)
    return params


@functools.cache
def _constant_params() -> tuple[tuple[Any, ...], tuple[int, ...]]:
    """The request's parameters with the current time's in place, and where the times are.

    Preparing the row's constant values (defaults, JSON) for the database was most of the
    request's Python on every POST; they never change, and the times are aware datetimes,
    which PostgreSQL takes as they are (`insert_params`), so only they are set per statement."""
    now = timezone.now()
    values = request_sync_values(now)
    params = insert_params(InquirySync, {"inquiry_id": 0, **values})
    times = [
        i
        for i, f in enumerate(insert_fields(InquirySync))
        if getattr(f, "auto_now", False) or values.get(f.attname) is now
    ]
    index = _inquiry_index()
    del params[index]
    return tuple(params), tuple(i - (i > index) for i in times)


def sync_request_applied(inquiry: Inquiry, row: Sequence[Any] | None, changed: bool) -> None:
    """When the inquiry changed: cache the sync row the statement wrote on it (the API's status
    then needs no query) and send its drain after commit, as `request_sync` does, unless the
    statement found a drain of its source on its way (`drain_marks`; not with one task per
    inquiry, `SYNC_BATCH_SIZE=1`, which sends every inquiry's own task). An unchanged
    inquiry's status is read when shown."""
    drain_on_its_way = False
    if row is not None:
        sync = from_returned(InquirySync, row)  # the flag after the row's columns is ignored
        sync.inquiry = inquiry  # also caches the sync on the inquiry (a one-to-one)
        drain_on_its_way = bool(row[-1])
    if changed and not (drain_on_its_way and batch_size() > 1):
        enqueue_after_commit(inquiry)


def sync_request_write() -> InquiryChangedWrite:
    """The write `apps.py` registers in `autorespond.hooks.inquiry_changed_writes`."""
    return InquiryChangedWrite(
        ctes=sync_request_ctes,
        params=sync_request_params,
        result=RESULT,
        columns=len(InquirySync._meta.concrete_fields) + 1,  # and the drain-on-its-way flag
        apply=sync_request_applied,
        handler=on_inquiry_changed,
    )
