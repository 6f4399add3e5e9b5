"""The local Apache Kafka is real: real clients produce and consume, three nodes replicate."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from app.kafka import local
from app.settings import Settings
from tests.support.ports import free_kafka_base


def test_kcat_produces_and_consumes_on_loopback(kafka_bootstrap: str) -> None:
    topic = f"kcat-{uuid.uuid4().hex[:8]}"
    lines = [json.dumps({"n": i}) for i in range(5)]
    subprocess.run(
        ["kcat", "-b", kafka_bootstrap, "-P", "-t", topic],
        input="\n".join(lines) + "\n",
        text=True,
        check=True,
        timeout=30,
    )
    out = subprocess.run(
        ["kcat", "-b", kafka_bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    # The topic has several partitions: order holds per partition, not across them.
    assert sorted(out.splitlines()) == sorted(lines)


def test_broker_accepts_the_seeds_record_size(kafka_bootstrap: str) -> None:
    from aiokafka import AIOKafkaProducer

    async def produce() -> int:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, max_request_size=1_100_000)
        await producer.start()
        try:
            md = await producer.send_and_wait(f"big-{uuid.uuid4().hex[:6]}", b"x" * 1_040_000)
            return md.offset
        finally:
            await producer.stop()

    assert asyncio.run(produce()) == 0


def test_cli_start_status_stop(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "INBOUND_DATA_DIR": str(tmp_path),
        "INBOUND_KAFKA_PORT": str(free_kafka_base()),
    }

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "app.cli.main", "kafka", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )

    try:
        started = cli("start")
        assert started.returncode == 0, started.stderr
        bootstrap = started.stdout.strip()
        assert bootstrap.startswith("127.0.0.1:")
        status = cli("status")
        assert status.returncode == 0
        info = json.loads(status.stdout)
        assert info["running"] and info["bootstrap"] == bootstrap
        # Logs go to a file, not the terminal.
        assert (tmp_path / "kafka" / "node1" / "server.log").stat().st_size > 0
        pid = info["nodes"][0]["pid"]
    finally:
        stopped = cli("stop")
    assert stopped.stdout.strip() == "stopped"
    assert not local.pid_alive(pid)
    assert cli("status").returncode == 1


def test_missing_java_is_named_with_its_install_line(tmp_path: Path) -> None:
    env = {**os.environ, "INBOUND_DATA_DIR": str(tmp_path), "PATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli.main", "kafka", "start"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Java 17+" in result.stderr and "apt-get install" in result.stderr


@pytest.mark.slow
def test_three_nodes_replicate_with_three_in_sync_replicas(tmp_path: Path) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    state = local.start(tmp_path, Settings().cache_dir, base_port=free_kafka_base(3), nodes=3)
    try:
        assert len(state.bootstrap.split(",")) == 3

        async def check() -> list:
            admin = AIOKafkaAdminClient(bootstrap_servers=state.bootstrap)
            await admin.start()
            try:
                await admin.create_topics([NewTopic("rf3", num_partitions=2, replication_factor=3)])
                for _ in range(50):
                    described = await admin.describe_topics(["rf3"])
                    parts = described[0]["partitions"]
                    if parts and all(len(p["isr"]) == 3 for p in parts):
                        break
                    await asyncio.sleep(0.2)
                configs = await admin.describe_configs(
                    [ConfigResource(ConfigResourceType.BROKER, "1")]
                )
                return [parts, configs]
            finally:
                await admin.close()

        parts, configs = asyncio.run(check())
        assert len(parts) == 2
        for p in parts:
            assert sorted(p["replicas"]) == [1, 2, 3]
            assert sorted(p["isr"]) == [1, 2, 3]
        entries = {e[0]: e[1] for e in configs[0].resources[0][4]}
        assert entries["min.insync.replicas"] == "2"
        assert entries["message.max.bytes"] == "1048588"
    finally:
        local.stop(tmp_path)
