"""Processes and throwaway resources the benchmarks start and clean up themselves.

`benchmarks/faults.py` kills and restarts these on purpose, so each one here is a plain child
process in its own session (a SIGKILL of its process group takes the whole worker, pool
included, as a crashed machine would) and never a shared server:

* `RedisServer`: a `redis-server` of our own on a free loopback port with its own data folder,
  so a FLUSHALL or a SIGKILL never touches the Redis other runs use (port 6379);
* `CeleryProcess`: `celery worker` or `celery beat`, as docker-compose.yml runs them in
  production (two processes), on our queue and broker;
* `throwaway_database`: a PostgreSQL database of our own, created and dropped like a test
  database (Django's test-database machinery: migrations, then DROP DATABASE);
* `EmulatorProcess`: the Salesforce emulator (`python -m salesforce_emulator`) in a process of
  its own, so its request handling never competes for the GIL with the benchmark's driver, as
  a real Salesforce would not.

Hand-written rather than a library: each is a few lines of `subprocess` around the servers'
own command lines, and the benchmarks need the raw process (its pid, its process group) to kill.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Signal the child's whole process group (it leads its own session)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)


class RedisServer:
    """A redis-server of our own: loopback only, no persistence, its own folder.

    `url` stays the same across `kill()` / `start()`, as a restarted production Redis would.
    Raises SystemExit when redis-server is not installed.
    """

    def __init__(self, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (Debian: apt-get install redis-server)")
        self.binary = binary
        self.port = port or free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="bench-redis-"))
        self.log_path = self.folder / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15) -> RedisServer:
        command = [
            self.binary, "--bind", "127.0.0.1", "--port", str(self.port),
            "--dir", str(self.folder), "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--logfile", str(self.log_path),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_open(self.port):
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def flushall(self) -> None:
        import redis

        redis.Redis.from_url(self.url, socket_timeout=5).flushall()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save, connections cut."""
        if self.process is not None:
            _kill_group(self.process)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


class EmulatorProcess:
    """`python -m salesforce_emulator` on free loopback ports with certificates in a folder of
    its own; the same attributes as `EmulatorServer` that a benchmark uses (`login_url`,
    `sandbox_login_url`, `instance_url`, `ca_path`). Driven over HTTP with `EmulatorControl`.
    """

    def __init__(self, log_path: Path) -> None:
        self.ports = {"login": free_port(), "sandbox": free_port(), "instance": free_port()}
        self.folder = Path(tempfile.mkdtemp(prefix="bench-emulator-"))
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.login_url = f"http://127.0.0.1:{self.ports['login']}"
        self.sandbox_login_url = f"http://127.0.0.1:{self.ports['sandbox']}"
        self.instance_url = f"https://127.0.0.1:{self.ports['instance']}"

    @property
    def ca_path(self) -> Path:
        return self.folder / "emulator-ca.pem"  # salesforce_emulator.server.CA_FILE

    def start(self, timeout: float = 30) -> EmulatorProcess:
        command = [
            sys.executable, "-m", "salesforce_emulator",
            "--login-port", str(self.ports["login"]),
            "--sandbox-port", str(self.ports["sandbox"]),
            "--instance-port", str(self.ports["instance"]),
            "--certs-dir", str(self.folder),
        ]  # fmt: skip
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(port_open(port) for port in self.ports.values()) and self.ca_path.exists():
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.close()
        raise RuntimeError(f"the emulator did not start; see {self.log_path}")

    def close(self) -> None:
        if self.process is not None:
            _kill_group(self.process, signal.SIGTERM)
            _kill_group(self.process)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class CeleryProcess:
    """`celery -A autorespond worker|beat` in its own session, logging to `log_path`.

    `alive` is what "the worker is still running" means: the process we started has not exited.
    """

    def __init__(
        self, kind: str, env: dict[str, str], log_path: Path, *, concurrency: int = 4
    ) -> None:
        if kind not in ("worker", "beat"):
            raise ValueError(kind)
        self.kind = kind
        self.env = env
        self.log_path = log_path
        self.concurrency = concurrency
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        base = [sys.executable, "-m", "celery", "-A", "autorespond", self.kind, "-l", "info"]
        if self.kind == "beat":
            return [*base, "--schedule", str(self.log_path.with_suffix(".schedule"))]
        return [
            *base, "-Q", self.env["CELERY_QUEUE"], "-c", str(self.concurrency), "-P", "prefork",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-n", f"bench-{os.getpid()}-{time.monotonic_ns()}@%h",
        ]  # fmt: skip

    def start(self, *, wait_ready: bool = True, timeout: float = 90) -> CeleryProcess:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not wait_ready:
            return self
        marker = b"ready." if self.kind == "worker" else b"beat: Starting..."
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in self.log_path.read_bytes()[offset:]:
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"celery {self.kind} did not start; see {self.log_path}")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and everything in its group (a worker's pool processes)."""
        if self.process is not None:
            _kill_group(self.process)

    def stop(self) -> None:
        """A warm shutdown (SIGTERM to the main process only: it stops its own pool)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        # Pool processes orphaned by an earlier SIGKILL of the parent alone.
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def log_lines(self, *needles: str) -> list[str]:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [line for line in text.splitlines() if any(n in line for n in needles)]


@contextlib.contextmanager
def throwaway_database(name: str) -> Iterator[str]:
    """Create a PostgreSQL database `name` with every migration applied; drop it afterwards.

    Django must be set up with the server's DATABASE_URL. Yields the URL a worker process uses
    (the same server and user, the new database).
    """
    from django.conf import settings
    from django.db import connection

    os.environ["TEST_DATABASE_NAME"] = name
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = name
    main_database = settings.DATABASES["default"]["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    db = connection.settings_dict
    url = (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}"
        f"/{db['NAME']}"
    )
    try:
        yield url
    finally:
        connection.creation.destroy_test_db(main_database, verbosity=0)
