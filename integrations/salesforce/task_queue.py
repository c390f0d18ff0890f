"""Sending the integration's Celery tasks by name.

`tasks.py` is an entry point at the top: it calls the services below it. Services that enqueue a
task (the sync after a commit, a validation run's fan-out) therefore send it by its registered
name through Celery's task registry instead of importing `tasks`, which would make an import
circle. The names below are the contract between the two; `tasks.py` registers each task under
its constant, so a renamed task cannot drift from its sender.
"""

from __future__ import annotations

from typing import Any

from celery import current_app

SYNC_INQUIRY = "integrations.salesforce.tasks.sync_inquiry"
SYNC_DRAIN = "integrations.salesforce.tasks.sync_drain"
SWEEP_DUE_SYNCS = "integrations.salesforce.tasks.sweep_due_syncs"
VALIDATE_ALL_CONNECTIONS = "integrations.salesforce.tasks.validate_all_connections"
FAN_OUT_VALIDATION_RUN = "integrations.salesforce.tasks.fan_out_validation_run"
VALIDATE_CONNECTION_IN_RUN = "integrations.salesforce.tasks.validate_connection_in_run"


def send_task(name: str, args: tuple[Any, ...], **options: Any) -> None:
    """Enqueue the registered task `name` with `args` (ids only) and Celery `apply_async`
    options (countdown, retry, retry_policy…). Raises what the broker raises (kombu's
    connection errors when the broker is down): callers decide whether that matters.

    Looked up in the registry so the task's own options and Celery's eager mode apply exactly
    as if the task object had been imported. A process that never imported `tasks` (a web
    process: Celery's autodiscovery runs in workers) has no such entry; the message is then
    sent by name (`app.send_task`), which is all a worker needs.
    """
    task = current_app.tasks.get(name)
    if task is not None:
        task.apply_async(args, **options)
    else:
        current_app.send_task(name, args, **options)
