"""Writes docker/kafka/node{1,2,3}.properties from the template the local runner uses.

Run `python -m app.kafka.docker_config` after changing the template; a test fails when the
committed files differ from what the template renders.
"""

from __future__ import annotations

import sys
from pathlib import Path

from app.kafka.broker_config import NodeSpec, render_server_properties

DOCKER_KAFKA_DIR = Path(__file__).resolve().parents[2] / "docker" / "kafka"


def docker_nodes() -> list[NodeSpec]:
    return [
        NodeSpec(
            node_id=i,
            host=f"kafka{i}",
            broker_port=9092,
            controller_port=9094,
            log_dirs="/var/lib/kafka/data",
            bind_host="0.0.0.0",
        )
        for i in (1, 2, 3)
    ]


def rendered() -> dict[str, str]:
    nodes = docker_nodes()
    return {
        f"node{n.node_id}.properties": render_server_properties(n, nodes, for_tests=False)
        for n in nodes
    }


def main(out_dir: Path = DOCKER_KAFKA_DIR) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (out_dir / name).write_text(text)
        print(out_dir / name)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DOCKER_KAFKA_DIR)
