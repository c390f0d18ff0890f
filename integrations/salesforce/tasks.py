"""Celery entry points. Thin: they take ids, load rows and call services.

Services enqueue these by name (`task_queue`), so each task is registered under its constant.
"""

from __future__ import annotations

from celery import shared_task

from integrations.salesforce import task_queue
from integrations.salesforce.support.validation_runs import (
    validation_run_check,
    validation_run_fan_out,
    validation_run_start,
)
from integrations.salesforce.sync.runner import sync_drain_run, sync_inquiry_run
from integrations.salesforce.sync.scheduling import syncs_sweep


@shared_task(name=task_queue.SYNC_INQUIRY)
def sync_inquiry(inquiry_id: int) -> str:
    """Send one inquiry to Salesforce, if it is due and no other worker is on it.

    Idempotent: a second delivery finds the row leased or already synced and does nothing.
    Retries are not Celery retries of this message: the service stores `due_at` and enqueues
    the next attempt with a countdown, so the sweeper covers it too if that message is lost.
    """
    result = sync_inquiry_run(inquiry_id=inquiry_id)
    return result.status if result is not None else "nothing to do"


@shared_task(name=task_queue.SYNC_DRAIN)
def sync_drain(source_id: int, parallel: bool = False) -> int:
    """Send the due inquiries of one org (the org `source_id` syncs to): up to
    `SYNC_BATCH_SIZE` of them together, then another drain if more are due. Returns how many.

    Idempotent like `sync_inquiry`: rows are leased, so two drains never take the same one.
    `parallel` is a backlog's extra drain (see `scheduling.drain_running`).
    """
    return sync_drain_run(source_id=source_id, parallel=parallel)


@shared_task(name=task_queue.SWEEP_DUE_SYNCS)
def sweep_due_syncs() -> int:
    """Re-enqueue syncs that are due and not running (beat: salesforce-sweep-due-syncs)."""
    return syncs_sweep()


@shared_task(name=task_queue.VALIDATE_ALL_CONNECTIONS)
def validate_all_connections() -> int:
    """The daily validation of every connection (beat: salesforce-validate-all-connections).

    Starts a ValidationRun like the console's Validate all; returns the run's id.
    """
    return validation_run_start(actor=None).pk


@shared_task(name=task_queue.FAN_OUT_VALIDATION_RUN)
def fan_out_validation_run(run_id: int) -> int:
    """Enqueue one validation per connection of the run (support console)."""
    return validation_run_fan_out(run_id=run_id)


@shared_task(name=task_queue.VALIDATE_CONNECTION_IN_RUN)
def validate_connection_in_run(run_id: int, connection_id: int) -> None:
    """Validate one connection as part of a run and count it (idempotent)."""
    validation_run_check(run_id=run_id, connection_id=connection_id)
