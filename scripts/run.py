"""`make run`: the whole service in the foreground, offline, on embedded defaults.

Starts the Salesforce emulator, the web server and a real Celery worker (with beat for the
periodic sweeper), after migrating and loading the demo data. Ctrl-C stops everything it started.
With no DATABASE_URL / REDIS_URL in the environment it uses SQLite and kombu's filesystem broker,
so nothing has to be installed; tasks still run in the worker process, never in the web request.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
PY = sys.executable

WEB_PORT = int(os.environ.get("WEB_PORT", "8000"))
LOGIN_PORT = int(os.environ.get("EMULATOR_LOGIN_PORT", "8001"))
SANDBOX_PORT = int(os.environ.get("EMULATOR_SANDBOX_PORT", "8002"))
INSTANCE_PORT = int(os.environ.get("EMULATOR_INSTANCE_PORT", "8443"))
CERTS = VAR / "emulator-certs"


def _wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"A process exited early (code {process.returncode}); see above.")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"Nothing listens on port {port} after {seconds:.0f}s.")


def _busy(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def main() -> int:
    for port in (WEB_PORT, LOGIN_PORT, SANDBOX_PORT, INSTANCE_PORT):
        if _busy(port):
            print(f"Port {port} is already in use: is another `make run` running?", file=sys.stderr)
            return 1
    VAR.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "DEBUG": env.get("DEBUG", "true"),
            "PYTHONUNBUFFERED": "1",
            "SALESFORCE_LOGIN_URL": f"http://127.0.0.1:{LOGIN_PORT}",
            "SALESFORCE_SANDBOX_LOGIN_URL": f"http://127.0.0.1:{SANDBOX_PORT}",
            "SALESFORCE_CA_BUNDLE": str(CERTS / "emulator-ca.pem"),
            "SALESFORCE_EXTRA_LOGIN_HOSTS": f"127.0.0.1:{LOGIN_PORT},127.0.0.1:{SANDBOX_PORT}",
        }
    )
    manage = [PY, "manage.py"]

    processes: list[subprocess.Popen[bytes]] = []

    def start(args: list[str]) -> subprocess.Popen[bytes]:
        # Own process group, so Ctrl-C reaches each one once, through us, in order.
        process = subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True)
        processes.append(process)
        return process

    def stop_all(*_: object) -> None:
        for process in reversed(processes):
            if process.poll() is None:
                # The leader only: Celery's main process stops its own pool (a signal to the
                # whole group would kill the pool first and log each child as an error).
                process.terminate()
        deadline = time.monotonic() + 15
        for process in processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # Explicit handlers: a parent shell may have started us with SIGINT ignored.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        emulator = start(
            [
                PY, "-m", "salesforce_emulator", "--seed", "demo", "--certs-dir", str(CERTS),
                "--login-port", str(LOGIN_PORT), "--sandbox-port", str(SANDBOX_PORT),
                "--instance-port", str(INSTANCE_PORT),
            ]
        )  # fmt: skip
        _wait_for_port(INSTANCE_PORT, emulator)
        # After the emulator: it writes the CA file the settings check looks for.
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        subprocess.run([*manage, "load_demo_data"], cwd=ROOT, env=env, check=True)
        web = start([*manage, "runserver", f"127.0.0.1:{WEB_PORT}", "--noreload"])
        start(
            [
                PY, "-m", "celery", "-A", "autorespond", "worker", "--beat", "-l", "info",
                "-c", "2", "--schedule", str(VAR / "celerybeat-schedule"),
            ]
        )  # fmt: skip
        _wait_for_port(WEB_PORT, web)
        print(
            "\n"
            f"  Auto-Respond Lead Sync  http://127.0.0.1:{WEB_PORT}/accounts/login/\n"
            f"  Salesforce emulator     http://127.0.0.1:{LOGIN_PORT}/_emulator/ui\n"
            f"  Ingestion API           http://127.0.0.1:{WEB_PORT}/api/v1/docs\n"
            "  (demo logins above; Ctrl-C stops everything)\n",
            flush=True,
        )
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        print("A process stopped; stopping the others.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping…", file=sys.stderr)
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    raise SystemExit(main())
