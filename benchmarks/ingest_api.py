"""Ingestion API throughput: POST /api/v1/inquiries under gunicorn with the production settings on
PostgreSQL (and Redis as the broker, so each POST also enqueues its sync), loaded by `wrk`,
beside a one-query Django view (and a no-query one) served by the same server in the same run.

    .venv/bin/python benchmarks/ingest_api.py
    .venv/bin/python benchmarks/ingest_api.py --duration 3 --rounds 1 --concurrency 1 16

For each concurrency (default 1, 16, 64) it runs, in turn, the one-query view, the no-query view
and the POST for `--duration` seconds each (default 5), `--rounds` times (default 3; the
endpoints take turns, so a burst of other work on a shared machine falls on all of them), and
prints, for the median round of each, requests per second, p50 and p99 latency, and errors
(connection errors, timeouts and non-2xx answers, of every round), with the CPU time per
request of gunicorn's processes, of the database's backends and of wrk (from /proc, so another
program on the machine changes them far less than req/s), and the POST / one-query ratio of
every round; then the SQL statements, commits and round trips of one create, one update and
one unchanged POST (Django's CaptureQueriesContext on the same database), and the issue's
targets (POST at least 50 % of the one-query view's rate, p99 at most 50 ms at concurrency 16,
no errors).

No worker syncs the inquiries; a drain stand-in (`DrainStandIn`, `--drain-every`, default 0.5 s)
clears the source's drain marks as a running drain does, so the intake wakes the drain about
once per drain, as in a deployment (integrations/salesforce/sync/drain_marks.py).

Every POST has a distinct (source, id) and a realistic body (a person, an address, a job
description): `ingest_api_support/post_inquiries.lua`. The baseline views live in
`ingest_api_support/urls.py`, served only by this benchmark (its settings module adds them to
the product's URLs), never by the deployed service.

Needs PostgreSQL, Redis (found or started like `make test` does, see scripts/services.py) and
`wrk` (Debian: `apt-get install wrk`). It creates and drops its own database and Redis key
prefix; the server and the load listen and connect on 127.0.0.1 only, and every load run is
bounded by `--duration`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
SUPPORT = Path(__file__).resolve().parent / "ingest_api_support"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

SLUG = "bench-plumbing"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare_environment(run_id: str) -> tuple[dict[str, str], str, str]:
    """The environment of the server and of this process: production settings (DEBUG off,
    persistent connections), a database and a Redis key prefix of this run's own."""
    from services import ensure_services

    found = ensure_services()
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if name not in found]
    if missing:
        raise SystemExit(f"The benchmark needs PostgreSQL and Redis; not found: {missing}")
    admin_url = found["DATABASE_URL"]
    database = f"bench_ingest_{run_id}"
    parts = urlsplit(admin_url)
    env = {
        **os.environ,
        "DATABASE_URL": urlunsplit(parts._replace(path=f"/{database}")),
        "REDIS_URL": found["REDIS_URL"],
        "CELERY_BROKER_URL": found["REDIS_URL"],
        "CELERY_QUEUE": f"bench-{run_id}",
        "CELERY_KEY_PREFIX": f"bench-{run_id}:",
        "DEBUG": "false",
        "CONN_MAX_AGE": "60",
        "CONN_HEALTH_CHECKS": "true",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "benchmarks.ingest_api_support.settings",
    }
    env.pop("TEST_DATABASE_NAME", None)
    return env, admin_url, database


def admin_sql(admin_url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(statement)


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise SystemExit(f"manage.py {args[0]} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def start_gunicorn(
    env: dict[str, str], port: int, workers: int, threads: int, log: Path
) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "autorespond.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
            "--timeout", "60", "--log-level", "warning",
        ],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{log.read_text()[-3000:]}")
        try:
            requests.get(f"http://127.0.0.1:{port}/_bench/no-query", timeout=5)
            return process
        except requests.RequestException:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit("gunicorn did not answer within 60 s")


