"""A short run of the fault suite (benchmarks/faults.py) in CI: a killed worker, Redis flushed and
restarted under load, and Salesforce answering 503 lose nothing, duplicate nobody, leave the
worker and beat running, and cost a handful of Salesforce calls during the outage.

The full suite (500 inquiries, a 2-minute outage, about 15 minutes) is a benchmark run by hand
(README, "Fault suite"), and so is its time target (every inquiry synced within 30 s of
recovery): tests do not time things. Here every inquiry must be synced within the run's
`--settle-seconds`, or it counts as lost. The script starts its own redis-server, worker, beat
and database and stops them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

pytestmark = [pytest.mark.worker, pytest.mark.timeout(900)]

FAULTS = ("worker-kill", "redis-flush-restart", "salesforce-outage")


def test_the_sync_survives_a_killed_worker_a_flushed_redis_and_a_salesforce_outage(
    postgres: None, tmp_path: Path
) -> None:
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed: the fault suite starts its own"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    figures = tmp_path / "faults.json"
    command = [
        sys.executable, str(ROOT / "benchmarks" / "faults.py"),
        "--only", ",".join(FAULTS), "--count", "100", "--rate", "25",
        "--fault-after", "3", "--outage-seconds", "20", "--settle-seconds", "150",
        "--json", str(figures),
    ]  # fmt: skip
    run = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=840, check=False
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = {r["fault"]: r for r in json.loads(figures.read_text())}
    assert sorted(results) == sorted(FAULTS)
    for fault, r in results.items():
        shown = {k: r[k] for k in ("lost", "duplicated", "outage_calls", "notes")}
        assert (r["lost"], r["duplicated"]) == (0, 0), (fault, shown)
        assert r["recovery_seconds"] is not None, (fault, shown)
        assert r["worker_running"] and r["beat_running"], (fault, r["worker_errors"])
    assert results["salesforce-outage"]["outage_calls"] <= 10, results["salesforce-outage"]
