"""Sync throughput: API calls per synced inquiry, inquiries per second, commit-to-record
latency, duplicates and worker memory, through a real Celery worker and Redis against the
Salesforce emulator, for the batched engine, one inquiry per task and a naive loop in one run.

    .venv/bin/python benchmarks/sync_throughput.py                        # 500 at 10/s
    .venv/bin/python benchmarks/sync_throughput.py --count 2000 --rate 0  # a burst of 2,000
    .venv/bin/python benchmarks/sync_throughput.py --count 2000 --rate 0 --orgs 20

Options: --count (inquiries, default 500), --rate (arrivals per second, default 10; 0 = all at
once, a burst), --orgs (the inquiries spread over this many orgs, default 1), --contacts (share
of new people whose source syncs Contacts, default 0.2), --modes (comma-separated, default
"batched,single,naive": the batched engine, one inquiry per task (`SYNC_BATCH_SIZE=1`), and the
naive loop), --latency-ms (added by the emulator to every API call, default 100),
--concurrency (worker processes, default 8), --seed, --timeout (seconds to wait, default 600).

Workload (the same for every mode): about 60% inquiries from new people, 20% new inquiries from
people seen before (their phone in another format, their email in other letter case or left
out), 20% updates of an earlier inquiry (a new city and job description); `--contacts` of the
people belong to a location of the business whose card syncs Contacts (same org, its own
connection).

The service: `inquiry_upsert` commits each inquiry (the API's own service), which enqueues the
sync; a worker with `--concurrency` pool processes runs it. Commit-to-record latency is from
the commit to the end of the attempt that wrote that version to Salesforce. Worker RSS is the
highest sum of the worker's processes' resident memory seen during the run.

The naive loop: one plain loop fed at the same arrival rate that, per event, queries by email,
queries by phone (SOQL `=`), then creates or updates, through simple-salesforce with REST
defaults. Its latency is from the event's arrival to its write.

Needs PostgreSQL and Redis (found or started like `make test` does, see scripts/services.py). It
creates and drops its own database, queue and Redis key prefix; everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import secrets
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))


@dataclass
class Event:
    """One arrival: a new inquiry of a new or known person, or an update of an inquiry."""

    kind: str  # "new person" | "repeat person" | "update"
    external_id: str
    data: dict[str, str]
    org: int = 0  # which org (of --orgs) the person belongs to
    contact: bool = False  # the person's source syncs Contacts
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
    org: int = 0
    contact: bool = False


def build_workload(count: int, seed: int, orgs: int = 1, contacts: float = 0.0) -> list[Event]:
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
                org=n % orgs,
                contact=rng.random() < contacts,
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
                    person.org,
                    person.contact,
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
            events.append(Event("repeat person", external_id, data, person.org, person.contact))
        else:
            person = rng.choice(known)
            external_id = rng.choice(person.inquiries)
            events.append(
                Event(
                    "update",
                    external_id,
                    {"city": f"City {i}", "job_description": f"Update {i}"},
                    person.org,
                    person.contact,
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


def worker_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (MB), from /proc."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids.extend(int(c) for c in children)
    except OSError:
        pass
    for one in pids:
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def commit_share(
    share: list[tuple[int, Event]], sources: dict[tuple[int, bool], Any], start: float, rate: float
) -> list[tuple[int, float, int, int]]:
    """Commit one writer's events through the API's own service, at `rate` per second overall
    (0: at once); returns (index, commit time, inquiry id, requested version) per event."""
    from django.db import connection

    from autorespond.services import inquiry_upsert

    done: list[tuple[int, float, int, int]] = []
    try:
        for i, event in share:
            if rate > 0:
                delay = start + i / rate - time.time()
                if delay > 0:
                    time.sleep(delay)
            source = sources[(event.org, event.contact)]
            result = inquiry_upsert(source=source, external_id=event.external_id, data=event.data)
            # request_sync cached the sync row it wrote on the inquiry: no query.
            version = result.inquiry.salesforce_sync.requested_version
            done.append((i, time.time(), result.inquiry.pk, version))
    finally:
        connection.close()
    return done


def run_service(
    args: argparse.Namespace,
    events: list[Event],
    server: Any,
    control: Any,
    env: dict[str, str],
    mode: str,
) -> dict[str, Any]:
    """Run the events through a real worker; `mode` "batched" (drains of up to 200) or
    "single" (one inquiry per task, SYNC_BATCH_SIZE=1)."""
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from autorespond.models import Source
    from integrations.salesforce.models import (
        InquirySync,
        SalesforceConnection,
        SalesforceSettings,
        SyncAttempt,
        SyncStatus,
    )
    from integrations.salesforce.sync.scheduling import syncs_sweep
    from integrations.salesforce.validation import connection_validate

    batch = "200" if mode == "batched" else "1"
    settings.SYNC_BATCH_SIZE = int(batch)  # request_sync in this process sends drains or tasks
    orgs: list[dict[str, Any]] = []
    sources: dict[tuple[int, bool], Source] = {}
    for index in range(args.orgs):
        org, token = connect_org(server, control, f"{mode} org {index}")
        orgs.append(org)
        _, org_id, user_id = token["id"].rsplit("/", 2)
        business = Source.objects.create(slug=f"{mode}-{index}", name=f"Plumbing {index}")
        contacts = Source.objects.create(
            slug=f"{mode}-{index}-contacts", name=f"Plumbing {index} East", parent=business
        )
        for source, record_type in ((business, "Lead"), (contacts, "Contact")):
            made = SalesforceConnection.objects.create(
                source=source,
                login_url=server.login_url,
                instance_url=token["instance_url"],
                org_id=org_id,
                user_id=user_id,
                access_token=token["access_token"],
                refresh_token=token.get("refresh_token", ""),
            )
            SalesforceSettings.objects.create(
                source=source, enabled=True, send_job_description=True, record_type=record_type
            )
            # As connecting does (the card validates a new connection), which reads and keeps
            # the org's schema: the burst is not charged the connections' one-off reads.
            connection_validate(connection=made)
        sources[(index, False)], sources[(index, True)] = business, contacts
        control.add_fault(org["org_id"], "latency", latency_ms=args.latency_ms)
    used_before = sum(control.api_usage(o["org_id"])["used"] for o in orgs)
    logged_before = {o["org_id"]: len(control.calls(o["org_id"])) for o in orgs}
    source_ids = [s.pk for s in sources.values()]

    db = connection.settings_dict
    worker_env = {
        **os.environ,
        **env,
        "SYNC_BATCH_SIZE": batch,
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}"
            f"/{db['NAME']}"
        ),
    }
    log_path = ROOT / "var" / f"bench-worker-{env['CELERY_QUEUE']}-{mode}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    rss = 0.0
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "autorespond", "worker",
                "-Q", env["CELERY_QUEUE"], "-c", str(args.concurrency), "-P", "prefork",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning",
            ],
            cwd=ROOT,
            env=worker_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    mine = InquirySync.objects.filter(inquiry__source_id__in=source_ids)
    try:
        time.sleep(3)  # the worker's pool starts
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited; see {log_path}")
        start = time.time()

        # A burst arrives as the API would take it: from several clients at once, each a
        # process of its own as the web server's workers are (threads of this process would
        # share one GIL, and the commits would measure this process rather than the service).
        # The events of one inquiry stay in order, with one writer.
        writers = 1 if args.rate > 0 else max(1, args.writers)
        shares: list[list[tuple[int, Event]]] = [[] for _ in range(writers)]
        for i, event in enumerate(events):
            shares[hash(event.external_id) % writers].append((i, event))
        connection.close()  # not shared with the forked writers
        with ProcessPoolExecutor(writers, mp_context=multiprocessing.get_context("fork")) as pool:
            running = [
                pool.submit(commit_share, share, sources, start, args.rate) for share in shares
            ]
            while not all(f.done() for f in running):
                rss = max(rss, worker_rss_mb(worker.pid))
                time.sleep(0.2)
            for f in running:
                for i, committed_at, inquiry_id, version in f.result():
                    events[i].committed_at = committed_at
                    events[i].inquiry_id = inquiry_id
                    events[i].version = version
        committed = time.time()
        deadline = time.time() + args.timeout
        last_sweep = time.time()
        while time.time() < deadline:
            rss = max(rss, worker_rss_mb(worker.pid))
            if not mine.filter(due_at__isnull=False).exists():
                break
            if time.time() - last_sweep > 10:
                # Still due 10 s on: say what waits (a stall shows here, not just in the rate).
                waiting = (
                    mine.filter(due_at__isnull=False)
                    .values_list("status", "error_code", "lease_token")
                    .order_by()
                )
                summary: dict[tuple[str, str, bool], int] = {}
                for status, code, token in waiting:
                    key = (status, code, bool(token))
                    summary[key] = summary.get(key, 0) + 1
                print(f"still due after the sweep interval (status, error, leased): {summary}")
                syncs_sweep()  # beat's job; no beat runs here
                last_sweep = time.time()
            time.sleep(0.2)
        else:
            raise SystemExit(f"the service did not finish within {args.timeout}s")
        finished = max(
            SyncAttempt.objects.filter(sync__in=mine).values_list("finished_at", flat=True)
        ).timestamp()
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
    ) in (
        SyncAttempt.objects.filter(sync__in=mine)
        .values_list(
            "sync__inquiry_id", "detail__version", "finished_at", "outcome", "api_calls", "detail"
        )
        .order_by("finished_at")
    ):
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
    used = sum(control.api_usage(o["org_id"])["used"] for o in orgs) - used_before
    breakdown = _breakdown(control, orgs, mine, source_ids, logged_before)
    records = sum(
        len(control.records(o["org_id"], "Lead")) + len(control.records(o["org_id"], "Contact"))
        for o in orgs
    )
    return {
        "events": len(events),
        "api_calls": used,
        "records": records,
        "duration": finished - start,
        "intake": committed - start,
        "latencies": latencies,
        "failed": mine.filter(status=SyncStatus.FAILED).count(),
        "rss": rss,
        "when": timezone.now(),
        "breakdown": breakdown,
    }


def _call_kind(entry: dict[str, Any]) -> str:
    """What one logged API call was, by its resource: look-up, write or other."""
    path = entry.get("path", "").split("?")[0].rstrip("/")
    method = entry.get("method", "")
    if entry.get("api") == "soap":
        return "SOAP"
    if path.endswith("/composite/sobjects"):
        return f"sObject Collections {'create' if method == 'POST' else 'update'}"
    if path.endswith("/composite"):
        return "Composite"
    if "/sobjects/" in path and method in ("POST", "PATCH"):
        return f"single {'create' if method == 'POST' else 'update'}"
    if "/query" in path or "/search" in path:
        return "query or search"
    return "other"


def _breakdown(
    control: Any,
    orgs: list[dict[str, Any]],
    mine: Any,
    source_ids: list[int],
    logged_before: dict[str, int],
) -> dict:
    """Where the calls went: batches (one per drain pass, as the attempts of one pass share
    their start) per org, their sizes and calls, and the orgs' logged calls by resource."""
    from integrations.salesforce.models import SyncAttempt

    org_of_source: dict[int, int] = {}
    for index, source_id in enumerate(source_ids):
        org_of_source[source_id] = index // 2  # two sources per org, in creation order
    batches: dict[tuple[int, Any], list[int]] = {}
    busy: dict[str, int] = {}
    busy_syncs: set[int] = set()
    for sync_id, source_id, started_at, calls, error_code, message in (
        SyncAttempt.objects.filter(sync__in=mine)
        .values_list(
            "sync_id",
            "sync__inquiry__source_id",
            "started_at",
            "api_calls",
            "error_code",
            "error_message",
        )
        .order_by()
    ):
        key = (org_of_source.get(source_id, -1), started_at)
        batch = batches.setdefault(key, [0, 0])
        batch[0] += 1
        batch[1] += calls
        if error_code == "PERSON_BUSY":
            busy[message] = busy.get(message, 0) + 1
            busy_syncs.add(sync_id)
    per_org: dict[int, int] = {}
    for org, _started in batches:
        per_org[org] = per_org.get(org, 0) + 1
    kinds: dict[str, int] = {}
    for org in orgs:
        for entry in control.calls(org["org_id"])[logged_before[org["org_id"]] :]:
            if entry.get("api") in ("rest", "soap") and entry.get("status") not in (None, 0):
                kind = _call_kind(entry)
                kinds[kind] = kinds.get(kind, 0) + 1
    sizes = [size for size, _calls in batches.values()]
    calls = [c for _size, c in batches.values()]
    return {
        "batches": len(batches),
        "batches_per_org": sorted(per_org.values()),
        "sizes": sizes,
        "calls": calls,
        "kinds": kinds,
        "busy": busy,
        "busy_syncs": len(busy_syncs),
    }


