"""Shared fixtures: users and sources, API keys, real PostgreSQL/Redis guards and a real worker.

PostgreSQL and Redis come from DATABASE_URL / REDIS_URL (scripts/test.py finds or starts them).
Tests that need them use the `postgres` / `redis_url` fixtures: on a machine without the servers
they are skipped with a reason, and under CI (CI=true) they fail instead, so CI cannot go green
without having run them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from autorespond.services import api_key_create
from tests.emulator_support import (  # noqa: F401  (fixtures, registered for every test)
    control,
    emulator,
    org,
    sf_emulator_server,
    sf_settings,
)
from tests.factories import MembershipFactory, SourceFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(what: str) -> None:
    message = f"{what} is not available (see scripts/services.py)"
    if IN_CI:
        pytest.fail(f"{message}: CI must run this test.")
    pytest.skip(message)


@pytest.fixture
def postgres() -> None:
    """Require the test database to be PostgreSQL (locking, concurrency, worker processes)."""
    if connection.vendor != "postgresql":
        _missing("PostgreSQL")


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = settings.REDIS_URL
    if not url:
        _missing("Redis")
    return url


@pytest.fixture
def business(db):  # type: ignore[no-untyped-def]
    return SourceFactory(slug="joes-plumbing", name="Joe's Plumbing")


@pytest.fixture
def location(business):  # type: ignore[no-untyped-def]
    return SourceFactory(slug="joes-plumbing-east", name="Joe's Plumbing East", parent=business)


@pytest.fixture
def owner(business):  # type: ignore[no-untyped-def]
    user = UserFactory(username="joe")
    MembershipFactory(user=user, business=business)
    return user


@pytest.fixture
def staff(db):  # type: ignore[no-untyped-def]
    return UserFactory(username="support", is_staff=True)


@pytest.fixture
def owner_client(owner) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def staff_client(staff) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def api_key(db) -> str:  # type: ignore[no-untyped-def]
    _, raw = api_key_create(name="tests")
    return raw


def worker_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker process that uses the test database and this run's queue."""
    db = connection.settings_dict
    env = dict(os.environ)
    env["DATABASE_URL"] = (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}"
        f"/{db['NAME']}"
    )
    env.pop("TEST_DATABASE_NAME", None)
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    env["CELERY_QUEUE"] = settings.CELERY_TASK_DEFAULT_QUEUE
    env.update(extra or {})
    return env


class WorkerProcess:
    """A real `celery worker` process, started and stopped by a test."""

    def __init__(self, env: dict[str, str], log_path: Path, concurrency: int = 2) -> None:
        self.env = env
        self.log_path = log_path
        self.concurrency = concurrency
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        command = [
            sys.executable, "-m", "celery", "-A", "autorespond", "worker",
            "-Q", self.env["CELERY_QUEUE"], "-c", str(self.concurrency), "-P", "prefork",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info",
            "-n", f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
        ]  # fmt: skip
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if b"ready." in self.log_path.read_bytes():
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"worker did not start:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def kill(self) -> None:
        """SIGKILL the whole worker (parent and pool): what a crashed machine looks like."""
        if self.process and self.process.poll() is None:
            subprocess.run(["pkill", "-KILL", "-P", str(self.process.pid)], check=False)
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def start_worker(postgres, redis_url, transactional_db, tmp_path) -> Iterator:  # type: ignore[no-untyped-def]
    """A function that starts a real Celery worker on the test database; stopped after the test."""
    workers: list[WorkerProcess] = []

    def start(extra_env: dict[str, str] | None = None, concurrency: int = 2) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(workers)}.log"
        worker = WorkerProcess(worker_environment(extra_env), log_path, concurrency).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
