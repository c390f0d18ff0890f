"""Fault suite (issue 16): a real Celery worker and beat, their own Redis and PostgreSQL, and the
Salesforce emulator, with 500 inquiries in flight, through each fault in turn. For each it prints:
inquiries lost, people duplicated, seconds from recovery until every inquiry was synced, Salesforce
calls during the outage, and whether the worker and beat were still running with no hand restart.

    .venv/bin/python benchmarks/faults.py                       # every fault, about 15 minutes
    .venv/bin/python benchmarks/faults.py --only worker-kill --count 100 --outage-seconds 20

Faults (`--only` takes these names, comma-separated):

* `none`: no fault, the baseline: how long the same load takes to sync when nothing breaks
  (recovery = the last arrival).
* `worker-kill`: `--fault-after` seconds into the intake, SIGKILL the worker's process group (the
  main process and its pool) and start a new worker at once, as a supervisor would (recovery =
  the new worker started).
* `redis-flush-restart`: FLUSHALL, SIGKILL redis-server, start it again 5 s later (the sequence
  that killed the worker in issue 16; recovery = Redis listening again).
* `redis-down-at-intake`: redis-server is killed before the first inquiry; all of them are
  POSTed while it is down, and it comes back 5 s after the last one (the sweeper must send them).
* `salesforce-outage`: every API call of the org answers 503 SERVER_UNAVAILABLE for
  `--outage-seconds` (recovery = the fault cleared).
* `random-faults`: for `--outage-seconds` from the first inquiry, 30 % of the org's API calls
  fail transiently: 503, UNABLE_TO_LOCK_ROW, a connection dropped before or after Salesforce
  processed the call, in equal parts (recovery = the faults cleared, and the intake over).

Figures: *lost* = inquiries whose last change is not in Salesforce when the suite stops waiting
(`--settle-seconds` after recovery), counting POSTs the API refused, syncs failed for good and
syncs still pending; *duplicated* = Leads beyond one per person; *recovery → all synced* = from
recovery to the end of the last successful attempt; *SF calls in outage* = the org's API and
OAuth calls in the emulator's call log between the fault's start and its recovery; *worker
running* = the worker and beat processes we started (or, after worker-kill, restarted once) are
alive at the end. Targets (issue 16, "Done when"): 0 lost, 0 duplicated, ≤ 30 s, ≤ 10 calls in a
2-minute outage, worker running.

The workload is sync_throughput's (about 60 % new people, 20 % repeat people, 20 % updates),
POSTed to the ingestion API (`POST /api/v1/inquiries`, in process through Django's test client)
at `--rate` per second. The worker runs with `--concurrency` processes (4, as docker-compose.yml)
and beat as its own process, both with the project's default settings; the emulator adds
`--latency-ms` to every API call. Needs PostgreSQL (found as for `make test`, see
scripts/services.py) and the `redis-server` binary: it starts its own Redis on a free loopback
port, creates and drops its own database, and stops every process it started, also on Ctrl-C.
`--json PATH` writes the figures for a test to read.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _harness import CeleryProcess, RedisServer, throwaway_database  # noqa: E402
from sync_throughput import Event, build_workload, connect_org  # noqa: E402

FAULTS = (
    "none",
    "worker-kill",
    "redis-flush-restart",
    "redis-down-at-intake",
    "salesforce-outage",
    "random-faults",
)
# Kinds of transient fault the emulator injects (salesforce_emulator/core.py, Fault), in equal
# parts for random-faults. Each fires on its own, so each gets p with 1 - (1 - p)^4 = 30 %.
RANDOM_KINDS = (
    "server_unavailable",
    "unable_to_lock_row",
    "drop_connection",
    "drop_after_processing",
)
RANDOM_SHARE = 0.30
REDIS_RESTART_DELAY = 5.0
# Targets of issue 16 ("Done when").
TARGET_SECONDS = 30.0
TARGET_OUTAGE_CALLS = 10


@dataclass
class Timeline:
    """When the fault started and when the service could work again (time.time())."""

    started: float | None = None
    recovered: float | None = None
    calls_at_start: int = 0
    calls_at_recovery: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class Result:
    """One fault's figures (what the table prints and `--json` writes); seconds are wall-clock."""

    fault: str
    arrivals: int
    inquiries: int
    people: int
    lost: int
    refused: int
    failed: int
    pending: int
    duplicated: int
    people_missing: int
    recovery_seconds: float | None  # None: not all synced before the suite stopped waiting
    waited_seconds: float
    outage_calls: int | None  # None: the fault has no outage window (worker-kill, none)
    api_calls: int
    worker_running: bool
    beat_running: bool
    worker_errors: list[str]
    notes: list[str]

    def meets_targets(self) -> dict[str, bool]:
        """Each target of issue 16 by name: met or not."""
        return {
            "lost": self.lost == 0,
            "duplicated": self.duplicated == 0,
            "recovery": self.recovery_seconds is not None
            and self.recovery_seconds <= TARGET_SECONDS,
            "outage_calls": self.fault != "salesforce-outage"
            or (self.outage_calls is not None and self.outage_calls <= TARGET_OUTAGE_CALLS),
            "worker_running": self.worker_running and self.beat_running,
        }