def process_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes `pids` have used so far (/proc; a process that
    has gone counts 0)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            # Fields after the command name (which may hold spaces): utime and stime are 14, 15.
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def server_pids(master: int) -> list[int]:
    """gunicorn's master and its workers."""
    children = Path(f"/proc/{master}/task/{master}/children")
    return [master, *(int(p) for p in children.read_text().split())] if children.exists() else []


def database_pids(admin: Any, database: str) -> list[int]:
    """The PostgreSQL backends serving `database` now (the server's persistent connections), seen
    through `admin`, an open connection to another database of the server."""
    rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [database])
    return [row[0] for row in rows.fetchall()]


class CpuMeter:
    """CPU seconds used during one load run by the server's processes, the database's backends
    and wrk, divided by the requests served: a cost per request that another program on the
    machine changes far less than it changes req/s.

    The database's backends are read every half second: a server process renews its connection
    once it is CONN_MAX_AGE old, and a backend that ends during the run would otherwise take its
    CPU with it (a backend is counted to its last reading)."""

    def __init__(self, master: int, admin_url: str, database: str) -> None:
        self.master, self.admin_url, self.database = master, admin_url, database
        self._stop = threading.Event()

    def __enter__(self) -> CpuMeter:
        import psycopg

        self.admin = psycopg.connect(self.admin_url, autocommit=True)
        self.server = server_pids(self.master)
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._read_backends(at_start=True)
        self.start = (process_cpu_seconds(self.server), _children_cpu_seconds())
        self._poller = threading.Thread(target=self._poll, daemon=True)
        self._poller.start()
        return self

    def _read_backends(self, at_start: bool = False) -> None:
        for pid in database_pids(self.admin, self.database):
            seconds = process_cpu_seconds([pid])
            if seconds or pid in self.last:  # 0: gone between the query and the read
                self.first.setdefault(pid, seconds if at_start else 0.0)
                self.last[pid] = max(seconds, self.last.get(pid, 0.0))

    def _poll(self) -> None:
        while not self._stop.wait(0.5):
            self._read_backends()

    def __exit__(self, *exc: object) -> None:
        server, load = process_cpu_seconds(self.server), _children_cpu_seconds()
        self._stop.set()
        self._poller.join()
        self._read_backends()
        self.admin.close()
        database = sum(self.last[pid] - self.first[pid] for pid in self.last)
        self.used = [server - self.start[0], database, load - self.start[1]]

    def per_request_ms(self, requests: int) -> dict[str, float]:
        n = max(1, requests)
        server, database, load = (1000 * seconds / n for seconds in self.used)
        return {"cpu_server_ms": server, "cpu_db_ms": database, "cpu_wrk_ms": load}


def _children_cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once it has been waited for
    return usage.ru_utime + usage.ru_stime


def wrk(url: str, script: Path, concurrency: int, duration: int, *args: str) -> dict[str, Any]:
    """One bounded wrk run; its figures from the script's JSON line."""
    command = [
        "wrk", "-t", str(min(2, concurrency)), "-c", str(concurrency), "-d", f"{duration}s",
        "--timeout", "10s", "-s", str(script), url, "--", *args,
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + 60, env=os.environ
    )
    for line in result.stdout.splitlines():
        if line.startswith("WRK-RESULT "):
            figures = json.loads(line.removeprefix("WRK-RESULT "))
            seconds = figures["duration_us"] / 1e6
            return {
                "rps": figures["requests"] / seconds if seconds else 0.0,
                "p50_ms": figures["p50_us"] / 1000,
                "p99_ms": figures["p99_us"] / 1000,
                "errors": figures["errors"] + figures["non_2xx"],
                "requests": figures["requests"],
            }
    raise SystemExit(f"wrk printed no figures:\n{result.stdout}\n{result.stderr}")


