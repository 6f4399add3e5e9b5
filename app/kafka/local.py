"""Runs a real Apache Kafka (KRaft, combined broker+controller) on loopback with the machine's Java."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from app.kafka.broker_config import (
    NodeSpec,
    local_nodes,
    log4j_properties,
    render_server_properties,
)
from app.kafka.jars import classpath, ensure_jars
from app.kafka.prerequisites import java_executable
from app.store.private import ensure_private_dir

STATE_FILE = "cluster.json"


@dataclass
class ClusterState:
    cluster_id: str
    bootstrap: str
    nodes: list[dict]  # node_id, pid, broker_port, controller_port, dir

    @property
    def pids(self) -> list[int]:
        return [n["pid"] for n in self.nodes]


class KafkaStartError(RuntimeError):
    """The local broker did not come up; the message points at its log."""


def cluster_dir(data_dir: Path) -> Path:
    return data_dir / "kafka"


def read_state(data_dir: Path) -> ClusterState | None:
    path = cluster_dir(data_dir) / STATE_FILE
    if not path.exists():
        return None
    return ClusterState(**json.loads(path.read_text()))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); it is not a running broker.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _java_command(
    java: str,
    cache_dir: Path,
    main: str,
    *args: str,
    log_dir: Path | None = None,
    heap: str = "512m",
) -> list[str]:
    cmd = [
        java,
        f"-Xmx{heap}",
        f"-Xms{heap}" if heap != "512m" else "-Xms256m",
        "-XX:+UseG1GC",
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
    ]
    if log_dir is not None:
        cmd += [
            f"-Dlog4j2.configurationFile={log_dir / 'log4j2.properties'}",
            f"-Dinbound.kafka.log.dir={log_dir}",
        ]
    return cmd + ["-cp", classpath(cache_dir), main, *args]


def _write_node_files(root: Path, node: NodeSpec, nodes: list[NodeSpec]) -> Path:
    node_dir = root / f"node{node.node_id}"
    node_dir.mkdir(parents=True, exist_ok=True)
    (node_dir / "server.properties").write_text(render_server_properties(node, nodes))
    (node_dir / "log4j2.properties").write_text(log4j_properties())
    return node_dir


def format_storage(
    java: str, cache_dir: Path, node_dir: Path, cluster_id: str, *extra: str
) -> None:
    """Format the node's KRaft storage once; ``extra`` are more StorageTool arguments (the
    secured runner's ``--add-scram`` users)."""
    if (node_dir / "data" / "meta.properties").exists():
        return
    cmd = _java_command(
        java,
        cache_dir,
        "kafka.tools.StorageTool",
        "format",
        "-t",
        cluster_id,
        "-c",
        str(node_dir / "server.properties"),
        "--ignore-formatted",
        *extra,
        log_dir=node_dir,
    )
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise KafkaStartError(f"formatting KRaft storage failed:\n{result.stdout}{result.stderr}")


def launch_node(java: str, cache_dir: Path, node_dir: Path) -> int:
    """Start one broker JVM on the node's server.properties; its pid."""
    with open(node_dir / "stdout.log", "ab") as out:
        proc = subprocess.Popen(
            _java_command(
                java,
                cache_dir,
                "kafka.Kafka",
                str(node_dir / "server.properties"),
                log_dir=node_dir,
            ),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal must not reach the JVM directly
        )
    return proc.pid


async def wait_until_answers(bootstrap: str, expected_brokers: int, timeout: float = 90.0) -> None:
    """Wait until a real client sees every broker of the cluster in Metadata."""
    from aiokafka.admin import AIOKafkaAdminClient

    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    while time.monotonic() < deadline and not port_open(host, int(port)):
        await asyncio.sleep(0.2)
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            info = await admin.describe_cluster()
            if (
                len(info.get("brokers", [])) >= expected_brokers
                and info.get("controller_id", -1) >= 0
            ):
                return
        except Exception as exc:  # noqa: BLE001 - broker still starting; keep polling
            last_error = exc
        finally:
            await admin.close()
        await asyncio.sleep(0.3)
    raise KafkaStartError(f"Kafka at {bootstrap} did not answer in {timeout:.0f}s: {last_error}")


