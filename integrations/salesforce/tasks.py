"""Celery entry points. Thin: they take ids, load rows and call services."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="integrations.salesforce.tasks.sync_inquiry")
def sync_inquiry(inquiry_id: int) -> str:
    """Send one inquiry to Salesforce, if it is due and no other worker is on it.

    Idempotent: a second delivery finds the row leased or already synced and does nothing.
    Retries are not Celery retries of this message: the service stores `due_at` and enqueues
    the next attempt with a countdown, so the sweeper covers it too if that message is lost.
    """
    from integrations.salesforce.sync.runner import sync_inquiry_run

    result = sync_inquiry_run(inquiry_id=inquiry_id)
    return result.status if result is not None else "nothing to do"


@shared_task(name="integrations.salesforce.tasks.sweep_due_syncs")
def sweep_due_syncs() -> int:
    """Re-enqueue syncs that are due and not running (beat: salesforce-sweep-due-syncs)."""
    from integrations.salesforce.sync.runner import syncs_sweep

    return syncs_sweep()


@shared_task(name="integrations.salesforce.tasks.validate_all_connections")
def validate_all_connections() -> int:
    """The daily validation of every connection (beat: salesforce-validate-all-connections).

    Starts a ValidationRun like the console's Validate all; returns the run's id.
    """
    from integrations.salesforce.support.console import validation_run_start

    return validation_run_start(actor=None).pk


@shared_task(name="integrations.salesforce.tasks.fan_out_validation_run")
def fan_out_validation_run(run_id: int) -> int:
    """Enqueue one validation per connection of the run (support console, issue 7)."""
    from integrations.salesforce.support.console import validation_run_fan_out

    return validation_run_fan_out(run_id=run_id)


@shared_task(name="integrations.salesforce.tasks.validate_connection_in_run")
def validate_connection_in_run(run_id: int, connection_id: int) -> None:
    """Validate one connection as part of a run and count it (idempotent)."""
    from integrations.salesforce.support.console import validation_run_check

    validation_run_check(run_id=run_id, connection_id=connection_id)
