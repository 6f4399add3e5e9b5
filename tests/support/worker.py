"""Runs `inbound worker` as a real subprocess against the test broker and database."""

from __future__ import annotations

import asyncio
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

    def log_count(self, text: str) -> int:
        """How many lines of this worker's log (every start of it) contain ``text``."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return 0
        return sum(text in line for line in lines)

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


async def _assignments(
    bootstrap: str, group: str, client: dict
) -> tuple[str, dict[str, set[tuple[str, int]]]]:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

    admin = AIOKafkaAdminClient(**{"bootstrap_servers": bootstrap, **client})
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    [described] = response.groups
    state, members = described[2], described[5]
    out: dict[str, set[tuple[str, int]]] = {}
    for member_id, _client, _host, _meta, raw in members:
        assignment = ConsumerProtocolMemberAssignment.decode(raw) if raw else None
        out[member_id] = (
            {(tp.topic, tp.partition) for tp in assignment.partitions()} if assignment else set()
        )
    return state, out


def group_assignment(bootstrap: str, group: str = "inbound-ingest", **client: object) -> dict:
    """member id -> its (topic, partition)s, once the group is stable (empty otherwise, and
    while the broker has no coordinator for it yet). ``client``: more aiokafka arguments
    (security settings)."""
    from aiokafka.errors import KafkaError

    try:
        state, members = asyncio.run(_assignments(bootstrap, group, client))
    except KafkaError as exc:
        if getattr(exc, "retriable", False):
            return {}
        raise
    return members if state == "Stable" else {}


def isolated_group(bootstrap: str) -> dict[str, str]:
    """Environment for a worker with a consumer group of its own, committed at the end of
    every inbound topic there is now: it sees only what is produced from here on (topics made
    later from their start), never the backlog earlier tests left in the shared default group
    on the session broker. For tests that start their worker before producing."""
    import uuid

    from tests.support.offsets import start_group_at_end

    group = f"inbound-ingest-{uuid.uuid4().hex[:10]}"
    start_group_at_end(bootstrap, group)
    return {"INBOUND_WORKER_GROUP_ID": group}