def start(
    data_dir: Path, cache_dir: Path, *, base_port: int = 9092, nodes: int = 1, timeout: float = 90.0
) -> ClusterState:
    """Start (or find running) a local cluster; returns its state with the bootstrap address."""
    state = read_state(data_dir)
    if state and all(pid_alive(p) for p in state.pids):
        return state
    if state:
        stop(data_dir)
    java = java_executable()
    ensure_jars(cache_dir)
    root = cluster_dir(data_dir)
    ensure_private_dir(root)  # the data directory (and the broker's logs) 0700
    id_file = root / "cluster-id"
    specs = local_nodes(base_port, nodes, str(root))
    previous = id_file.read_text().strip() if id_file.exists() else ""
    if previous.startswith("-"):
        previous = ""  # written by an older version; the storage tool cannot take it
    if previous and len(list(root.glob("node*/data/meta.properties"))) != nodes:
        previous = ""  # a different cluster size: start from clean storage
        for old in root.glob("node*"):
            subprocess.run(["rm", "-rf", str(old)], check=True)
    cluster_id = previous or _random_cluster_id()
    id_file.write_text(cluster_id)
    for spec in specs:
        busy = [p for p in (spec.broker_port, spec.controller_port) if port_open("127.0.0.1", p)]
        if busy:
            raise KafkaStartError(
                f"port {busy[0]} is already in use; stop what holds it or set INBOUND_KAFKA_PORT"
            )
    node_states = []
    for spec in specs:
        node_dir = _write_node_files(root, spec, specs)
        format_storage(java, cache_dir, node_dir, cluster_id)
        node_states.append(
            {
                "node_id": spec.node_id,
                "pid": launch_node(java, cache_dir, node_dir),
                "broker_port": spec.broker_port,
                "controller_port": spec.controller_port,
                "dir": str(node_dir),
            }
        )
    bootstrap = ",".join(f"127.0.0.1:{s.broker_port}" for s in specs)
    state = ClusterState(cluster_id=cluster_id, bootstrap=bootstrap, nodes=node_states)
    (root / STATE_FILE).write_text(json.dumps(asdict(state), indent=2))
    try:
        asyncio.run(wait_until_answers(bootstrap, nodes, timeout))
    except KafkaStartError as exc:
        logs = ", ".join(str(Path(n["dir"]) / "server.log") for n in node_states)
        stop(data_dir)
        raise KafkaStartError(f"{exc}. Broker logs: {logs}") from None
    return state


def _random_cluster_id() -> str:
    import base64

    # Kafka's storage tool would read an id starting with "-" as an option (Kafka's own
    # generator avoids those too).
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def stop_node(pid: int, timeout: float = 30.0) -> None:
    if not pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def stop(data_dir: Path) -> bool:
    """Stop the local cluster; True when something was running."""
    state = read_state(data_dir)
    if not state:
        return False
    was_running = any(pid_alive(p) for p in state.pids)
    for pid in state.pids:
        if pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
    for pid in state.pids:
        stop_node(pid)
    (cluster_dir(data_dir) / STATE_FILE).unlink(missing_ok=True)
    return was_running


def status(data_dir: Path) -> dict:
    state = read_state(data_dir)
    if not state:
        return {"running": False, "nodes": []}
    nodes = [
        {**n, "alive": pid_alive(n["pid"]), "answers": port_open("127.0.0.1", n["broker_port"])}
        for n in state.nodes
    ]
    return {
        "running": all(n["alive"] and n["answers"] for n in nodes),
        "bootstrap": state.bootstrap,
        "cluster_id": state.cluster_id,
        "nodes": nodes,
    }


def restart_node(data_dir: Path, node_id: int, cache_dir: Path, timeout: float = 90.0) -> dict:
    """Start one stopped node of a running cluster again from its saved configuration.

    For fault tests: a node killed on purpose rejoins with its own storage, and the state file
    records its new pid, so ``stop`` still ends the whole cluster.
    """
    state = read_state(data_dir)
    if state is None:
        raise KafkaStartError(f"no local cluster in {data_dir}")
    node = next((n for n in state.nodes if n["node_id"] == node_id), None)
    if node is None:
        raise KafkaStartError(f"the local cluster has no node {node_id}")
    if pid_alive(node["pid"]):
        return node
    node_dir = Path(node["dir"])
    with open(node_dir / "stdout.log", "ab") as out:
        proc = subprocess.Popen(
            _java_command(
                java_executable(),
                cache_dir,
                "kafka.Kafka",
                str(node_dir / "server.properties"),
                log_dir=node_dir,
            ),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    node["pid"] = proc.pid
    (cluster_dir(data_dir) / STATE_FILE).write_text(json.dumps(asdict(state), indent=2))
    # Within the broker session timeout the others still list the killed node, so the
    # cluster answering is not enough: its own listener must be open again.
    deadline = time.monotonic() + timeout
    while not port_open("127.0.0.1", node["broker_port"]):
        if time.monotonic() > deadline or not pid_alive(proc.pid):
            raise KafkaStartError(
                f"node {node_id} did not come back; see {node_dir / 'server.log'}"
            )
        time.sleep(0.2)
    try:
        asyncio.run(wait_until_answers(state.bootstrap, len(state.nodes), timeout))
    except KafkaStartError as exc:
        raise KafkaStartError(f"{exc}. Broker log: {node_dir / 'server.log'}") from None
    return node
