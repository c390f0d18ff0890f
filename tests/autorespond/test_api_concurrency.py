"""Simultaneous callers against a real server (gunicorn: 3 processes of 4 threads, as production
runs it), on PostgreSQL and on SQLite (the `make run` default: WAL, IMMEDIATE transactions, busy
timeout). Nothing is refused through our fault: no 5xx, every inquiry stored once, one sync
requested per real change. Also: chunked bodies, and what a client sees when the database or
Redis is down."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import requests

from autorespond.models import Inquiry, Source
from autorespond.services import api_key_create
from integrations.salesforce.models import InquirySync
from tests.autorespond.servers import (
    Gunicorn,
    PrivateRedis,
    base_environment,
    free_port,
    manage,
)
from tests.conftest import IN_CI, worker_environment
from tests.factories import SourceFactory

SLUG = "joes-plumbing"

# The PostgreSQL server reads what the test commits; the SQLite one has its own file.
pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Server:
    url: str
    key: str
    inquiry_count: Callable[[str], int]  # inquiries whose id starts with a prefix
    requested_versions: Callable[[str], list[int]]  # InquirySync.requested_version per inquiry

    def post(self, body: dict[str, Any]) -> requests.Response:
        return requests.post(
            f"{self.url}/api/v1/inquiries",
            json=body,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=60,
        )


def simultaneously(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Run the calls in as many threads, released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], requests.Response]) -> requests.Response:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


# --------------------------------------------------------------------------- the two servers


@pytest.fixture
def postgres_server(postgres, transactional_db, tmp_path) -> Iterator[Server]:
    SourceFactory(slug=SLUG, name="Joe's Plumbing")
    _, key = api_key_create(name="concurrency")
    env = worker_environment({"CELERY_BROKER_URL": "memory://", "DEBUG": "false"})
    server = Gunicorn(env, tmp_path / "gunicorn.log").start()

    def versions(prefix: str) -> list[int]:
        return list(
            InquirySync.objects.filter(inquiry__external_id__startswith=prefix)
            .order_by("inquiry__external_id")
            .values_list("requested_version", flat=True)
        )

    try:
        yield Server(
            server.url,
            key,
            lambda prefix: Inquiry.objects.filter(external_id__startswith=prefix).count(),
            versions,
        )
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory) -> Iterator[Server]:
    """`make run`'s database: a SQLite file shared by the server's processes."""
    folder = tmp_path_factory.mktemp("sqlite-server")
    database = folder / "db.sqlite3"
    env = base_environment(
        DATABASE_URL=f"sqlite:///{database}",
        CELERY_BROKER_URL="memory://",
        REDIS_URL="",
        DEBUG="false",
    )
    manage(env, "migrate", "--noinput")
    manage(
        env, "shell", "-c",
        f"from autorespond.models import Source; Source.objects.create(slug='{SLUG}', name='Joe')",
    )  # fmt: skip
    key = manage(env, "create_api_key", "concurrency").strip()
    server = Gunicorn(env, folder / "gunicorn.log").start()

    def query(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(database, timeout=30) as db:
            return db.execute(sql, params).fetchall()

    def count(prefix: str) -> int:
        return query(
            "SELECT COUNT(*) FROM autorespond_inquiry WHERE external_id LIKE ?", prefix + "%"
        )[0][0]

    def versions(prefix: str) -> list[int]:
        rows = query(
            "SELECT s.requested_version FROM salesforce_inquirysync s JOIN autorespond_inquiry i"
            " ON i.id = s.inquiry_id WHERE i.external_id LIKE ? ORDER BY i.external_id",
            prefix + "%",
        )
        return [row[0] for row in rows]

    try:
        assert query("PRAGMA journal_mode")[0][0] == "wal"
        yield Server(server.url, key, count, versions)
    finally:
        server.stop()


@pytest.fixture(params=["postgres", "sqlite"])
def server(request) -> Server:  # type: ignore[no-untyped-def]
    return request.getfixturevalue(f"{request.param}_server")


# --------------------------------------------------------------------------- the guarantees


def test_fifty_simultaneous_new_inquiries_are_all_created(server):
    bodies = [
        {"id": f"many-{n:02d}", "source": SLUG, "first_name": "Ann", "last_name": f"Lee {n}",
         "email": f"ann{n}@example.com", "job_description": "Leaking tap in the kitchen."}
        for n in range(50)
    ]  # fmt: skip
    responses = simultaneously([lambda body=body: server.post(body) for body in bodies])
    statuses = [r.status_code for r in responses]
    assert statuses == [201] * 50, [r.text for r in responses if r.status_code != 201][:3]
    assert server.inquiry_count("many-") == 50
    assert server.requested_versions("many-") == [1] * 50


def test_ten_simultaneous_first_posts_of_one_pair_make_one_inquiry(server):
    body = {"id": "same-1", "source": SLUG, "first_name": "Ann", "email": "ann@example.com"}
    responses = simultaneously([lambda: server.post(body)] * 10)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 9 + [201], [r.text for r in responses if r.status_code >= 500][:3]
    assert len({(r.json()["id"], r.json()["created_at"]) for r in responses}) == 1
    assert server.inquiry_count("same-") == 1
    # One sync requested: the nine others changed nothing.
    assert server.requested_versions("same-") == [1]


def test_simultaneous_changes_each_request_their_sync(server):
    server.post({"id": "change-1", "source": SLUG, "first_name": "Ann"})
    responses = simultaneously(
        [lambda n=n: server.post({"id": "change-1", "source": SLUG, "city": f"City {n}"})
         for n in range(8)]
    )  # fmt: skip
    assert sorted(r.status_code for r in responses) == [200] * 8, server.url
    assert server.inquiry_count("change-") == 1
    # Each POST set another city: each was a real change, so each requested a sync.
    assert server.requested_versions("change-") == [1 + 8]


def test_chunked_bodies_are_read_within_the_limit(sqlite_server):
    def chunks(payload: bytes) -> Iterator[bytes]:
        for start in range(0, len(payload), 4096):
            yield payload[start : start + 4096]

    headers = {"Authorization": f"Bearer {sqlite_server.key}", "Content-Type": "application/json"}
    small = json.dumps({"id": "chunked-1", "source": SLUG, "city": "Oakland"}).encode()
    response = requests.post(
        f"{sqlite_server.url}/api/v1/inquiries", data=chunks(small), headers=headers, timeout=30
    )
    assert response.status_code == 201
    large = json.dumps({"id": "chunked-2", "source": SLUG, "job_description": "x" * 200_000})
    response = requests.post(
        f"{sqlite_server.url}/api/v1/inquiries",
        data=chunks(large.encode()),
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "body"
    assert sqlite_server.inquiry_count("chunked-") == 1


# --------------------------------------------------------------------------- outages


def test_an_unreachable_database_is_a_json_503_even_with_debug(tmp_path):
    env = base_environment(
        DATABASE_URL=f"postgres://nobody:nothing@127.0.0.1:{free_port()}/nowhere",
        CELERY_BROKER_URL="memory://",
        DEBUG="true",
    )
    server = Gunicorn(env, tmp_path / "gunicorn.log", workers=1, threads=1).start()
    try:
        response = requests.post(
            f"{server.url}/api/v1/inquiries",
            json={"id": "1", "source": SLUG},
            headers={"Authorization": "Bearer ar_whatever"},
            timeout=30,
        )
    finally:
        server.stop()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.headers["Content-Type"] == "application/json"
    assert "Traceback" not in response.text
    assert response.json()["errors"][0]["field"] is None
    # The operator sees why, in the log.
    assert "database unavailable" in server.log_text(tail=None)


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    if not PrivateRedis.available():
        if IN_CI:
            pytest.fail("redis-server is not installed: CI must run this test.")
        pytest.skip("redis-server is not installed")
    own = PrivateRedis(tmp_path)
    yield own
    own.stop()


def test_redis_down_at_intake_keeps_the_inquiry_and_sends_it_when_back(
    postgres, transactional_db, private_redis, tmp_path
):
    """Redis (the broker) is down when the inquiry arrives: the API still answers 201 and stores
    it; its sync stays due in the database, and the sweeper sends it once Redis is back. The
    web process itself enqueues again as soon as Redis answers."""
    SourceFactory(slug=SLUG, name="Joe's Plumbing")
    _, key = api_key_create(name="redis-down")
    queue = "intake-redis-down"
    env = worker_environment(
        {
            "CELERY_BROKER_URL": private_redis.url,
            "REDIS_URL": private_redis.url,
            "CELERY_QUEUE": queue,
            "CELERY_KEY_PREFIX": "",
        }
    )
    server = Gunicorn(env, tmp_path / "gunicorn.log", workers=1, threads=2).start()

    def post(external_id: str) -> requests.Response:
        return requests.post(
            f"{server.url}/api/v1/inquiries",
            json={"id": external_id, "source": SLUG, "email": "ann@example.com"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )

    def queued() -> list[tuple[str, str]]:
        messages = redis.Redis(port=private_redis.port).lrange(queue, 0, -1)
        return [(m["headers"]["task"], m["headers"]["argsrepr"]) for m in map(json.loads, messages)]

    # The sync engine sends a drain of the inquiry's org (its source), not one task per inquiry.
    task = "integrations.salesforce.tasks.sync_drain"
    source_id = Source.objects.get(slug=SLUG).pk
    try:
        down = post("r-1")
        assert down.status_code == 201
        first = Inquiry.objects.get(external_id="r-1")
        sync = InquirySync.objects.get(inquiry=first)
        assert (sync.status, sync.requested_version, sync.due_at is not None) == (
            "pending",
            1,
            True,
        )
        assert "could not enqueue" in server.log_text(tail=None)

        private_redis.start()
        assert post("r-2").status_code == 201
        second = Inquiry.objects.get(external_id="r-2")
        # The web process sends the new inquiry's sync itself (no sweeper needed) ...
        assert second.pk and queued() == [(task, f"({source_id},)")]
    finally:
        server.stop()
    # ... and the sweeper sends the one that arrived while Redis was down.
    swept = manage(
        env, "shell", "-c",
        "from integrations.salesforce.tasks import sweep_due_syncs; print(sweep_due_syncs())",
    )  # fmt: skip
    assert int(swept.split()[-1]) >= 1
    assert first.pk and queued().count((task, f"({source_id},)")) == 2
