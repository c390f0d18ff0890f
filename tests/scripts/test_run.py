"""`make run`'s launcher (scripts/run.py) as an operator meets it, on non-default ports.

One run, in phases: Connect completes through the emulator's consent page on the chosen web port
(issue 14: the demo app used to know port 8000 only); a killed worker is started again and
syncs; SIGTERM stops every child once, with no traceback, no process left and no port bound.
The run is isolated (its own ports and VAR_DIR, SQLite and the filesystem broker, as on a fresh
machine), so it never meets another engineer's `make run` or this run's PostgreSQL and Redis.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import ROOT
from tests.integrations.salesforce.oauth_support import approve
from tests.ops.conftest import free_port, port_open, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.timeout(300)]

# What the test run points its own processes at; the launcher must run on embedded defaults.
NOT_INHERITED = (
    "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_QUEUE", "CELERY_KEY_PREFIX",
    "TEST_DATABASE_NAME", "SITE_URL",
)  # fmt: skip


class Launcher:
    def __init__(self, tmp_path: Path) -> None:
        self.ports = {
            "WEB_PORT": free_port(),
            "EMULATOR_LOGIN_PORT": free_port(),
            "EMULATOR_SANDBOX_PORT": free_port(),
            "EMULATOR_INSTANCE_PORT": free_port(),
        }
        env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        env.update({name: str(port) for name, port in self.ports.items()})
        env["VAR_DIR"] = str(tmp_path / "var")
        self.out_path, self.err_path = tmp_path / "run.out", tmp_path / "run.err"
        self.process = subprocess.Popen(
            [sys.executable, "scripts/run.py"],
            cwd=ROOT,
            env=env,
            stdout=self.out_path.open("wb"),
            stderr=self.err_path.open("wb"),
            start_new_session=True,  # as from a terminal: its own group, which teardown can kill
        )
        self.web = f"http://127.0.0.1:{self.ports['WEB_PORT']}"
        self.seen_children: set[int] = set()

    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    def children(self) -> dict[int, str]:
        """The launcher's children now: pid → command line. Each leads its own process group."""
        listing = subprocess.run(
            ["ps", "-o", "pid=,args=", "--ppid", str(self.process.pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        found = {}
        for line in listing.splitlines():
            pid, _, args = line.strip().partition(" ")
            found[int(pid)] = args
        self.seen_children.update(found)
        return found

    def child(self, needle: str) -> int:
        return next(pid for pid, args in self.children().items() if needle in args)

    def kill_everything(self) -> None:
        """Teardown after a failure: whatever the launcher left, by process group."""
        self.children()
        for pid in [self.process.pid, *self.seen_children]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    run = Launcher(tmp_path)
    try:
        wait_until(lambda: "Ingestion API" in run.out() or run.process.poll() is not None,
                   180, "the launcher to start", run.err_path)  # fmt: skip
        assert run.process.poll() is None, run.err()[-4000:]
        yield run
    finally:
        run.kill_everything()


def csrf_post(session: requests.Session, url: str, data: dict[str, str]) -> requests.Response:
    """POST a Django form the way a browser does: with the CSRF cookie's token."""
    return session.post(
        url,
        data={**data, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        allow_redirects=False,
        timeout=30,
    )


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs. Killed grandchildren are reparented to
    init, which reaps them a moment later: until then they are zombies (state Z), already dead."""
    states = subprocess.run(
        ["ps", "-o", "stat=", "-g", str(pgid)], capture_output=True, text=True, check=False
    ).stdout.split()
    return any(not state.startswith("Z") for state in states)


def test_make_run_on_other_ports_connects_restarts_a_dead_worker_and_stops_cleanly(
    launcher: Launcher,
) -> None:
    web = launcher.web
    owner_password = re.search(r"owner / (\S+)", launcher.out()).group(1)  # type: ignore[union-attr]
    api_key = re.search(r"ingestion API key:\s+(\S+)", launcher.out()).group(1)  # type: ignore[union-attr]
    demo_org = re.search(r"demo org (00D\w+)", launcher.out()).group(1)  # type: ignore[union-attr]
    children = launcher.children()
    assert len(children) == 4, children  # emulator, web, worker and beat on its own
    assert any(" beat " in args for args in children.values())

    # Connect, as the owner would in a browser, on this port.
    owner = requests.Session()
    owner.get(f"{web}/accounts/login/", timeout=30)
    logged_in = csrf_post(owner, f"{web}/accounts/login/",
                          {"username": "owner", "password": owner_password})  # fmt: skip
    assert logged_in.status_code == 302, logged_in.text[:2000]
    card = f"{web}/sources/joes-plumbing/integrations/salesforce/"
    owner.get(card, timeout=30)
    sent = csrf_post(owner, f"{card}connect/", {"environment": "production"})
    assert sent.status_code == 302, sent.text[:2000]
    callback = approve(sent.headers["Location"])  # the emulator's consent page: Allow
    assert callback.startswith(f"{web}/integrations/salesforce/callback/?code="), callback
    landed = owner.get(callback, allow_redirects=False, timeout=30)
    assert (
        landed.status_code == 302
        and urlsplit(landed.headers["Location"]).path == urlsplit(card).path
    ), landed.text[:2000]
    assert demo_org in owner.get(card, timeout=30).text  # the card shows the connected org

    # The worker dies; the launcher starts it again and it works.
    old_worker = launcher.child("autorespond worker")
    os.kill(old_worker, signal.SIGKILL)
    wait_until(lambda: "Celery worker started again" in launcher.err(), 30, "a restart",
               launcher.err_path)  # fmt: skip
    new_worker = launcher.child("autorespond worker")
    assert new_worker != old_worker
    assert not group_alive(old_worker)  # its pool went with it
    auth = {"Authorization": f"Bearer {api_key}"}
    body = {"id": "after-restart", "source": "joes-plumbing", "first_name": "Ann",
            "last_name": "Lee", "email": "ann@example.com"}  # fmt: skip
    posted = requests.post(f"{web}/api/v1/inquiries", json=body, headers=auth, timeout=30)
    assert posted.status_code == 201, posted.text

    def handled() -> str | None:
        got = requests.get(f"{web}/api/v1/inquiries/joes-plumbing/after-restart", headers=auth,
                           timeout=30).json()  # fmt: skip
        return None if got["sync"]["status"] == "pending" else got["sync"]["status"]

    # The card is not enabled, so the new worker's verdict is "disabled": it ran the sync.
    assert wait_until(handled, 60, "the new worker to run the sync", launcher.err_path) == (
        "disabled"
    )
    assert launcher.process.poll() is None  # one death never stops the service

    # SIGTERM: everything stops once, cleanly.
    launcher.children()
    launcher.process.send_signal(signal.SIGTERM)
    assert launcher.process.wait(60) == 0
    err = launcher.err()
    assert "Traceback" not in err, err[-4000:]
    assert "SIGTERM received: stopping everything" in err
    assert err.count("Stopped.") == 1
    left = [pid for pid in launcher.seen_children if group_alive(pid)]
    assert left == [], json.dumps(left)
    bound = [port for port in launcher.ports.values() if port_open(port)]
    assert bound == []
