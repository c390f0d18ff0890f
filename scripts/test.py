"""`make test`: point the suite at real PostgreSQL and Redis (found or started), then run pytest.

Each run gets its own test database name, Celery queue and Redis key prefix, so two runs on one
machine (two developers' sessions, or CI beside a developer) never see each other's tasks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from services import ensure_services

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    env = dict(os.environ)
    services = ensure_services()
    env.update(services)
    if os.environ.get("TEST_SERVICES") == "none":
        for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
            env.pop(name, None)
    for name in ("DATABASE_URL", "REDIS_URL"):
        if name not in services:
            print(f"!! No server for {name}: tests that need it will be skipped (failed under CI).")
    run_id = uuid.uuid4().hex[:8]
    env.setdefault("TEST_DATABASE_NAME", f"test_autorespond_{run_id}")
    env.setdefault("CELERY_QUEUE", f"test-{run_id}")
    env.setdefault("CELERY_KEY_PREFIX", f"test-{run_id}:")
    if "REDIS_URL" in services:
        env.setdefault("CELERY_BROKER_URL", services["REDIS_URL"])
    command = [sys.executable, "-m", "pytest", *argv]
    print("Running:", " ".join(command), flush=True)
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