class Scenario:
    """One fault against a fresh Redis, worker, beat, emulator org and empty database."""

    def __init__(self, fault: str, args: argparse.Namespace, suite: Suite) -> None:
        self.fault = fault
        self.args = args
        self.suite = suite
        self.timeline = Timeline()
        self.intake_may_start = threading.Event()
        self.intake_started_at = 0.0
        self.intake_done = threading.Event()
        self.fault_done = threading.Event()
        self.fault_error: BaseException | None = None
        self.worker: CeleryProcess | None = None
        self.beat: CeleryProcess | None = None

    # ------------------------------------------------------------------ set-up

    def start_worker(self) -> CeleryProcess:
        """A worker process (not started yet) logging to this fault's worker log."""
        log = self.suite.folder / f"{self.fault}-worker.log"
        return CeleryProcess(
            "worker", self.suite.worker_env, log, concurrency=self.args.concurrency
        )

    def prepare(self) -> None:
        from autorespond.models import Source
        from autorespond.services import api_key_create
        from integrations.salesforce.models import SalesforceConnection, SalesforceSettings

        suite = self.suite
        suite.redis.start()
        self.org, token = connect_org(suite.server, suite.control, f"Faults {self.fault}")
        self.source = Source.objects.create(slug=f"faults-{self.fault}", name="Fault Plumbing")
        _, org_id, user_id = token["id"].rsplit("/", 2)
        SalesforceConnection.objects.create(
            source=self.source,
            login_url=suite.server.login_url,
            instance_url=token["instance_url"],
            org_id=org_id,
            user_id=user_id,
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token", ""),
        )
        SalesforceSettings.objects.create(source=self.source, enabled=True)
        _, self.api_key = api_key_create(name=f"faults {self.fault}")
        self.add_latency()
        self.worker = self.start_worker().start()
        self.beat = CeleryProcess(
            "beat", suite.worker_env, suite.folder / f"{self.fault}-beat.log"
        ).start()

    def add_latency(self) -> None:
        if self.args.latency_ms:
            self.suite.control.add_fault(
                self.org["org_id"], "latency", latency_ms=self.args.latency_ms
            )

    def call_count(self) -> int:
        return len(self.suite.control.calls(self.org["org_id"]))

    # ------------------------------------------------------------------ the faults

    def run_fault(self) -> None:
        """The fault's own thread: wait for its moment, break something, mend it."""
        try:
            getattr(self, "fault_" + self.fault.replace("-", "_"))()
        except BaseException as exc:  # reported by the main thread
            self.fault_error = exc
            self.intake_may_start.set()
        finally:
            self.fault_done.set()

    def wait_into_intake(self) -> None:
        self.intake_may_start.set()
        while not self.intake_started_at:
            time.sleep(0.05)
        delay = self.intake_started_at + self.args.fault_after - time.time()
        if delay > 0:
            self.intake_done.wait(delay)

    def fault_none(self) -> None:
        self.intake_may_start.set()
        self.intake_done.wait()
        self.timeline.started = self.timeline.recovered = time.time()

    def fault_worker_kill(self) -> None:
        self.wait_into_intake()
        assert self.worker is not None
        self.timeline.started = time.time()
        self.worker.kill()
        self.worker = self.start_worker().start(wait_ready=False)
        self.timeline.recovered = time.time()

    def fault_redis_flush_restart(self) -> None:
        self.wait_into_intake()
        redis = self.suite.redis
        self.timeline.calls_at_start = self.call_count()
        self.timeline.started = time.time()
        redis.flushall()
        redis.kill()
        time.sleep(REDIS_RESTART_DELAY)
        redis.start()
        self.timeline.recovered = time.time()
        self.timeline.calls_at_recovery = self.call_count()

    def fault_redis_down_at_intake(self) -> None:
        self.timeline.calls_at_start = self.call_count()
        self.timeline.started = time.time()
        self.suite.redis.kill()
        self.intake_may_start.set()
        self.intake_done.wait()
        time.sleep(REDIS_RESTART_DELAY)
        self.suite.redis.start()
        self.timeline.recovered = time.time()
        self.timeline.calls_at_recovery = self.call_count()

    def fault_salesforce_outage(self) -> None:
        self.wait_into_intake()
        control, org_id = self.suite.control, self.org["org_id"]
        self.timeline.calls_at_start = self.call_count()
        control.add_fault(org_id, "server_unavailable")
        self.timeline.started = time.time()
        time.sleep(self.args.outage_seconds)
        control.clear_faults(org_id)
        self.add_latency()
        self.timeline.recovered = time.time()
        self.timeline.calls_at_recovery = self.call_count()

    def fault_random_faults(self) -> None:
        control, org_id = self.suite.control, self.org["org_id"]
        share = 1 - (1 - RANDOM_SHARE) ** (1 / len(RANDOM_KINDS))
        self.timeline.calls_at_start = self.call_count()
        for kind in RANDOM_KINDS:
            control.add_fault(org_id, kind, probability=share)
        self.timeline.started = time.time()
        self.intake_may_start.set()
        time.sleep(self.args.outage_seconds)
        self.intake_done.wait()
        control.clear_faults(org_id)
        self.add_latency()
        self.timeline.recovered = time.time()
        self.timeline.calls_at_recovery = self.call_count()
        faulted = sum(
            1
            for call in self.suite.control.calls(org_id)[self.timeline.calls_at_start :]
            if call.get("fault") and call["fault"] != "latency"
        )
        self.timeline.notes.append(
            f"{faulted} of {self.timeline.calls_at_recovery - self.timeline.calls_at_start} "
            "calls faulted"
        )

    # ------------------------------------------------------------------ intake and waiting

    def intake(self, events: list[Event]) -> dict[str, int]:
        """POST every event to the ingestion API at --rate; returns status code counts."""
        from django.test import Client

        client = Client(raise_request_exception=False, HTTP_HOST="127.0.0.1")
        auth = {"HTTP_AUTHORIZATION": f"Bearer {self.api_key}"}
        codes: Counter[int] = Counter()
        self.accepted: set[str] = set()
        self.refused_ids: set[str] = set()
        self.intake_may_start.wait()
        self.intake_started_at = start = time.time()
        for i, event in enumerate(events):
            if self.args.rate > 0:
                delay = start + i / self.args.rate - time.time()
                if delay > 0:
                    time.sleep(delay)
            body = {"id": event.external_id, "source": self.source.slug, **event.data}
            response = client.post(
                "/api/v1/inquiries",
                data=json.dumps(body),
                content_type="application/json",
                **auth,
            )
            codes[response.status_code] += 1
            if response.status_code in (200, 201):
                self.accepted.add(event.external_id)
            else:
                self.refused_ids.add(event.external_id)
        self.intake_ended_at = time.time()
        self.intake_done.set()
        return dict(codes)

    def pending_count(self) -> int:
        from integrations.salesforce.models import InquirySync

        return InquirySync.objects.filter(inquiry__source=self.source, due_at__isnull=False).count()

    def run(self) -> Result:
        events = build_workload(self.args.count, self.args.seed)
        self.prepare()
        thread = threading.Thread(target=self.run_fault, name=f"fault {self.fault}", daemon=True)
        thread.start()
        codes = self.intake(events)
        bound = self.args.outage_seconds + self.args.fault_after + 120
        self.fault_done.wait(bound)
        if self.fault_error is not None:
            raise RuntimeError(f"the fault {self.fault} could not be applied") from self.fault_error
        recovered = self.timeline.recovered or time.time()
        deadline = max(recovered, self.intake_ended_at) + self.args.settle_seconds
        while time.time() < deadline and self.pending_count():
            time.sleep(0.5)
        waited = time.time() - recovered
        result = self.measure(events, codes, recovered, waited)
        self.stop()
        return result

    def stop(self) -> None:
        for process in (self.worker, self.beat):
            if process is not None:
                process.stop()
        self.suite.redis.kill()

    # ------------------------------------------------------------------ figures

    def measure(
        self, events: list[Event], codes: dict[str, int], recovered: float, waited: float
    ) -> Result:
        from django.db.models import Max

        from integrations.salesforce.models import InquirySync, SyncAttempt, SyncStatus
        from integrations.salesforce.sync.items import SUCCESS_STATUSES

        rows = {
            external_id: (status, due_at, requested, synced, record_id)
            for external_id, status, due_at, requested, synced, record_id in (
                InquirySync.objects.filter(inquiry__source=self.source).values_list(
                    "inquiry__external_id",
                    "status",
                    "due_at",
                    "requested_version",
                    "synced_version",
                    "record_id",
                )
            )
        }
        leads = self.suite.control.records(self.org["org_id"], "Lead")
        lead_ids = {lead["Id"] for lead in leads}
        inquiries = {event.external_id for event in events}
        synced = {
            external_id
            for external_id, (status, due_at, requested, done, record_id) in rows.items()
            if status in SUCCESS_STATUSES
            and due_at is None
            and done >= requested
            and record_id in lead_ids
        }
        failed = sum(1 for row in rows.values() if row[0] == SyncStatus.FAILED)
        pending = sum(1 for row in rows.values() if row[1] is not None)
        # A refused POST of an inquiry that another POST created still lost that change.
        lost = len((inquiries - synced) | self.refused_ids)
        # Every inquiry of person n has FirstName "First<n>" (sync_throughput's workload).
        people = {event.data["first_name"] for event in events if event.kind == "new person"}
        per_person = Counter(lead.get("FirstName") for lead in leads)
        duplicated = sum(count - 1 for count in per_person.values() if count > 1)
        duplicated += sum(count for name, count in per_person.items() if name not in people)
        missing = sum(1 for person in people if per_person[person] == 0)
        successes = SyncAttempt.objects.filter(
            sync__inquiry__source=self.source, outcome__in=SUCCESS_STATUSES
        )
        last_success = successes.aggregate(last=Max("finished_at"))["last"]
        recovery_seconds = None
        if pending == 0 and last_success is not None:
            recovery_seconds = max(0.0, last_success.timestamp() - recovered)
        outage_calls = None
        if self.fault not in ("none", "worker-kill"):
            outage_calls = self.timeline.calls_at_recovery - self.timeline.calls_at_start
        assert self.worker is not None and self.beat is not None
        notes = list(self.timeline.notes)
        if self.timeline.started is not None and self.timeline.recovered is not None:
            notes.append(
                f"fault at {clock(self.timeline.started)}, recovered at "
                f"{clock(self.timeline.recovered)}"
            )
        last = successes.order_by("-finished_at").first()
        if last is not None and last_success is not None and recovery_seconds:
            # What held the slowest inquiry up: its attempts before the one that synced it.
            history = list(
                SyncAttempt.objects.filter(sync=last.sync_id)
                .order_by("started_at")
                .values_list("started_at", "outcome", "error_code")
            )
            notes.append(
                f"last synced: inquiry {last.sync.inquiry_id} at {clock(last_success.timestamp())}"
                ", after "
                + (
                    ", ".join(
                        f"{clock(at.timestamp())} {outcome} {code}".rstrip()
                        for at, outcome, code in history[:-1]
                    )
                    or "no earlier attempt"
                )
            )
        refused = {str(code): n for code, n in codes.items() if code not in (200, 201)}
        if refused:
            notes.append(f"API refused POSTs: {refused}")
        if failed:
            errors = Counter(
                InquirySync.objects.filter(
                    inquiry__source=self.source, status=SyncStatus.FAILED
                ).values_list("error_code", flat=True)
            )
            notes.append(f"failed for good: {dict(errors)}")
        return Result(
            fault=self.fault,
            arrivals=len(events),
            inquiries=len(inquiries),
            people=len(people),
            lost=lost,
            refused=sum(refused.values()),
            failed=failed,
            pending=pending,
            duplicated=duplicated,
            people_missing=missing,
            recovery_seconds=recovery_seconds,
            waited_seconds=waited,
            outage_calls=outage_calls,
            api_calls=self.suite.control.api_usage(self.org["org_id"])["used"],
            worker_running=self.worker.alive,
            beat_running=self.beat.alive,
            worker_errors=[
                line.strip()[:300]
                for line in self.worker.log_lines("CRITICAL", "Unrecoverable")
                + self.beat.log_lines("CRITICAL", "Unrecoverable")
            ][:5],
            notes=notes,
        )