class DrainStandIn:
    """What the worker's drain does to the intake, and only that: every `every` seconds it
    clears the source's drain marks (`drain_started`, the first step of each of a drain's
    batches) and syncs nothing. A deployment runs workers, whose drains clear the marks within
    about half a second of an inquiry (the try-out of the drain marks measured at most 0.4 s
    with a real worker); without any drain, a mark goes stale after 2 s and every later POST
    wakes the drain through Redis again, as all did before the marks. A real worker here would
    also sync the inquiries, and its CPU, taken from the same two cores during the POST runs
    only, would blur the comparison with the one-query view. `every` 0 runs no stand-in."""

    def __init__(self, slug: str, every: float) -> None:
        self.slug, self.every = slug, every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> DrainStandIn:
        if self.every > 0:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        import django

        django.setup()
        from django.db import connection

        from autorespond.models import Source
        from integrations.salesforce.sync.scheduling import drain_started

        source_id = Source.objects.get(slug=self.slug).pk
        try:
            while not self._stop.wait(self.every):
                drain_started([source_id])
        finally:
            connection.close()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)


def statements_per_post(key: str) -> dict[str, tuple[int, int, int]]:
    """(statements, commits, round trips: statements with BEGIN and COMMIT) of a create, an
    update and an unchanged POST, counted in this process with Django's CaptureQueriesContext
    on the benchmark's database (Django's connection health check, one `SELECT 1` per request,
    is not captured)."""
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    body = {"id": f"count-{uuid.uuid4().hex[:8]}", "source": SLUG, "first_name": "Ann"}
    counts: dict[str, tuple[int, int, int]] = {}
    for label, data in (
        ("create", body),
        ("update", {**body, "city": "Oakland"}),
        ("unchanged", {**body, "city": "Oakland"}),
    ):
        with CaptureQueriesContext(connection) as captured:
            response = client.post(
                "/api/v1/inquiries", data=json.dumps(data), content_type="application/json",
                **headers,
            )  # fmt: skip
        assert response.status_code in (200, 201), response.content
        sqls = [q["sql"].lstrip().upper() for q in captured.captured_queries]
        control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
        # A commit is a COMMIT, or a write outside BEGIN … COMMIT (a statement in autocommit is
        # its own transaction).
        commits, in_transaction = 0, False
        for sql in sqls:
            if sql.startswith("BEGIN"):
                in_transaction = True
            elif sql.startswith("COMMIT"):
                commits, in_transaction = commits + 1, False
            elif not in_transaction and not sql.startswith("SELECT"):
                commits += 1
        counts[label] = (sum(1 for s in sqls if not s.startswith(control)), commits, len(sqls))
    connection.close()
    return counts


def drop_redis_keys(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)


ENDPOINTS = ("one-query view", "no-query view", "POST /api/v1/inquiries")


