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
import statistics
import subprocess
import sys
import time

from app.contract.topics import inbound_topic
from bench.backend_kafka import aiokafka_options, kcat_options
from bench.gateway_support import running_gateway


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

    with running_gateway(ns.bootstrap, "bench") as gw:
        bootstrap, pid, secret, certs, port = (
            gw.bootstrap,
            gw.project_id,
            gw.secret,
            gw.certs,
            gw.port,
        )
        body = b'{"event": "purchase", "pad": "' + b"x" * max(0, ns.size - 32) + b'"}\n'
        payload = body * ns.messages
        direct_args = kcat_options(bootstrap)
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

        direct_opts = aiokafka_options(bootstrap)
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


if __name__ == "__main__":
    sys.exit(main())
