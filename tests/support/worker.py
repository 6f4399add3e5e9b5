"""Runs `inbound worker` as a real subprocess against the test broker and database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.ports import free_port


class WorkerProcess:
    def __init__(self, database_url: str, bootstrap: str, data_dir: Path, **env: str) -> None:
        self.metrics_port = free_port()
        self.log_path = data_dir / f"worker-{self.metrics_port}.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "INBOUND_DATABASE_URL": database_url,
            "INBOUND_KAFKA_BOOTSTRAP": bootstrap,
            "INBOUND_DATA_DIR": str(data_dir),
            "INBOUND_WORKER_METRICS_PORT": str(self.metrics_port),
            "INBOUND_WORKER_METADATA_MAX_AGE_MS": "1000",
            **env,
        }
        self.proc: subprocess.Popen | None = None

    def start(self, wait_healthy: bool = True) -> WorkerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its life
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli.main", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        if wait_healthy:
            wait_until(
                lambda: self.health() is not None, 60, f"worker did not start: {self.tail()}"
            )
        return self

    def health(self) -> dict | None:
        try:
            resp = httpx.get(f"http://127.0.0.1:{self.metrics_port}/healthz", timeout=1)
        except httpx.HTTPError:
            return None
        return resp.json()

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_until(check: Callable[[], object], timeout: float, message: str = "timed out") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message if isinstance(message, str) else message())
        time.sleep(0.1)
