"""Sync throughput: API calls per synced inquiry, inquiries per second and commit-to-record
latency, through a real Celery worker and Redis against the Salesforce emulator, beside a naive
baseline measured in the same run.

    .venv/bin/python benchmarks/sync_throughput.py                 # 500 inquiries at 10/s
    .venv/bin/python benchmarks/sync_throughput.py --count 200 --rate 0   # as fast as possible

Options: --count (inquiries, default 500), --rate (arrivals per second, default 10; 0 = all at
once), --latency-ms (added by the emulator to every API call, default 100), --concurrency (worker
processes, default 8), --seed (workload, default 42), --no-baseline, --timeout (seconds to wait
for the worker, default 600).

Workload (the same for both sides): about 60% inquiries from new people, 20% new inquiries from
people seen before (their phone in another format, their email in other letter case or left
out), 20% updates of an earlier inquiry (a new city and job description).

The service: `inquiry_upsert` commits each inquiry (the API's own service), which enqueues the
sync; a worker process with `--concurrency` pool processes syncs it. Commit-to-record latency is
from the commit to the end of the attempt that wrote that version to Salesforce.

The baseline: one plain loop fed at the same arrival rate that, per event, queries Leads by
email, queries Leads by phone (SOQL `=`), then creates or updates, through simple-salesforce
with REST defaults. Its latency is from the event's arrival to its write.

Needs PostgreSQL and Redis (found or started like `make test` does, see scripts/services.py). It
creates and drops its own database, queue and Redis key prefix; everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


@dataclass
class Event:
    """One arrival: a new inquiry of a new or known person, or an update of an inquiry."""

    kind: str  # "new person" | "repeat person" | "update"
    external_id: str
    data: dict[str, str]
    # Filled while running the service side:
    inquiry_id: int = 0
    version: int = 0
    committed_at: float = 0.0


@dataclass
class Person:
    n: int
    email: str
    area: str
    line: str
    inquiries: list[str] = field(default_factory=list)


def build_workload(count: int, seed: int) -> list[Event]:
    rng = random.Random(seed)
    people: list[Person] = []
    events: list[Event] = []
    for i in range(count):
        roll = rng.random()
        known = [p for p in people if p.inquiries]
        if not people or roll < 0.6:
            n = len(people)
            person = Person(
                n,
                f"person{n}@example.com",
                f"{rng.randint(201, 989)}",
                f"{rng.randint(0, 9999):04d}",
            )
            people.append(person)
            external_id = f"bench-{i}"
            person.inquiries.append(external_id)
            events.append(
                Event(
                    "new person",
                    external_id,
                    {
                        "first_name": f"First{n}",
                        "last_name": f"Last{n}",
                        "company": f"Company {n}",
                        "email": person.email,
                        "phone": f"({person.area}) 555-{person.line}",
                        "city": "Springfield",
                        "job_description": f"Job {i}",
                    },
                )
            )
        elif roll < 0.8:
            person = rng.choice(known)
            external_id = f"bench-{i}"
            person.inquiries.append(external_id)
            data = {
                "first_name": f"First{person.n}",
                "phone": f"+1 {person.area}.555.{person.line}",
            }
            if rng.random() < 0.5:
                data["email"] = person.email.upper()
            events.append(Event("repeat person", external_id, data))
        else:
            person = rng.choice(known)
            external_id = rng.choice(person.inquiries)
            events.append(
                Event(
                    "update", external_id, {"city": f"City {i}", "job_description": f"Update {i}"}
                )
            )
    return events


# --------------------------------------------------------------------------- environment


def prepare_environment(run_id: str) -> dict[str, str]:
    from services import ensure_services

    found = ensure_services()
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if name not in found]
    if missing:
        raise SystemExit(f"The benchmark needs PostgreSQL and Redis; not found: {missing}")
    env = {
        **found,
        "CELERY_BROKER_URL": found["REDIS_URL"],
        "CELERY_QUEUE": f"bench-{run_id}",
        "CELERY_KEY_PREFIX": f"bench-{run_id}:",
        "LOG_LEVEL": "WARNING",
        "DEBUG": "false",
    }
    os.environ.update(env)
    return env


def connect_org(server: Any, control: Any, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new emulator org for our connected app, and an OAuth token for its admin."""
    import requests
    from authlib.integrations.requests_client import OAuth2Session
    from django.conf import settings

    org = control.create_org(
        name,
        auto_approve=True,
        client_id=settings.SALESFORCE_CLIENT_ID,
        client_secret=settings.SALESFORCE_CLIENT_SECRET,
    )
    client = OAuth2Session(
        org["client_id"],
        org["client_secret"],
        scope="api refresh_token",
        redirect_uri=org["callback_urls"][0],
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post",  # noqa: S106 (a method name)
    )
    verifier = secrets.token_urlsafe(48)
    url, _ = client.create_authorization_url(
        f"{server.login_url}/services/oauth2/authorize", code_verifier=verifier
    )
    callback = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
    token = client.fetch_token(
        f"{server.login_url}/services/oauth2/token",
        authorization_response=callback,
        code_verifier=verifier,
    )
    return org, dict(token)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


# --------------------------------------------------------------------------- the service


def run_service(
    args: argparse.Namespace, events: list[Event], server: Any, control: Any, env: dict[str, str]
) -> dict[str, Any]:
    from django.db import connection
    from django.utils import timezone

    from autorespond.models import Source
    from autorespond.services import inquiry_upsert
    from integrations.salesforce.models import (
        InquirySync,
        SalesforceConnection,
        SalesforceSettings,
        SyncAttempt,
        SyncStatus,
    )
    from integrations.salesforce.sync.scheduling import syncs_sweep

    org, token = connect_org(server, control, "Service Org")
    source = Source.objects.create(slug="bench", name="Benchmark Plumbing")
    _, org_id, user_id = token["id"].rsplit("/", 2)
    SalesforceConnection.objects.create(
        source=source,
        login_url=server.login_url,
        instance_url=token["instance_url"],
        org_id=org_id,
        user_id=user_id,
        access_token=token["access_token"],
        refresh_token=token.get("refresh_token", ""),
    )
    SalesforceSettings.objects.create(source=source, enabled=True, send_job_description=True)
    control.add_fault(org["org_id"], "latency", latency_ms=args.latency_ms)
    used_before = control.api_usage(org["org_id"])["used"]

    db = connection.settings_dict
    worker_env = {
        **os.environ,
        **env,
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}"
            f"/{db['NAME']}"
        ),
    }
    log_path = ROOT / "var" / f"bench-worker-{env['CELERY_QUEUE']}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "autorespond",
                "worker",
                "-Q",
                env["CELERY_QUEUE"],
                "-c",
                str(args.concurrency),
                "-P",
                "prefork",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "warning",
            ],
            cwd=ROOT,
            env=worker_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        time.sleep(3)  # the worker's pool starts
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited; see {log_path}")
        start = time.time()
        for i, event in enumerate(events):
            if args.rate > 0:
                delay = start + i / args.rate - time.time()
                if delay > 0:
                    time.sleep(delay)
            result = inquiry_upsert(source=source, external_id=event.external_id, data=event.data)
            event.committed_at = time.time()
            event.inquiry_id = result.inquiry.pk
            event.version = InquirySync.objects.get(inquiry=result.inquiry).requested_version
        deadline = time.time() + args.timeout
        last_sweep = time.time()
        while time.time() < deadline:
            pending = InquirySync.objects.exclude(due_at__isnull=True).count()
            if pending == 0:
                break
            if time.time() - last_sweep > 10:
                syncs_sweep()  # beat's job; no beat runs here
                last_sweep = time.time()
            time.sleep(0.2)
        else:
            raise SystemExit(f"the service did not finish within {args.timeout}s")
        finished = max(SyncAttempt.objects.values_list("finished_at", flat=True)).timestamp()
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()

    attempts: dict[int, list[tuple[int, float, str, int, dict[str, Any]]]] = {}
    for (
        sync_inquiry_id,
        version,
        finished_at,
        outcome,
        calls,
        detail,
    ) in SyncAttempt.objects.values_list(
        "sync__inquiry_id", "detail__version", "finished_at", "outcome", "api_calls", "detail"
    ).order_by("finished_at"):
        attempts.setdefault(sync_inquiry_id, []).append(
            (version or 0, finished_at.timestamp(), outcome, calls, detail)
        )
    success = {SyncStatus.CREATED, SyncStatus.UPDATED, SyncStatus.SKIPPED_EXISTING}
    latencies: list[float] = []
    for event in events:
        for version, finished_at, outcome, _calls, _detail in attempts.get(event.inquiry_id, []):
            if outcome in success and version >= event.version:
                latencies.append(finished_at - event.committed_at)
                break
    calls_by_kind: dict[str, list[int]] = {}
    for rows in attempts.values():
        for _version, _finished, outcome, calls, detail in rows:
            reason = (detail.get("match") or {}).get("reason", "")
            kind = {
                "created": "create (new person)",
                "updated": "update of a linked record"
                if reason == "linked"
                else "update of a matched person",
            }.get(outcome, outcome)
            calls_by_kind.setdefault(kind, []).append(calls)
    used = control.api_usage(org["org_id"])["used"] - used_before
    duration = finished - start
    return {
        "events": len(events),
        "api_calls": used,
        "records": len(control.records(org["org_id"], "Lead")),
        "duration": duration,
        "latencies": latencies,
        "calls_by_kind": calls_by_kind,
        "failed": InquirySync.objects.filter(status=SyncStatus.FAILED).count(),
        "when": timezone.now(),
    }


# --------------------------------------------------------------------------- the baseline


def run_baseline(
    args: argparse.Namespace, events: list[Event], server: Any, control: Any
) -> dict[str, Any]:
    import requests
    from simple_salesforce import Salesforce
    from simple_salesforce.format import format_soql

    org, token = connect_org(server, control, "Baseline Org")
    control.add_fault(org["org_id"], "latency", latency_ms=args.latency_ms)
    used_before = control.api_usage(org["org_id"])["used"]
    session = requests.Session()
    session.verify = str(server.ca_path)
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment wins over verify
    sf = Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        version="59.0",
        session=session,
    )
    field_names = {
        "first_name": "FirstName",
        "last_name": "LastName",
        "company": "Company",
        "email": "Email",
        "phone": "Phone",
        "city": "City",
        "job_description": "Description",
    }
    inquiries: dict[str, dict[str, str]] = {}
    latencies: list[float] = []
    start = time.time()
    for i, event in enumerate(events):
        arrival = start + (i / args.rate if args.rate > 0 else 0)
        delay = arrival - time.time()
        if delay > 0:
            time.sleep(delay)
        data = {**inquiries.get(event.external_id, {}), **event.data}
        inquiries[event.external_id] = data
        fields = {field_names[k]: v for k, v in data.items() if v}
        record_id = None
        if data.get("email"):
            found = sf.query(format_soql("SELECT Id FROM Lead WHERE Email = {}", data["email"]))
            record_id = found["records"][0]["Id"] if found["records"] else None
        if record_id is None and data.get("phone"):
            found = sf.query(format_soql("SELECT Id FROM Lead WHERE Phone = {}", data["phone"]))
            record_id = found["records"][0]["Id"] if found["records"] else None
        if record_id:
            sf.Lead.update(record_id, fields)
        else:
            fields.setdefault("LastName", "[not provided]")
            fields.setdefault("Company", "[not provided]")
            sf.Lead.create(fields)
        latencies.append(time.time() - arrival)
    duration = time.time() - start
    return {
        "events": len(events),
        "api_calls": control.api_usage(org["org_id"])["used"] - used_before,
        "records": len(control.records(org["org_id"], "Lead")),
        "duration": duration,
        "latencies": latencies,
    }


# --------------------------------------------------------------------------- report


