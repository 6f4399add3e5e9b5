"""Kafka edge benchmark: produce through the gateway vs directly to the broker, side by side.

    .venv/bin/python -m bench.gateway_bench                   # starts a local broker
    .venv/bin/python -m bench.gateway_bench --bootstrap 127.0.0.1:9092 --messages 300000

1. Starts a local Kafka broker (unless ``--bootstrap``), a fresh SQLite database with one
   project, and ``inbound gateway`` as a subprocess (TLS with dev certificates).
2. **Throughput**: kcat (librdkafka, the same client and the same ``--messages`` JSON
   records of ~``--size`` bytes, acks=all) produces once directly to the backend topic and
   once through the gateway (SASL_SSL) to the customer topic; records/s = messages / kcat's
   wall time. The gateway's figure is also shown as a share of the direct one.
3. **Latency**: aiokafka sends one record at a time (acks=all, send_and_wait) at ``--rate``
   records/s for ``--duration`` s, directly and through the gateway; p50/p99 of each and the
   added p99.

The broker, the gateway and the clients share the machine: compare the two columns of one
run, not absolute capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.contract.topics import inbound_topic
from app.gateway.certs import make_dev_certs
from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.migrate import upgrade
from app.store.projects import create_project


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, timeout: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


def _kcat_produce(args: list[str], topic: str, payload: bytes) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        ["kcat", *args, "-P", "-t", topic, "-X", "acks=all", "-X", "linger.ms=5"],
        input=payload,
        capture_output=True,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(result.stderr.decode()[-2000:])
    return elapsed


async def _latencies(options: dict, topic: str, rate: float, duration: float) -> list[float]:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(acks="all", **options)
    await producer.start()
    out: list[float] = []
    try:
        await producer.send_and_wait(topic, b'{"warmup": true}')
        interval = 1 / rate
        end = time.perf_counter() + duration
        next_at = time.perf_counter()
        while time.perf_counter() < end:
            started = time.perf_counter()
            await producer.send_and_wait(topic, b'{"latency": true, "pad": "' + b"x" * 200 + b'"}')
            out.append((time.perf_counter() - started) * 1000)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    finally:
        await producer.stop()
    return out


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=250)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--duration", type=float, default=10)
    ns = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="inbound-gwbench-"))
    settings = Settings()
    started_kafka = False
    gateway: subprocess.Popen | None = None
    try:
        bootstrap = ns.bootstrap
        if not bootstrap:
            from app.kafka import local
            from tests.support.ports import free_kafka_base

            state = local.start(
                tmp / "kafka", settings.cache_dir, base_port=free_kafka_base(1), nodes=1
            )
            bootstrap, started_kafka = state.bootstrap, True
        db = f"sqlite:///{tmp / 'bench.db'}"
        upgrade(db)
        with session_scope(engine_for(db)) as session:
            project = create_project(session, "bench")
        pid, secret = project["project_id"], project["write_key"]
        certs = make_dev_certs(tmp / "certs")
        port = _free_port()
        env = {
            **os.environ,
            "INBOUND_DATABASE_URL": db,
            "INBOUND_KAFKA_BOOTSTRAP": bootstrap,
            "INBOUND_DATA_DIR": str(tmp / "data"),
            "INBOUND_GATEWAY_PORT": str(port),
            "INBOUND_GATEWAY_TLS_CERT": certs["server_cert"],
            "INBOUND_GATEWAY_TLS_KEY": certs["server_key"],
            "INBOUND_LOG_LEVEL": "WARNING",
        }
        gateway = subprocess.Popen([sys.executable, "-m", "app.cli.main", "gateway"], env=env)
        _wait_port(port)

        body = b'{"event": "purchase", "pad": "' + b"x" * max(0, ns.size - 32) + b'"}\n'
        payload = body * ns.messages
        direct_args = ["-b", bootstrap]
        edge_args = [
            "-b", f"127.0.0.1:{port}",
            "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=PLAIN",
            "-X", f"sasl.username={pid}", "-X", f"sasl.password={secret}",
            "-X", f"ssl.ca.location={certs['ca_cert']}",
        ]  # fmt: skip
        # Warm both paths (topic creation, connections) before timing.
        _kcat_produce(direct_args, inbound_topic(pid, "direct"), body)
        _kcat_produce(edge_args, "edge", body)
        t_direct = _kcat_produce(direct_args, inbound_topic(pid, "direct"), payload)
        t_edge = _kcat_produce(edge_args, "edge", payload)
        r_direct, r_edge = ns.messages / t_direct, ns.messages / t_edge

        from aiokafka.helpers import create_ssl_context

        direct_opts = {"bootstrap_servers": bootstrap}
        edge_opts = {
            "bootstrap_servers": f"127.0.0.1:{port}",
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "PLAIN",
            "sasl_plain_username": pid,
            "sasl_plain_password": secret,
            "ssl_context": create_ssl_context(cafile=certs["ca_cert"]),
        }
        lat_direct = asyncio.run(
            _latencies(direct_opts, inbound_topic(pid, "lat-direct"), ns.rate, ns.duration)
        )
        lat_edge = asyncio.run(_latencies(edge_opts, "lat-edge", ns.rate, ns.duration))

        mb = len(payload) / 1e6
        print()
        print(f"{'':28}{'direct':>14}{'via gateway':>14}")
        print(f"{'throughput records/s':28}{r_direct:>14,.0f}{r_edge:>14,.0f}")
        print(f"{'throughput MB/s':28}{mb / t_direct:>14.1f}{mb / t_edge:>14.1f}")
        print(f"{'latency p50 ms':28}{_pct(lat_direct, 50):>14.2f}{_pct(lat_edge, 50):>14.2f}")
        print(f"{'latency p99 ms':28}{_pct(lat_direct, 99):>14.2f}{_pct(lat_edge, 99):>14.2f}")
        print()
        print(f"gateway throughput = {100 * r_edge / r_direct:.0f}% of direct (target >= 50%)")
        added = _pct(lat_edge, 99) - _pct(lat_direct, 99)
        print(f"added p99 latency = {added:.2f} ms at {ns.rate:.0f} records/s (target < 5 ms)")
        print(
            f"({ns.messages} records of ~{len(body)} bytes, kcat acks=all; latency: aiokafka send_and_wait)"
        )
        return 0
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


if __name__ == "__main__":
    sys.exit(main())
