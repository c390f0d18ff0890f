"""The Celery application. Configuration lives in Django settings under the CELERY_ prefix."""

import os
from typing import Any

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autorespond.settings")

app = Celery("autorespond")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _database_connections_like_a_request(sender: Task | None = None, **_: Any) -> None:
    """Before and after a task, what Django does around a request: close a connection that is
    broken or older than CONN_MAX_AGE (the next query opens one, health-checked), keep the
    others. Not in eager mode: there the task runs inside its caller's transaction."""
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
