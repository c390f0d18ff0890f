"""Find, or start, the PostgreSQL and Redis servers the test suite talks to.

Order: DATABASE_URL / REDIS_URL when set; else the local default ports; else start the locally
installed servers (Debian's packaging) and look again. `.ci/run` installs them on a machine that
has none. What could not be found is reported, never hidden: tests that need it are skipped with a
loud reason on a developer's machine, and fail under CI (CI=true).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time

LOCAL_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _start_postgres() -> None:
    if shutil.which("pg_ctlcluster"):
        for version_dir in glob.glob("/etc/postgresql/*"):
            version = os.path.basename(version_dir)
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                check=False,
                capture_output=True,
            )


def _start_redis() -> None:
    if shutil.which("redis-server"):
        subprocess.run(
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            check=False,
            capture_output=True,
        )


def _wait_for(host: str, port: int, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _port_open(host, port):
            return True
        time.sleep(0.3)
    return False


def ensure_services() -> dict[str, str]:
    """Environment variables that point the tests at real servers (empty for what is missing).

    TEST_SERVICES=none pretends there are none, to check the suite on a machine without them.
    """
    found: dict[str, str] = {}
    if os.environ.get("TEST_SERVICES") == "none":
        return found
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        found["DATABASE_URL"] = os.environ["DATABASE_URL"]
    elif _port_open("127.0.0.1", 5432) or (_start_postgres() or _wait_for("127.0.0.1", 5432)):
        found["DATABASE_URL"] = LOCAL_DATABASE_URL
    if os.environ.get("REDIS_URL"):
        found["REDIS_URL"] = os.environ["REDIS_URL"]
    elif _port_open("127.0.0.1", 6379) or (_start_redis() or _wait_for("127.0.0.1", 6379)):
        found["REDIS_URL"] = LOCAL_REDIS_URL
    return found


if __name__ == "__main__":
    for name, value in ensure_services().items():
        print(f"{name}={value}")
