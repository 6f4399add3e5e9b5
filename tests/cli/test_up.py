"""`inbound up` brings everything up on embedded defaults and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from app.kafka import local
from tests.support.ports import free_kafka_base, free_port


def test_up_runs_everything_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    api_port = free_port()
    metrics_port = free_port()
    plain_port = free_port()
    env = {
        **os.environ,
        "INBOUND_DATA_DIR": str(tmp_path),
        "INBOUND_KAFKA_PORT": str(free_kafka_base()),
        "INBOUND_API_PORT": str(api_port),
        "INBOUND_GATEWAY_PORT": str(free_port()),
        "INBOUND_GATEWAY_PLAIN_PORT": str(plain_port),
        "INBOUND_WORKER_METRICS_PORT": str(metrics_port),
    }
    env.pop("INBOUND_KAFKA_BOOTSTRAP", None)
    env.pop("INBOUND_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli.main", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True
    )
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(
            "Ctrl-C stops everything" in x for x in lines
        ):
            assert proc.poll() is None, "".join(lines)
            time.sleep(0.2)
        assert any("Ctrl-C stops everything" in x for x in lines), "".join(lines)
        state = local.read_state(tmp_path)
        assert state is not None and local.status(tmp_path)["running"]
        jvm_pids = state.pids
        # Every service is really up: the API and the worker say healthy, the edge accepts
        # connections, the webhook dispatcher logged its start.
        for url in (
            f"http://127.0.0.1:{api_port}/healthz",
            f"http://127.0.0.1:{metrics_port}/healthz",
        ):
            _wait_for(lambda url=url: _status(url) == 200, 60, lines)
        _wait_for(lambda: _accepts(plain_port), 60, lines)
        _wait_for(
            lambda: any("[webhooks]" in x and "dispatcher started" in x for x in lines), 60, lines
        )
        assert (tmp_path / "inbound.db").exists()
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        proc.wait(60)
    output = "".join(lines)
    assert proc.returncode == 0, output
    assert "stopped" in output
    for pid in jvm_pids:
        assert not local.pid_alive(pid), "a Kafka JVM was left behind"


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def _wait_for(condition: Callable[[], bool], seconds: float, lines: list[str]) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "".join(lines)
        time.sleep(0.3)