# --------------------------------------------------------------------------- the baseline


def run_baseline(
    args: argparse.Namespace, events: list[Event], server: Any, control: Any
) -> dict[str, Any]:
    import requests
    from simple_salesforce import Salesforce
    from simple_salesforce.format import format_soql

    session = requests.Session()
    session.verify = str(server.ca_path)
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment wins over verify
    orgs, clients = [], []
    for index in range(args.orgs):
        org, token = connect_org(server, control, f"Baseline Org {index}")
        control.add_fault(org["org_id"], "latency", latency_ms=args.latency_ms)
        orgs.append(org)
        clients.append(
            Salesforce(
                instance_url=token["instance_url"],
                session_id=token["access_token"],
                version="59.0",
                session=session,
            )
        )
    used_before = sum(control.api_usage(o["org_id"])["used"] for o in orgs)
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
        sf = clients[event.org]  # the naive loop writes everyone as a Lead
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
        "api_calls": sum(control.api_usage(o["org_id"])["used"] for o in orgs) - used_before,
        "records": sum(len(control.records(o["org_id"], "Lead")) for o in orgs),
        "duration": duration,
        "latencies": latencies,
        "failed": 0,
        "rss": 0.0,
    }


# --------------------------------------------------------------------------- report


def report(args: argparse.Namespace, events: list[Event], results: dict[str, dict]) -> None:
    people = sum(1 for e in events if e.kind == "new person")
    kinds = {
        k: sum(1 for e in events if e.kind == k) for k in ("new person", "repeat person", "update")
    }
    contacts = sum(1 for e in events if e.kind == "new person" and e.contact)
    print()
    print(
        f"Sync throughput: {len(events)} inquiries ({kinds['new person']} new people of whom "
        f"{contacts} Contacts, {kinds['repeat person']} repeat people, {kinds['update']} "
        f"updates) over {args.orgs} org(s), arrival "
        f"{'all at once' if args.rate <= 0 else f'{args.rate:g}/s'}, emulator latency "
        f"{args.latency_ms} ms per API call, worker concurrency {args.concurrency}"
    )
    print(f"Distinct people: {people} (the records one-record-per-person should leave)")
    print()
    titles = {
        "batched": "batched engine",
        "single": "one inquiry per task",
        "naive": "naive loop",
    }
    rows = [("", *(titles[m] for m in results))]

    def fmt(result: dict, key: str) -> str:
        if key == "calls_per":
            return f"{result['api_calls'] / result['events']:.3f}"
        if key == "rate":
            return f"{result['events'] / result['duration']:.1f}"
        if key in ("p50", "p95", "max"):
            fraction = {"p50": 0.5, "p95": 0.95, "max": 1.0}[key]
            return f"{percentile(result['latencies'], fraction):.2f} s"
        if key == "duplicates":
            return str(result["records"] - people)
        if key == "intake":
            return f"{result['intake']:.1f} s" if "intake" in result else "-"
        if key == "rss":
            return f"{result['rss']:.0f} MB" if result["rss"] else "-"
        return str(result[key])

    for label, key in (
        ("API calls, total", "api_calls"),
        ("API calls per inquiry", "calls_per"),
        ("inquiries per second", "rate"),
        ("all committed after", "intake"),
        ("commit-to-record p50", "p50"),
        ("commit-to-record p95", "p95"),
        ("commit-to-record max", "max"),
        ("records in the org(s)", "records"),
        ("duplicates", "duplicates"),
        ("failed syncs", "failed"),
        ("worker RSS (all processes)", "rss"),
    ):
        rows.append((label, *(fmt(r, key) for r in results.values())))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
    for mode, result in results.items():
        breakdown = result.get("breakdown")
        if not breakdown or not breakdown["batches"]:
            continue
        sizes, calls, per_org = breakdown["sizes"], breakdown["calls"], breakdown["batches_per_org"]
        print()
        print(
            f"{titles[mode]}: {breakdown['batches']} batches (attempt passes), per org "
            f"{min(per_org)}-{max(per_org)} (mean {sum(per_org) / len(per_org):.1f}); size p50 "
            f"{percentile(sizes, 0.5):.0f}, mean {sum(sizes) / len(sizes):.1f}, max {max(sizes)}; "
            f"calls per batch mean {sum(calls) / len(calls):.2f} ("
            + ", ".join(f"{n} calls: {calls.count(n)}" for n in sorted(set(calls)))
            + ")"
        )
        for message, n in sorted(breakdown["busy"].items()):
            print(f"  {n} attempts waited for their person (PERSON_BUSY): {message}")
        if breakdown["busy"]:
            print(f"  ({breakdown['busy_syncs']} distinct syncs waited)")
        print(
            "  calls by resource: "
            + ", ".join(f"{kind} {n}" for kind, n in sorted(breakdown["kinds"].items()))
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--orgs", type=int, default=1)
    parser.add_argument("--writers", type=int, default=4, help="parallel writers of a burst")
    parser.add_argument("--contacts", type=float, default=0.2)
    parser.add_argument("--modes", default="batched,single,naive")
    parser.add_argument("--no-baseline", action="store_true", help="leave the naive loop out")
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m and not (args.no_baseline and m == "naive")]

    run_id = secrets.token_hex(4)
    env = prepare_environment(run_id)
    from _harness import EmulatorProcess

    from salesforce_emulator import EmulatorControl

    # The emulator runs in a process of its own: served from this one, its query evaluation
    # competed for the GIL with the driver and the writers, which Salesforce never does.
    emulator_log = ROOT / "var" / f"bench-emulator-{run_id}.log"
    with EmulatorProcess(emulator_log) as server:
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
        events = build_workload(args.count, args.seed, args.orgs, args.contacts)
        results: dict[str, dict] = {}
        try:
            for mode in modes:
                if mode == "naive":
                    results[mode] = run_baseline(args, events, server, control)
                else:
                    results[mode] = run_service(args, events, server, control, env, mode)
                with app.connection_for_write() as conn:
                    conn.default_channel.queue_purge(env["CELERY_QUEUE"])
        finally:
            with app.connection_for_write() as conn:
                conn.default_channel.queue_purge(env["CELERY_QUEUE"])
            connection.creation.destroy_test_db(main_database, verbosity=0)
        report(args, events, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
