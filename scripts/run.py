"""`make run`: the whole service in the foreground, offline, on embedded defaults.

Starts the Salesforce emulator, then migrates and loads the demo data, then runs the web server,
a real Celery worker and Celery beat (the periodic sweeper) as separate processes. With no
DATABASE_URL / REDIS_URL in the environment it uses SQLite and kombu's filesystem broker, so
nothing has to be installed; tasks still run in the worker process, never in the web request.

Supervision: a child that dies is started again after a pause that doubles with each quick death
(1 s up to 30 s; back to 1 s once it has run for a minute), with a log line saying so; the
service keeps running meanwhile. Ctrl-C or SIGTERM stops every child once, in reverse order, and
then kills what is left of each child's process group (Celery's pool processes, for one), so
nothing outlives the launcher.

Environment: WEB_PORT (8000), EMULATOR_LOGIN_PORT (8001), EMULATOR_SANDBOX_PORT (8002),
EMULATOR_INSTANCE_PORT (8443), VAR_DIR (var/: SQLite file, broker folder, certificates, logins).

Hand-written rather than a process manager (honcho, supervisord): none of them restarts a single
child with backoff while also tearing down each child's whole process group, and this is the only
place that needs it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

WEB_PORT = int(os.environ.get("WEB_PORT", "8000"))
LOGIN_PORT = int(os.environ.get("EMULATOR_LOGIN_PORT", "8001"))
SANDBOX_PORT = int(os.environ.get("EMULATOR_SANDBOX_PORT", "8002"))
INSTANCE_PORT = int(os.environ.get("EMULATOR_INSTANCE_PORT", "8443"))
VAR = Path(os.environ.get("VAR_DIR") or ROOT / "var").resolve()
CERTS = VAR / "emulator-certs"

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
STABLE_AFTER_SECONDS = 60.0  # a child that ran this long starts again from the first backoff
STOP_GRACE_SECONDS = 15.0  # how long children get to stop before their groups are killed


def log(message: str) -> None:
    print(f"[run {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Child:
    """One supervised process: its command, and what to say when it is started again."""

    name: str
    args: list[str]
    restart_note: str = ""
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = None
    restarts: int = 0


@dataclass
class Launcher:
    env: dict[str, str]
    children: list[Child] = field(default_factory=list)
    stop_signal: int | None = None
    forced: bool = False

    # --- signals --------------------------------------------------------------------------
    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        """Ask the main loop to stop (no exception, so no traceback wherever we were). A second
        signal while stopping kills the children's groups at once."""
        if self.stop_signal is not None:
            self.forced = True
        self.stop_signal = signum

    @property
    def stopping(self) -> bool:
        return self.stop_signal is not None

    # --- processes ------------------------------------------------------------------------
    def spawn(self, args: list[str]) -> subprocess.Popen[bytes]:
        # Own session and process group: a terminal's Ctrl-C reaches only us, and we pass it on
        # once to each child; and the group lets us kill a child's own children at the end.
        return subprocess.Popen(args, cwd=ROOT, env=self.env, start_new_session=True)

    def start(self, child: Child) -> None:
        child.process = self.spawn(child.args)
        child.started_at = time.monotonic()
        child.restart_at = None

    def run_step(self, args: list[str]) -> bool:
        """Run a setup command to its end; False if it failed or we were asked to stop."""
        process = self.spawn(args)
        while process.poll() is None:
            if self.stopping:
                self.stop_processes([process])
                return False
            time.sleep(0.1)
        if process.returncode != 0:
            log(f"{' '.join(args[1:3])} failed (exit code {process.returncode}); see above.")
        return process.returncode == 0

    def wait_for_port(self, port: int, child: Child, seconds: float = 60) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.stopping:
            assert child.process is not None
            if child.process.poll() is not None:
                log(f"{child.name} exited while starting (code {child.process.returncode}).")
                return False
            if port_busy(port):
                return True
            time.sleep(0.2)
        if not self.stopping:
            log(f"Nothing listens on port {port} after {seconds:.0f}s ({child.name}).")
        return False

    def supervise_once(self) -> None:
        """Notice dead children and start them again when their backoff is over."""
        now = time.monotonic()
        for child in self.children:
            process = child.process
            if process is None or self.stopping:
                continue
            if child.restart_at is None and process.poll() is not None:
                kill_group(process.pid)  # whatever the dead child left behind (its pool)
                uptime = now - child.started_at
                if uptime >= STABLE_AFTER_SECONDS:
                    child.quick_deaths = 0
                delay = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2**child.quick_deaths)
                child.quick_deaths += 1
                child.restart_at = now + delay
                log(
                    f"{child.name} exited with code {process.returncode} after {uptime:.0f}s; "
                    f"starting it again in {delay:.0f}s."
                )
            elif child.restart_at is not None and now >= child.restart_at:
                self.start(child)
                child.restarts += 1
                assert child.process is not None
                log(f"{child.name} started again (pid {child.process.pid}).{child.restart_note}")

    def stop_processes(self, processes: list[subprocess.Popen[bytes]]) -> None:
        """SIGTERM each leader once, newest first, wait, then kill every group entirely."""
        for process in reversed(processes):
            if process.poll() is None and not self.forced:
                # The leader only: Celery's main process stops its own pool (a signal to the
                # whole group would kill the pool first and log each child as an error).
                process.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in processes:
            while process.poll() is None and time.monotonic() < deadline and not self.forced:
                time.sleep(0.1)
            if process.poll() is None:
                log(f"pid {process.pid} did not stop in time; killing its process group.")
            kill_group(process.pid)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                log(f"pid {process.pid} did not exit after SIGKILL.")

    def stop_all(self) -> None:
        self.stop_processes([c.process for c in self.children if c.process is not None])


