"""The web process can send the tasks it enqueues.

Services send tasks by their registered name (`task_queue.send_task`). A process that only sets
Django up (gunicorn's `autorespond.wsgi`, `runserver`) must therefore have them registered too,
or every enqueue fails and each inquiry waits for the sweeper. Checked in a fresh interpreter:
this test process has long imported `tasks` through other tests.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from integrations.salesforce import task_queue

ROOT = Path(__file__).resolve().parents[3]

NAMES = [
    task_queue.SYNC_INQUIRY,
    task_queue.SWEEP_DUE_SYNCS,
    task_queue.VALIDATE_ALL_CONNECTIONS,
    task_queue.FAN_OUT_VALIDATION_RUN,
    task_queue.VALIDATE_CONNECTION_IN_RUN,
]


def test_a_process_that_only_sets_django_up_knows_every_task_it_sends() -> None:
    script = (
        "import sys\n"
        "from autorespond.wsgi import application\n"
        "from celery import current_app\n"
        "print('\\n'.join(n for n in sys.argv[1:] if n not in current_app.tasks))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *NAMES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == []
