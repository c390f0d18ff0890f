"""Celery entry points. Thin: they take ids, load rows and call services."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="integrations.salesforce.tasks.sync_inquiry")
def sync_inquiry(inquiry_id: int) -> None:
    """Send one inquiry to Salesforce (implemented with the sync, issue 6)."""


@shared_task(name="integrations.salesforce.tasks.sweep_due_syncs")
def sweep_due_syncs() -> int:
    """Re-enqueue syncs that are due and not running (implemented with the sync, issue 6)."""
    return 0


@shared_task(name="integrations.salesforce.tasks.validate_all_connections")
def validate_all_connections() -> int:
    """Validate every connection (implemented with the support console, issue 7)."""
    return 0
