"""Fixtures of the operations tests: a private redis-server that a test may flush, kill and
restart (never the shared one other test runs use), and helpers to run processes of our own."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(  # type: ignore[no-untyped-def]
    condition, seconds: float, what: str, log: Path | None = None, every: float = 0.2
):
    """Poll `condition` every `every` seconds; its first truthy value, or AssertionError after
    `seconds` (with the tail of `log`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    tail = f"\n{log.name}:\n{log.read_text(errors='replace')[-6000:]}" if log else ""
    raise AssertionError(f"timed out after {seconds}s waiting for {what}{tail}")


class PrivateRedis:
    """A redis-server of this test only, on a free port, without persistence."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateRedis:
        command = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no",
        ]  # fmt: skip
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: port_open(self.port), 15, "redis-server to listen", self.log_path)
        return self

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, timeout=10
        )
        return result.stdout.strip()

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-conversation, as a crashed host would."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if not shutil.which("redis-server") or not shutil.which("redis-cli"):
        message = "redis-server is not installed (a private one is needed to kill it)"
        if IN_CI:
            pytest.fail(f"{message}: CI must run this test.")
        pytest.skip(message)
    server = PrivateRedis(tmp_path / "redis.log").start()
    yield server
    server.stop()
