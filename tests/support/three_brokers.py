"""A real local 3-node KRaft cluster for fault tests: who leads what, kill one node, restart it."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.kafka import local


@dataclass
class ThreeBrokers:
    data_dir: Path
    cache_dir: Path
    bootstrap: str

    @classmethod
    def start(cls, data_dir: Path, cache_dir: Path, base_port: int) -> ThreeBrokers:
        # A 3-node cluster takes longer than one broker on a small, busy machine.
        state = local.start(data_dir, cache_dir, base_port=base_port, nodes=3, timeout=180)
        return cls(data_dir, cache_dir, state.bootstrap)

    def stop(self) -> None:
        local.stop(self.data_dir)

    def nodes(self) -> list[dict]:
        state = local.read_state(self.data_dir)
        assert state is not None, "the cluster's state file is gone"
        return state.nodes

    def address(self, node_id: int) -> str:
        node = next(n for n in self.nodes() if n["node_id"] == node_id)
        return f"127.0.0.1:{node['broker_port']}"

    def kill(self, node_id: int) -> None:
        """SIGKILL one node: no shutdown, no leadership hand-over."""
        node = next(n for n in self.nodes() if n["node_id"] == node_id)
        os.kill(node["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while local.pid_alive(node["pid"]):
            assert time.monotonic() < deadline, f"node {node_id} outlived SIGKILL"
            time.sleep(0.05)

    def restart(self, node_id: int) -> None:
        local.restart_node(self.data_dir, node_id, self.cache_dir, timeout=180)

    def bootstrap_without(self, node_id: int) -> str:
        return ",".join(self.address(n["node_id"]) for n in self.nodes() if n["node_id"] != node_id)


async def _admin(bootstrap: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    return admin


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    """Create a topic replicated to all three nodes."""
    admin = await _admin(bootstrap)
    try:
        await admin.create_topics([NewTopic(name, partitions, replication_factor=3)])
    finally:
        await admin.close()


async def partition_state(bootstrap: str, topic: str) -> dict[int, tuple[int, list[int]]]:
    """partition -> (leader node id, in-sync replicas), from the backend's own metadata."""
    admin = await _admin(bootstrap)
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    (info,) = described
    return {p["partition"]: (p["leader"], sorted(p["isr"])) for p in info["partitions"]}


async def wait_for_partitions(
    bootstrap: str, topic: str, *, leaders_among: set[int], isr_size: int, timeout: float = 120
) -> dict[int, tuple[int, list[int]]]:
    """Poll until every partition has a leader in ``leaders_among`` and ``isr_size`` replicas
    in sync; the last state seen, for the caller's assertion, if the deadline passes."""
    deadline = time.monotonic() + timeout
    state: dict[int, tuple[int, list[int]]] = {}
    while time.monotonic() < deadline:
        try:
            state = await partition_state(bootstrap, topic)
        except Exception:  # noqa: BLE001 - a node may be starting or fenced; poll again
            state = {}
        if state and all(
            leader in leaders_among and len(isr) >= isr_size for leader, isr in state.values()
        ):
            return state
        await asyncio.sleep(0.5)
    return state
