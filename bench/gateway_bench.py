"""Kafka edge benchmark: produce through the gateway vs directly to the broker, side by side.

    .venv/bin/python -m bench.gateway_bench                   # starts a local broker
    .venv/bin/python -m bench.gateway_bench --bootstrap 127.0.0.1:9092 --messages 300000
    .venv/bin/python -m bench.gateway_bench --compression lz4 --repeat 5 --duration 0

1. Starts a local Kafka broker (unless ``--bootstrap``), a fresh SQLite database with one
   project, and ``inbound gateway`` as a subprocess (TLS with dev certificates).
2. **Throughput**: kcat (librdkafka, the same client and the same ``--messages`` JSON
   records of ~``--size`` bytes, acks=all) produces once directly to the backend topic and
   once through the gateway (SASL_SSL) to the customer topic; records/s = messages / kcat's
   wall time. The gateway's figure is also shown as a share of the direct one. This is done
   for each ``--compression`` codec (librdkafka's ``compression.codec``: the edge decompresses,
   stamps and recompresses each batch), ``--repeat`` times, alternating direct and edge runs;
   the table shows the median of the runs, and every run is listed under it.
3. **Latency**: aiokafka sends one record at a time (acks=all, send_and_wait) at ``--rate``
   records/s for ``--duration`` s, directly and through the gateway; p50/p99 of each and the
   added p99 (``--duration 0`` skips it).

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

# The share of direct throughput the edge should reach (issue #15).
TARGET_PLAIN, TARGET_COMPRESSED = 0.75, 0.60
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


def _kcat_produce(args: list[str], topic: str, payload: bytes, codec: str = "none") -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [
            "kcat",
            *args,
            "-P",
            "-t",
            topic,
            "-X",
            "acks=all",
            "-X",
            "linger.ms=5",
            "-X",
            f"compression.codec={codec}",
        ],  # fmt: skip
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


def _codecs(text: str) -> list[str]:
    codecs = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in codecs if c not in CODECS]
    if unknown or not codecs:
        raise argparse.ArgumentTypeError(f"codecs are {', '.join(CODECS)}; not {unknown}")
    return codecs


def _throughput(
    codecs: list[str], repeat: int, messages: int, body: bytes, direct: list[str],
    edge: list[str], direct_topic: str,
) -> dict[str, list[tuple[float, float]]]:  # fmt: skip
    """codec -> [(direct records/s, edge records/s)] per run."""
    payload = body * messages
    runs: dict[str, list[tuple[float, float]]] = {c: [] for c in codecs}
    for codec in codecs:
        # Warm both paths (topic creation, connections) before timing.
        _kcat_produce(direct, f"{direct_topic}-{codec}", body, codec)
        _kcat_produce(edge, f"edge-{codec}", body, codec)
    for _ in range(repeat):
        for codec in codecs:
            t_direct = _kcat_produce(direct, f"{direct_topic}-{codec}", payload, codec)
            t_edge = _kcat_produce(edge, f"edge-{codec}", payload, codec)
            runs[codec].append((messages / t_direct, messages / t_edge))
    return runs


def _report(runs: dict[str, list[tuple[float, float]]], messages: int, size: int) -> None:
    print()
    print("| codec | direct rec/s | edge rec/s | edge/direct | target |")
    print("|---|---:|---:|---:|---:|")
    for codec, pairs in runs.items():
        direct = statistics.median(d for d, _ in pairs)
        edge = statistics.median(e for _, e in pairs)
        target = TARGET_PLAIN if codec == "none" else TARGET_COMPRESSED
        print(
            f"| {codec} | {direct:,.0f} | {edge:,.0f} | {100 * edge / direct:.0f}% "
            f"| >= {100 * target:.0f}% |"
        )
    print()
    count = len(next(iter(runs.values())))
    print(f"median of {count} runs per codec ({messages} records of ~{size} bytes, kcat acks=all")
    print("linger.ms=5); every run, direct / edge records/s:")
    for codec, pairs in runs.items():
        listed = ", ".join(f"{d:,.0f} / {e:,.0f} ({100 * e / d:.0f}%)" for d, e in pairs)
        print(f"  {codec}: {listed}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=250)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--duration", type=float, default=10, help="latency run (0: none)")
    parser.add_argument(
        "--compression", type=_codecs, default=["none", "lz4", "zstd"], help="e.g. none,lz4,zstd"
    )
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs per codec")
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
        direct_args = kcat_options(bootstrap)
        edge_args = [
            "-b", f"127.0.0.1:{port}",
            "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=PLAIN",
            "-X", f"sasl.username={pid}", "-X", f"sasl.password={secret}",
            "-X", f"ssl.ca.location={certs['ca_cert']}",
        ]  # fmt: skip
        runs = _throughput(
            ns.compression, ns.repeat, ns.messages, body, direct_args, edge_args,
            inbound_topic(pid, "direct"),
        )  # fmt: skip
        _report(runs, ns.messages, len(body))
        if ns.duration <= 0:
            return 0

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
        print()
        print(f"{'':28}{'direct':>14}{'via gateway':>14}")
        print(f"{'latency p50 ms':28}{_pct(lat_direct, 50):>14.2f}{_pct(lat_edge, 50):>14.2f}")
        print(f"{'latency p99 ms':28}{_pct(lat_direct, 99):>14.2f}{_pct(lat_edge, 99):>14.2f}")
        added = _pct(lat_edge, 99) - _pct(lat_direct, 99)
        print(f"added p99 latency = {added:.2f} ms at {ns.rate:.0f} records/s (target < 5 ms)")
        print("(latency: aiokafka send_and_wait, uncompressed)")
        return 0


if __name__ == "__main__":
    sys.exit(main())