def port_busy(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def kill_group(pgid: int) -> None:
    """SIGKILL a child's process group (the child is its leader; see Launcher.spawn)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def launcher_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            # Production behaviour on a demo: no debug pages (they list every URL and show
            # tracebacks). Plain-http loopback needs cookies without the Secure flag, and the
            # owner's "connection broken" email goes to this console.
            "DEBUG": env.get("DEBUG", "false"),
            "SECURE_COOKIES": env.get("SECURE_COOKIES", "false"),
            "EMAIL_BACKEND": env.get(
                "EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
            ),
            "PYTHONUNBUFFERED": "1",
            "VAR_DIR": str(VAR),
            "SITE_URL": env.get("SITE_URL", f"http://127.0.0.1:{WEB_PORT}"),
            "SALESFORCE_LOGIN_URL": f"http://127.0.0.1:{LOGIN_PORT}",
            "SALESFORCE_SANDBOX_LOGIN_URL": f"http://127.0.0.1:{SANDBOX_PORT}",
            "SALESFORCE_CA_BUNDLE": str(CERTS / "emulator-ca.pem"),
            "SALESFORCE_EXTRA_LOGIN_HOSTS": f"127.0.0.1:{LOGIN_PORT},127.0.0.1:{SANDBOX_PORT}",
        }
    )
    return env


def main() -> int:
    for port in (WEB_PORT, LOGIN_PORT, SANDBOX_PORT, INSTANCE_PORT):
        if port_busy(port):
            print(f"Port {port} is already in use: is another `make run` running?", file=sys.stderr)
            return 1
    VAR.mkdir(parents=True, exist_ok=True)
    launcher = Launcher(launcher_environment())
    # Explicit handlers: a parent shell may have started us with SIGINT ignored.
    signal.signal(signal.SIGINT, launcher.on_signal)
    signal.signal(signal.SIGTERM, launcher.on_signal)
    manage = [PY, "manage.py"]
    celery = [PY, "-m", "celery", "-A", "autorespond"]

    emulator_args = [
        PY, "-m", "salesforce_emulator", "--seed", "demo", "--certs-dir", str(CERTS),
        "--login-port", str(LOGIN_PORT), "--sandbox-port", str(SANDBOX_PORT),
        "--instance-port", str(INSTANCE_PORT), "--web-port", str(WEB_PORT),
    ]  # fmt: skip
    emulator = Child(
        "Salesforce emulator",
        emulator_args,
        restart_note=(
            " It keeps its orgs in memory: earlier connections now show Needs reconnect;"
            " click Connect again."
        ),
    )
    # gunicorn, as in production, rather than runserver: runserver's listen backlog of 10 resets
    # connections when dozens of requests arrive at once, and it does not decode chunked bodies.
    # The access log leaves out query strings (OAuth's callback carries the one-time code there).
    web = Child(
        "web server",
        [
            PY, "-m", "gunicorn", "autorespond.wsgi:application",
            "--bind", f"127.0.0.1:{WEB_PORT}", "--workers", "2", "--threads", "4",
            "--graceful-timeout", "5", "--access-logfile", "-",
            "--access-logformat", '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms',
        ],
    )  # fmt: skip
    worker = Child("Celery worker", [*celery, "worker", "-l", "info", "-c", "2"])
    beat = Child(
        "Celery beat",
        [*celery, "beat", "-l", "info", "--schedule", str(VAR / "celerybeat-schedule")],
    )
    try:
        launcher.children.append(emulator)
        launcher.start(emulator)
        # After the emulator: it writes the CA file the settings check looks for.
        if not launcher.wait_for_port(INSTANCE_PORT, emulator):
            return 0 if launcher.stopping else 1
        if not launcher.run_step([*manage, "migrate", "--noinput", "-v", "0"]):
            return 0 if launcher.stopping else 1
        if not launcher.run_step([*manage, "load_demo_data"]):
            return 0 if launcher.stopping else 1
        # DEBUG is off, so the web server serves the collected static files (WhiteNoise).
        if not launcher.run_step([*manage, "collectstatic", "--noinput", "-v", "0"]):
            return 0 if launcher.stopping else 1
        for child in (web, worker, beat):
            launcher.children.append(child)
            launcher.start(child)
        if not launcher.wait_for_port(WEB_PORT, web):
            return 0 if launcher.stopping else 1
        print(
            "\n"
            f"  Auto-Respond Lead Sync  http://127.0.0.1:{WEB_PORT}/accounts/login/\n"
            f"  Salesforce emulator     http://127.0.0.1:{LOGIN_PORT}/_emulator/ui\n"
            f"  Ingestion API           http://127.0.0.1:{WEB_PORT}/api/v1/docs\n"
            "  (demo logins above; Ctrl-C stops everything)\n",
            flush=True,
        )
        parent = os.getppid()
        while not launcher.stopping:
            launcher.supervise_once()
            if os.getppid() != parent:
                # Our parent (make, a shell) died without passing a signal on: stop as if it had.
                launcher.stop_signal = signal.SIGHUP
            time.sleep(0.2)
        return 0
    finally:
        if launcher.stopping:
            log(f"{signal.Signals(launcher.stop_signal).name} received: stopping everything…")  # type: ignore[arg-type]
        launcher.stop_all()
        if launcher.stopping:
            log("Stopped.")


if __name__ == "__main__":
    raise SystemExit(main())