class Suite:
    """What the scenarios share: the emulator, our Redis, the database, the worker environment."""

    def __init__(self, server: Any, control: Any, redis: RedisServer, folder: Path) -> None:
        self.server = server
        self.control = control
        self.redis = redis
        self.folder = folder
        self.worker_env: dict[str, str] = {}

    def reset_database(self) -> None:
        """Empty every table between scenarios (the worker and beat are stopped by then)."""
        from django.core.management import call_command

        call_command("flush", interactive=False, verbosity=0)


# --------------------------------------------------------------------------- report


def clock(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


def fmt_seconds(result: Result) -> str:
    if result.recovery_seconds is None:
        return f"not all after {result.waited_seconds:.0f}"
    return f"{result.recovery_seconds:.1f}"


def report(results: list[Result], args: argparse.Namespace) -> None:
    print()
    print(
        f"Fault suite: {args.count} arrivals at {args.rate:g}/s, worker concurrency "
        f"{args.concurrency}, emulator latency {args.latency_ms} ms, outage "
        f"{args.outage_seconds:g} s, fault {args.fault_after:g} s into the intake"
    )
    header = (
        "fault",
        "lost",
        "duplicated",
        "recovery → all synced (s)",
        "SF calls in outage",
        "worker running",
        "targets",
    )
    rows = [header]
    for r in results:
        met = r.meets_targets()
        missed = [name for name, ok in met.items() if not ok]
        rows.append(
            (
                r.fault,
                f"{r.lost}" + (f" ({r.failed} failed, {r.pending} pending)" if r.lost else ""),
                str(r.duplicated),
                fmt_seconds(r),
                "—" if r.outage_calls is None else str(r.outage_calls),
                ("yes" if r.worker_running else "NO") + ("" if r.beat_running else " (beat died)"),
                "met" if not missed else "missed: " + ", ".join(missed),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
    print()
    for r in results:
        extra = [f"{r.inquiries} inquiries of {r.people} people, {r.api_calls} API calls"]
        extra += r.notes
        extra += [f"log: {line}" for line in r.worker_errors]
        print(f"{r.fault}: " + "; ".join(extra))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(FAULTS), help="comma-separated faults")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--rate", type=float, default=25.0, help="arrivals per second")
    parser.add_argument("--outage-seconds", type=float, default=120.0)
    parser.add_argument("--fault-after", type=float, default=10.0)
    parser.add_argument("--settle-seconds", type=float, default=240.0)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep-logs", action="store_true", help="keep the worker and beat logs")
    args = parser.parse_args(argv)
    faults = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in faults if name not in FAULTS]
    if unknown:
        parser.error(f"unknown fault(s) {unknown}; choose from {', '.join(FAULTS)}")

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # Explicit handlers: a shell that starts us in the background ignores SIGINT for us, and
    # SIGTERM's default would skip the clean-up below (processes, database, folders).
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)

    from services import ensure_services

    database_url = ensure_services().get("DATABASE_URL")
    if not database_url:
        raise SystemExit("The fault suite needs PostgreSQL (see scripts/services.py).")
    run_id = secrets.token_hex(4)
    folder = Path(tempfile.mkdtemp(prefix="faults-"))
    redis = RedisServer()
    results: list[Result] = []
    from salesforce_emulator import EmulatorControl, EmulatorServer

    try:
        with EmulatorServer() as server:
            env = {
                "DATABASE_URL": database_url,
                "REDIS_URL": redis.url,
                "CELERY_BROKER_URL": redis.url,
                "CELERY_QUEUE": f"faults-{run_id}",
                "CELERY_KEY_PREFIX": "",
                "DEBUG": "false",
                "DJANGO_SETTINGS_MODULE": "autorespond.settings",
                "SALESFORCE_CA_BUNDLE": str(server.ca_path),
                "SALESFORCE_LOGIN_URL": server.login_url,
                "SALESFORCE_SANDBOX_LOGIN_URL": server.sandbox_login_url,
            }
            os.environ.update(env)
            import django

            django.setup()
            with throwaway_database(f"faults_autorespond_{run_id}") as worker_database_url:
                suite = Suite(server, EmulatorControl(server.login_url), redis, folder)
                suite.worker_env = {
                    **os.environ,
                    **env,
                    "DATABASE_URL": worker_database_url,
                    "PYTHONUNBUFFERED": "1",
                }
                suite.worker_env.pop("TEST_DATABASE_NAME", None)
                for fault in faults:
                    print(f"[{time.strftime('%H:%M:%S')}] {fault} …", flush=True)
                    scenario = Scenario(fault, args, suite)
                    try:
                        results.append(scenario.run())
                    finally:
                        scenario.stop()
                        suite.reset_database()
                    report(results[-1:], args)
    finally:
        redis.close()
        if args.keep_logs:
            print(f"(worker and beat logs: {folder})", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    report(results, args)
    if args.json:
        args.json.write_text(
            json.dumps([asdict(r) | {"targets": r.meets_targets()} for r in results], indent=2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
