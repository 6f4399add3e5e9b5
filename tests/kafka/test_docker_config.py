"""docker/ broker configs come from the same template as the local runner's."""

from __future__ import annotations

from pathlib import Path

import yaml

from app.kafka.broker_config import local_nodes, render_server_properties
from app.kafka.docker_config import DOCKER_KAFKA_DIR, rendered

ROOT = Path(__file__).resolve().parents[2]


def _props(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


def test_committed_docker_configs_are_current() -> None:
    for name, text in rendered().items():
        committed = (DOCKER_KAFKA_DIR / name).read_text()
        assert committed == text, (
            f"docker/kafka/{name} is stale: run python -m app.kafka.docker_config"
        )


def test_docker_and_local_three_node_configs_agree_on_durability() -> None:
    """Only addresses, paths and test-speed knobs may differ between the two."""
    local = local_nodes(9092, 3, "/tmp/x")
    local_props = _props(render_server_properties(local[0], local))
    docker_props = _props(rendered()["node1.properties"])
    may_differ = {
        "controller.quorum.voters",
        "listeners",
        "advertised.listeners",
        "log.dirs",
        "num.partitions",
        "offsets.topic.num.partitions",
        "transaction.state.log.num.partitions",
        "share.coordinator.state.topic.num.partitions",
        "group.initial.rebalance.delay.ms",
    }
    assert local_props.keys() == docker_props.keys()
    for key in local_props.keys() - may_differ:
        assert local_props[key] == docker_props[key], key
    assert docker_props["default.replication.factor"] == "3"
    assert docker_props["min.insync.replicas"] == "2"
    assert docker_props["message.max.bytes"] == "1048588"


def test_compose_runs_the_production_shape() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"kafka1", "kafka2", "kafka3", "postgres", "worker", "api", "gateway"} <= set(services)
    assert services["worker"]["deploy"]["replicas"] == 2
    for i in (1, 2, 3):
        assert services[f"kafka{i}"]["environment"]["KAFKA_NODE_ID"] == str(i)
    assert (ROOT / "docker" / "Dockerfile").read_text().count("FROM ") >= 3


def test_compose_carries_the_backend_security_settings_with_working_defaults() -> None:
    import re

    from app.kafka.client_options import kafka_options
    from app.settings import Settings

    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    env = compose["services"]["worker"]["environment"]
    for name in (
        "INBOUND_KAFKA_SECURITY_PROTOCOL",
        "INBOUND_KAFKA_SASL_MECHANISM",
        "INBOUND_KAFKA_SASL_USERNAME",
        "INBOUND_KAFKA_SASL_PASSWORD",
        "INBOUND_KAFKA_SSL_CAFILE",
    ):
        assert name in env, name
    assert set(env) <= {f"INBOUND_{field.upper()}" for field in Settings.model_fields}
    # What compose passes when none of them is set: ${VAR:-default} resolved to its default.
    resolved = {
        name[len("INBOUND_") :].lower(): re.sub(r"\$\{\w+:-(.*)\}", r"\1", str(value))
        for name, value in env.items()
        if name.startswith("INBOUND_KAFKA_")
    }
    options = kafka_options(Settings(**resolved))
    assert options is not None
    assert options.bootstrap == "kafka1:9092,kafka2:9092,kafka3:9092"
    assert options.aiokafka() == {
        "bootstrap_servers": "kafka1:9092,kafka2:9092,kafka3:9092",
        "security_protocol": "PLAINTEXT",
    }
