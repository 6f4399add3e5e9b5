"""What the gateway benchmarks share: a broker, a project and ``inbound gateway`` to run against."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.migrate import upgrade
from app.store.projects import create_project
from app.tls.dev_certs import make_dev_certs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


@dataclass(frozen=True)
class BenchGateway:
    bootstrap: str  # the backend broker
    project_id: str
    secret: str  # the project's write key
    certs: dict[str, str]
    port: int  # TLS listener
    plain_port: int | None
    process: subprocess.Popen


@contextmanager
def running_gateway(
    bootstrap: str | None, project: str, *, plain: bool = False, log_level: str = "WARNING"
) -> Iterator[BenchGateway]:
    """A fresh SQLite database with one project and ``inbound gateway`` as a subprocess (dev
    TLS certificates, optionally a plaintext listener), in front of ``bootstrap`` or a local
    broker started here; all stopped on exit."""
    tmp = Path(tempfile.mkdtemp(prefix=f"inbound-{project}-"))
    started_kafka = False
    gateway: subprocess.Popen | None = None
    try:
        if not bootstrap:
            from app.kafka import local
            from tests.support.ports import free_kafka_base

            state = local.start(
                tmp / "kafka", Settings().cache_dir, base_port=free_kafka_base(1), nodes=1
            )
            bootstrap, started_kafka = state.bootstrap, True
        db = f"sqlite:///{tmp / 'bench.db'}"
        upgrade(db)
        with session_scope(engine_for(db)) as session:
            created = create_project(session, project)
        certs = make_dev_certs(tmp / "certs")
        port = free_port()
        plain_port = free_port() if plain else None
        env = {
            **os.environ,
            "INBOUND_DATABASE_URL": db,
            "INBOUND_KAFKA_BOOTSTRAP": bootstrap,
            "INBOUND_DATA_DIR": str(tmp / "data"),
            "INBOUND_GATEWAY_PORT": str(port),
            "INBOUND_GATEWAY_TLS_CERT": certs["server_cert"],
            "INBOUND_GATEWAY_TLS_KEY": certs["server_key"],
            "INBOUND_LOG_LEVEL": log_level,
        }
        if plain_port is not None:
            env["INBOUND_GATEWAY_PLAIN_PORT"] = str(plain_port)
        gateway = subprocess.Popen([sys.executable, "-m", "app.cli.main", "gateway"], env=env)
        wait_port(port)
        if plain_port is not None:
            wait_port(plain_port)
        yield BenchGateway(
            bootstrap=bootstrap,
            project_id=created["project_id"],
            secret=created["write_key"],
            certs=certs,
            port=port,
            plain_port=plain_port,
            process=gateway,
        )
    finally:
        if gateway is not None:
            gateway.send_signal(signal.SIGTERM)
            try:
                gateway.wait(15)
            except subprocess.TimeoutExpired:
                gateway.kill()
        if started_kafka:
            from app.kafka import local

            local.stop(tmp / "kafka")