def median_round(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median req/s (its own latencies and CPU), with the errors of all."""
    middle = sorted(runs, key=lambda run: run["rps"])[len(runs) // 2]
    return {**middle, "errors": sum(run["errors"] for run in runs)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--duration", type=int, default=5, help="seconds per load run")
    parser.add_argument(
        "--rounds", type=int, default=3, help="load runs per endpoint and concurrency, in turns"
    )
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per worker (1 = sync workers, as deployed)"
    )
    parser.add_argument(
        "--drain-every",
        type=float,
        default=0.5,
        help="seconds between the drain stand-in's clearing of the drain marks (0: no drains)",
    )
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")

    run_id = uuid.uuid4().hex[:8]
    env, admin_url, database = prepare_environment(run_id)
    os.environ.update(env)
    admin_sql(admin_url, f'CREATE DATABASE "{database}"')
    server = None
    try:
        manage(env, "migrate", "--noinput")
        manage(
            env, "shell", "-c",
            "from autorespond.models import Source; "
            f"Source.objects.create(slug='{SLUG}', name='Bench Plumbing')",
        )  # fmt: skip
        key = manage(env, "create_api_key", "benchmark").strip().splitlines()[-1]
        os.environ["BENCH_API_KEY"] = key
        port = free_port()
        log = Path(f"/tmp/bench-ingest-{run_id}.log")  # noqa: S108 (the benchmark's own log)
        server = start_gunicorn(env, port, args.workers, args.threads, log)
        base = f"http://127.0.0.1:{port}"

        # Warm-up: every worker has its connection and its code paths loaded.
        wrk(f"{base}/_bench/one-query?slug={SLUG}", SUPPORT / "get.lua", 4, 2)
        wrk(f"{base}/api/v1/inquiries", SUPPORT / "post_inquiries.lua", 4, 2, "warm", SLUG)

        results: dict[int, dict[str, dict[str, Any]]] = {}
        round_ratios: dict[int, list[float]] = {}

        def measured(url: str, script: Path, c: int, *script_args: str) -> dict[str, Any]:
            with CpuMeter(server.pid, admin_url, database) as meter:
                figures = wrk(url, script, c, args.duration, *script_args)
            return {**figures, **meter.per_request_ms(figures["requests"])}

        with DrainStandIn(SLUG, args.drain_every):
            for c in args.concurrency:
                # The endpoints take turns, round after round: on a shared machine a burst of other
                # work then falls on all of them rather than on one, and the median round of each
                # is compared (every round's ratio is printed too).
                rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in ENDPOINTS}
                for n in range(args.rounds):
                    rounds["one-query view"].append(
                        measured(f"{base}/_bench/one-query?slug={SLUG}", SUPPORT / "get.lua", c)
                    )
                    rounds["no-query view"].append(
                        measured(f"{base}/_bench/no-query", SUPPORT / "get.lua", c)
                    )
                    post = f"{base}/api/v1/inquiries"
                    rounds["POST /api/v1/inquiries"].append(
                        measured(post, SUPPORT / "post_inquiries.lua", c, f"c{c}r{n}", SLUG)
                    )
                results[c] = {name: median_round(runs) for name, runs in rounds.items()}
                round_ratios[c] = [
                    post["rps"] / one["rps"]
                    for post, one in zip(
                        rounds["POST /api/v1/inquiries"], rounds["one-query view"], strict=True
                    )
                ]
        counts = statements_per_post(key)
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        drop_redis_keys(env["REDIS_URL"], env["CELERY_KEY_PREFIX"])

    print(
        f"\ngunicorn {args.workers} workers x {args.threads} threads, DEBUG off, PostgreSQL "
        f"(CONN_MAX_AGE=60, health checks), Redis broker; wrk {args.duration} s per run, "
        f"{args.rounds} rounds (median shown), loopback; drain marks cleared every "
        f"{args.drain_every} s by a drain stand-in\n"
    )
    print(
        f"{'c':>3}  {'endpoint':<24} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
        f" {'CPU ms/request: server':>23} {'db':>6} {'wrk':>6}"
    )
    for c, by_endpoint in results.items():
        for name, r in by_endpoint.items():
            print(
                f"{c:>3}  {name:<24} {r['rps']:>8.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}"
                f" {r['errors']:>7} {r['cpu_server_ms']:>23.2f} {r['cpu_db_ms']:>6.2f}"
                f" {r['cpu_wrk_ms']:>6.2f}"
            )
        post = by_endpoint["POST /api/v1/inquiries"]
        ratio = post["rps"] / by_endpoint["one-query view"]["rps"]
        each = ", ".join(f"{r:.0%}" for r in round_ratios[c])
        print(f"{c:>3}  POST / one-query view: {ratio:.0%} (each round: {each})")
    print("\nSQL statements (commits, round trips) per POST: " + ", ".join(
        f"{label} {n} ({commits}, {trips})" for label, (n, commits, trips) in counts.items()
    ))  # fmt: skip

    checks = []
    for c, by_endpoint in results.items():
        post = by_endpoint["POST /api/v1/inquiries"]
        ratio = post["rps"] / by_endpoint["one-query view"]["rps"]
        checks.append((f"c={c}: POST rate >= 50 % of the one-query view's", ratio >= 0.5))
        checks.append((f"c={c}: no errors", all(r["errors"] == 0 for r in by_endpoint.values())))
        if c == 16:
            checks.append(("c=16: POST p99 <= 50 ms", post["p99_ms"] <= 50))
    checks.append(
        ("create/update <= 5 statements", max(counts["create"][0], counts["update"][0]) <= 5)
    )
    checks.append(("unchanged <= 4 statements", counts["unchanged"][0] <= 4))
    print("\nTargets:")
    for label, ok in checks:
        print(f"  {'ok  ' if ok else 'MISS'} {label}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
