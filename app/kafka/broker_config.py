"""Renders broker configuration from the one template shared by local runs and docker/."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from string import Template


@dataclass(frozen=True)
class NodeSpec:
    node_id: int
    host: str
    broker_port: int
    controller_port: int
    log_dirs: str
    bind_host: str | None = None


def render_server_properties(
    node: NodeSpec,
    nodes: list[NodeSpec],
    *,
    for_tests: bool = True,
) -> str:
    replication = 3 if len(nodes) >= 3 else 1
    template = Template(
        resources.files("app.kafka").joinpath("templates/server.properties.tmpl").read_text()
    )
    return template.substitute(
        node_id=node.node_id,
        voters=",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in nodes),
        bind_host=node.bind_host or node.host,
        advertised_host=node.host,
        broker_port=node.broker_port,
        controller_port=node.controller_port,
        log_dirs=node.log_dirs,
        replication_factor=replication,
        min_isr=2 if replication == 3 else 1,
        num_partitions=3 if for_tests else 6,
        internal_partitions=1 if for_tests else 50,
        rebalance_delay_ms=0 if for_tests else 3000,
    )


def log4j_properties() -> str:
    return resources.files("app.kafka").joinpath("templates/log4j2.properties").read_text()


def local_nodes(base_port: int, count: int, data_dir: str) -> list[NodeSpec]:
    """Ports for a loopback cluster: brokers 100 apart, each controller 1000 above its broker."""
    return [
        NodeSpec(
            node_id=i,
            host="127.0.0.1",
            broker_port=base_port + 100 * (i - 1),
            controller_port=base_port + 100 * (i - 1) + 1000,
            log_dirs=f"{data_dir}/node{i}/data",
        )
        for i in range(1, count + 1)
    ]


def with_overrides(properties: str, overrides: dict[str, str]) -> str:
    """``properties`` with each key of ``overrides`` set: an existing line is replaced in
    place, a new key is appended (the secured runner's listeners on top of the template)."""
    lines, seen = [], set()
    for line in properties.splitlines():
        key = line.split("=", 1)[0].strip()
        if not line.lstrip().startswith("#") and key in overrides:
            lines.append(f"{key}={overrides[key]}")
            seen.add(key)
        else:
            lines.append(line)
    lines += [f"{k}={v}" for k, v in overrides.items() if k not in seen]
    return "\n".join(lines) + "\n"