def report(
    args: argparse.Namespace, events: list[Event], service: dict, baseline: dict | None
) -> None:
    people = sum(1 for e in events if e.kind == "new person")
    kinds = {
        k: sum(1 for e in events if e.kind == k) for k in ("new person", "repeat person", "update")
    }
    print()
    print(
        f"Sync throughput: {len(events)} inquiries ({kinds['new person']} new people, "
        f"{kinds['repeat person']} repeat people, {kinds['update']} updates), arrival "
        f"{'all at once' if args.rate <= 0 else f'{args.rate:g}/s'}, emulator latency "
        f"{args.latency_ms} ms per API call, worker concurrency {args.concurrency}"
    )
    print(f"Distinct people: {people} (the number of Leads one-record-per-person should leave)")
    print()
    rows = [("", "service (worker + Redis)", "naive loop" if baseline else "")]

    def line(label: str, value: Any, other: Any = "") -> None:
        rows.append((label, str(value), str(other)))

    def fmt(result: dict | None, key: str) -> str:
        if result is None:
            return ""
        if key == "calls_per":
            return f"{result['api_calls'] / result['events']:.2f}"
        if key == "rate":
            return f"{result['events'] / result['duration']:.1f}"
        if key in ("p50", "p95", "max"):
            fraction = {"p50": 0.5, "p95": 0.95, "max": 1.0}[key]
            return f"{percentile(result['latencies'], fraction):.2f} s"
        return str(result[key])

    line("API calls, total", fmt(service, "api_calls"), fmt(baseline, "api_calls"))
    line("API calls per inquiry", fmt(service, "calls_per"), fmt(baseline, "calls_per"))
    line("inquiries per second", fmt(service, "rate"), fmt(baseline, "rate"))
    line("commit-to-record p50", fmt(service, "p50"), fmt(baseline, "p50"))
    line("commit-to-record p95", fmt(service, "p95"), fmt(baseline, "p95"))
    line("commit-to-record max", fmt(service, "max"), fmt(baseline, "max"))
    line("Leads in the org", fmt(service, "records"), fmt(baseline, "records"))
    line("failed syncs", service["failed"], "")
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
    print()
    print("Service API calls per attempt, by what the attempt did:")
    for kind, calls in sorted(service["calls_by_kind"].items()):
        print(
            f"  {kind}: {len(calls)} attempts, mean {statistics.mean(calls):.2f}, "
            f"max {max(calls)} calls"
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args(argv)

    run_id = secrets.token_hex(4)
    env = prepare_environment(run_id)
    from salesforce_emulator import EmulatorControl, EmulatorServer

    with EmulatorServer() as server:
        os.environ.update(
            {
                "SALESFORCE_CA_BUNDLE": str(server.ca_path),
                "SALESFORCE_LOGIN_URL": server.login_url,
                "SALESFORCE_SANDBOX_LOGIN_URL": server.sandbox_login_url,
            }
        )
        env.update(
            {
                k: os.environ[k]
                for k in (
                    "SALESFORCE_CA_BUNDLE",
                    "SALESFORCE_LOGIN_URL",
                    "SALESFORCE_SANDBOX_LOGIN_URL",
                )
            }
        )
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autorespond.settings")
        # Our own throwaway database (created and dropped below like a test database).
        os.environ["TEST_DATABASE_NAME"] = f"bench_autorespond_{run_id}"
        import django

        django.setup()
        from django.conf import settings
        from django.db import connection

        from autorespond.celery import app

        main_database = settings.DATABASES["default"]["NAME"]
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        control = EmulatorControl(server.login_url)
        events = build_workload(args.count, args.seed)
        try:
            service = run_service(args, events, server, control, env)
            baseline = None if args.no_baseline else run_baseline(args, events, server, control)
        finally:
            with app.connection_for_write() as conn:
                conn.default_channel.queue_purge(env["CELERY_QUEUE"])
            connection.creation.destroy_test_db(main_database, verbosity=0)
        report(args, events, service, baseline)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
