"""Validate all: checking every connection in the background, one task per connection.

`validation_run_start` fixes the list of connections in a `ValidationRun` and,
after commit, enqueues `fan_out_validation_run`, which enqueues one task per connection (the
fan-out keeps each task short and lets the workers check connections in parallel). Each task
records a `ValidationRunResult`, unique per run and connection, and bumps the run's counters in
the same transaction, so a redelivered task counts once; the task that records the last result
marks the run finished. The daily beat entry `salesforce-validate-all-connections` starts a run
the same way, without a user.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from integrations.salesforce.models import (
    SalesforceConnection,
    StaffActionKind,
    ValidationRun,
    ValidationRunResult,
)
from integrations.salesforce.support.console import (
    User,
    connection_description,
    staff_action_record,
)
from integrations.salesforce.task_queue import (
    FAN_OUT_VALIDATION_RUN,
    VALIDATE_CONNECTION_IN_RUN,
    send_task,
)
from integrations.salesforce.validation import connection_validate

logger = logging.getLogger(__name__)


def validation_run_latest() -> ValidationRun | None:
    return ValidationRun.objects.order_by("-started_at", "-pk").first()


# A run whose tasks were lost (a broker wiped) never finishes; after this long a new click may
# start another one instead of waiting for it forever.
RUN_CONSIDERED_STUCK_AFTER = timedelta(minutes=30)


def validation_run_in_progress() -> ValidationRun | None:
    """The unfinished run started recently, if any: a second click should not start another."""
    return (
        ValidationRun.objects.filter(
            finished_at__isnull=True,
            started_at__gte=timezone.now() - RUN_CONSIDERED_STUCK_AFTER,
        )
        .order_by("-started_at", "-pk")
        .first()
    )


def validation_run_start(*, actor: User | None = None) -> ValidationRun:
    """Start validating every connection in the background; returns the run to follow.

    `actor` is the staff member who clicked Validate all, or None for the daily schedule (which
    is not a staff action and is not written to the audit log).
    """
    connection_ids = list(SalesforceConnection.objects.order_by("pk").values_list("pk", flat=True))
    person = actor if actor is not None and actor.is_authenticated else None
    run = ValidationRun.objects.create(
        started_by=person,
        connection_ids=connection_ids,
        total=len(connection_ids),
        finished_at=timezone.now() if not connection_ids else None,
    )
    if person is not None:
        staff_action_record(
            actor=person,
            action=StaffActionKind.VALIDATED_ALL,
            target=f"All connections ({len(connection_ids)})",
            detail={"run_id": run.pk, "total": len(connection_ids)},
        )
    if connection_ids:
        run_id = run.pk
        transaction.on_commit(lambda: send_task(FAN_OUT_VALIDATION_RUN, (run_id,)))
    logger.info("salesforce validation run %s started: %s connections", run.pk, run.total)
    return run


def validation_run_fan_out(*, run_id: int) -> int:
    """Enqueue one check per connection of the run that has no result yet; returns how many."""
    run = ValidationRun.objects.filter(pk=run_id).first()
    if run is None or run.is_finished:
        return 0
    checked = set(run.results.values_list("connection_id", flat=True))
    pending = [pk for pk in run.connection_ids if pk not in checked]
    for connection_id in pending:
        send_task(VALIDATE_CONNECTION_IN_RUN, (run.pk, connection_id))
    return len(pending)


def validation_run_check(*, run_id: int, connection_id: int) -> ValidationRunResult | None:
    """Validate one connection of a run and count it; safe to run twice for the same pair.

    Returns the recorded result, or None when the run is gone or the pair was already counted.
    """
    run = ValidationRun.objects.filter(pk=run_id).first()
    if run is None or run.results.filter(connection_id=connection_id).exists():
        return None
    connection = (
        SalesforceConnection.objects.select_related("source").filter(pk=connection_id).first()
    )
    if connection is None:
        ok, message, description = (
            None,
            "Disconnected before its turn came; nothing to validate.",
            f"Connection {connection_id}",
        )
    else:
        description = connection_description(connection=connection)
        try:
            result = connection_validate(connection=connection)
            ok, message = result.ok, result.message
        except Exception as exc:  # one broken check must not stall the run
            logger.exception("salesforce validation run %s: connection %s", run_id, connection_id)
            ok, message = False, f"The check itself failed: {type(exc).__name__}."
    with transaction.atomic():
        outcome, created = ValidationRunResult.objects.get_or_create(
            run_id=run_id,
            connection_id=connection_id,
            defaults={"ok": ok, "message": message, "description": description[:400]},
        )
        if not created:
            return None
        ValidationRun.objects.filter(pk=run_id).update(
            done=F("done") + 1, failed=F("failed") + (1 if ok is False else 0)
        )
        ValidationRun.objects.filter(
            pk=run_id, finished_at__isnull=True, done__gte=F("total")
        ).update(finished_at=timezone.now())
    return outcome
