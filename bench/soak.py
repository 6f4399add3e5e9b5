"""Soak with chaos (issue #15): the production shape under a steady load of real clients,
with brokers, workers, the edge, the dispatcher and PostgreSQL killed on a schedule, then an
exact reconciliation of every acknowledged record.

    .venv/bin/python -m bench.soak --minutes 3
    .venv/bin/python -m bench.soak --minutes 20 --rate 400 --invalid-share 0.2 --workers 2

It starts (bench/soak_stack.py) three local brokers (RF 3, min ISR 2), PostgreSQL from
Debian's binaries, ``--workers`` workers, the Kafka edge, the API, the webhook dispatcher and
a local webhook receiver (subscribed to ``ingest.failed``). Five producers send through the
edge at ``--rate`` events/s in all (bench/soak_clients.py): librdkafka without compression,
with lz4 and with zstd, the Java producer and an idempotent aiokafka producer; a share
``--invalid-share`` of the events is invalid (broken JSON, or a ``$`` property name).

Faults, spread over the run: SIGKILL a broker (restarted 10 s later), SIGKILL a worker (a new
one started), SIGKILL and restart the edge, SIGKILL and restart the dispatcher, stop
PostgreSQL for 20 s. After the run the producers flush, the stack drains (consumer lag 0,
nothing left to dispatch, no new deliveries for a while) and bench/soak_check.py reconciles.

Prints a table per fault (records in flight when it struck, the longest gap in broker
acknowledgements and in stored rows in the minute after it, the peak consumer lag until the
next fault) and a last line
``RESULT acked=… stored=… rejected=… dlq=… lost=0 duplicated=0``; exits 1 on any loss,
duplicate or mismatch, 2 when the stack did not drain.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlalchemy import func, select

from app.ingest.consumer_loop import GROUP_ID
from app.store.db import engine_for
from app.store.models import Event, IngestError
from bench.soak_check import Reconciled, reconcile, undispatched
from bench.soak_clients import AiokafkaProducer, Edge, JavaProducer, LibrdkafkaProducer
from bench.soak_stack import Stack

COLLECTIONS = ("soak_orders", "soak_visits")
WINDOW_S = 60.0  # how long after a fault its stalls are looked for
BROKER_DOWN_S = 10.0
POSTGRES_DOWN_S = 20.0


@dataclass
class Fault:
    name: str
    at: float = 0.0  # seconds into the run
    started: float = 0.0  # monotonic
    ended: float = 0.0
    in_flight: int = 0
    error: str | None = None


@dataclass
class Samples:
    """(monotonic time, stored rows or None, consumer lag or None), once a second."""

    rows: list[tuple[float, int | None, int | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, at: float, stored: int | None, lag: int | None) -> None:
        with self.lock:
            self.rows.append((at, stored, lag))

    def snapshot(self) -> list[tuple[float, int | None, int | None]]:
        with self.lock:
            return list(self.rows)


def event(soak_id: str, n: int, invalid: bool) -> bytes:
    if invalid and n % 2:
        return b'{"soak_id": "%s", "broken": ' % soak_id.encode()
    body = {"soak_id": soak_id, "n": n, "item": "book", "price": n % 100}
    if invalid:
        body["$price"] = 1
    return orjson.dumps(body)


class Sampler(threading.Thread):
    def __init__(self, stack: Stack, samples: Samples) -> None:
        super().__init__(name="sampler", daemon=True)
        self.stack, self.samples = stack, samples
        self.stopping = threading.Event()

    def stored(self) -> int | None:
        try:
            with engine_for(self.stack.database_url).connect() as conn:
                pid = self.stack.project_id
                events = conn.scalar(
                    select(func.count()).select_from(Event).where(Event.project_id == pid)
                )
                errors = conn.scalar(
                    select(func.count())
                    .select_from(IngestError)
                    .where(IngestError.project_id == pid)
                )
                return int(events or 0) + int(errors or 0)
        except Exception:  # noqa: BLE001 - PostgreSQL may be the fault right now
            return None

    def lag(self, consumer) -> int | None:  # noqa: ANN001 - a confluent_kafka Consumer
        from confluent_kafka import TopicPartition

        try:
            prefix = f"in.{self.stack.project_id}."
            topics = consumer.list_topics(timeout=5).topics
            parts = [
                TopicPartition(name, p)
                for name, meta in topics.items()
                if name.startswith(prefix)
                for p in meta.partitions
            ]
            if not parts:
                return 0
            committed = consumer.committed(parts, timeout=5)
            total = 0
            for tp in committed:
                _, high = consumer.get_watermark_offsets(tp, timeout=5)
                total += max(0, high - max(tp.offset, 0))
            return total
        except Exception:  # noqa: BLE001 - a broker may be the fault right now
            return None

    def run(self) -> None:
        from confluent_kafka import Consumer

        consumer = Consumer(
            {"bootstrap.servers": self.stack.bootstrap, "group.id": GROUP_ID, "log_level": 0}
        )
        try:
            while not self.stopping.is_set():
                self.samples.add(time.monotonic(), self.stored(), self.lag(consumer))
                self.stopping.wait(1.0)
        finally:
            consumer.close()


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest time within [start, end] without one of ``times``."""
    inside = [t for t in times if start <= t <= end]
    marks = [start, *inside, end]
    return max(b - a for a, b in itertools.pairwise(marks))


def growth_times(rows: list[tuple[float, int | None, int | None]]) -> list[float]:
    out, last = [], None
    for at, stored, _ in rows:
        if stored is not None and last is not None and stored > last:
            out.append(at)
        if stored is not None:
            last = stored
    return out


class Run:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args = args
        self.root = root
        self.stack = Stack(root, args.workers)
        self.samples = Samples()
        self.faults: list[Fault] = []
        self.rng = random.Random(args.seed)
        self.produced_until = 0.0

    def producers(self) -> list:
        edge = Edge(
            "127.0.0.1",
            self.stack.gateway_port,
            self.stack.project_id,
            self.stack.write_key,
            self.stack.certs["ca_cert"],
        )
        return [
            LibrdkafkaProducer("rdkafka-none", edge, "none"),
            LibrdkafkaProducer("rdkafka-lz4", edge, "lz4"),
            LibrdkafkaProducer("rdkafka-zstd", edge, "zstd"),
            JavaProducer("java", edge, self.stack.cache_dir, self.root / "java"),
            AiokafkaProducer("aiokafka", edge),
        ]

    def schedule(self) -> list[tuple[float, str, Callable[[], None]]]:
        total = self.args.minutes * 60
        stack = self.stack

        def broker() -> None:
            stack.kill_broker(2)
            time.sleep(BROKER_DOWN_S)  # the fault is the broker being away this long
            stack.restart_broker(2)

        def worker() -> None:
            stack.kill_worker()
            stack.start_worker()

        def postgres() -> None:
            stack.stop_postgres()
            time.sleep(POSTGRES_DOWN_S)  # the fault is the database being away this long
            stack.start_postgres()

        plan = [
            ("broker: SIGKILL node 2, restarted after 10 s", broker),
            ("worker: SIGKILL one, a new one started", worker),
            ("edge gateway: SIGKILL, restarted", lambda: stack.restart_service("gateway")),
            ("webhook dispatcher: SIGKILL, restarted", lambda: stack.restart_service("webhooks")),
            ("PostgreSQL: stopped for 20 s", postgres),
        ]
        spots = [0.10, 0.25, 0.40, 0.55, 0.70]
        return [
            (total * spot, name, action) for spot, (name, action) in zip(spots, plan, strict=True)
        ]

    def chaos(self, begun: float, producers: list, stop: threading.Event) -> None:
        for at, name, action in self.schedule():
            if stop.wait(max(0.0, begun + at - time.monotonic())):
                return
            fault = Fault(name, at=time.monotonic() - begun, started=time.monotonic())
            fault.in_flight = sum(p.tally.in_flight() for p in producers)
            print(f"[{fault.at:6.1f} s] fault: {name} ({fault.in_flight} in flight)", flush=True)
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - reported in the table, the run goes on
                fault.error = f"{type(exc).__name__}: {exc}"
                print(f"           fault action failed: {fault.error}", flush=True)
            fault.ended = time.monotonic()
            self.faults.append(fault)

    def produce(self, producers: list) -> None:
        args = self.args
        interval = 1.0 / args.rate
        counters = dict.fromkeys((p.tally.name for p in producers), 0)
        deadline = time.monotonic() + args.minutes * 60
        next_at = time.monotonic()
        cycle = itertools.cycle(producers)
        while (now := time.monotonic()) < deadline:
            if now < next_at:
                time.sleep(min(next_at - now, 0.05))
                continue
            producer = next(cycle)
            name = producer.tally.name
            n = counters[name] = counters[name] + 1
            soak_id = f"{name}-{n}"
            invalid = self.rng.random() < args.invalid_share
            topic = COLLECTIONS[n % len(COLLECTIONS)]
            producer.send(topic, soak_id, event(soak_id, n, invalid))
            next_at += interval

    def drain(self, producers: list) -> bool:
        for producer in producers:
            producer.close(timeout=180)
        deadline = time.monotonic() + self.args.drain_timeout
        quiet_since: float | None = None
        last = None
        while time.monotonic() < deadline:
            rows = self.samples.snapshot()
            _, stored, lag = rows[-1] if rows else (0, None, None)
            deliveries = len(self.stack.received.snapshot())
            pending = undispatched(self.stack.database_url, self.stack.project_id)
            state = (stored, deliveries)
            if lag == 0 and pending == 0 and state == last:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= 5:
                    return True
            else:
                quiet_since = None
            last = state
            time.sleep(1)
        return False

    def execute(self) -> int:
        started = time.monotonic()
        self.stack.start()
        print(
            f"stack up in {time.monotonic() - started:.0f} s: brokers {self.stack.bootstrap}, "
            f"edge 127.0.0.1:{self.stack.gateway_port}, {self.args.workers} workers, "
            f"PostgreSQL, dispatcher; logs in {self.stack.logs}",
            flush=True,
        )
        sampler = Sampler(self.stack, self.samples)
        sampler.start()
        producers = self.producers()
        stop = threading.Event()
        begun = time.monotonic()
        chaos = threading.Thread(
            target=self.chaos, args=(begun, producers, stop), name="chaos", daemon=True
        )
        chaos.start()
        self.produce(producers)
        self.produced_until = time.monotonic()
        produced_s = self.produced_until - begun
        chaos.join()  # every fault's recovery is part of the run
        drain_started = time.monotonic()
        drained = self.drain(producers)
        print(f"drained in {time.monotonic() - drain_started:.0f} s", flush=True)
        sampler.stopping.set()
        sampler.join(10)
        acked = set().union(*(p.tally.acked for p in producers))
        failed = set().union(*(set(p.tally.failed) for p in producers)) - acked
        sent = sum(p.tally.sent for p in producers)
        unresolved = (
            {f"{p.tally.name}-{n}" for p in producers for n in range(1, p.tally.sent + 1)}
            - acked
            - failed
        )
        result = reconcile(
            acked=acked,
            failed=failed | unresolved,
            database_url=self.stack.database_url,
            project_id=self.stack.project_id,
            kafka={"bootstrap_servers": self.stack.bootstrap},
            dlq_topics=[f"dlq.{self.stack.project_id}.{c}" for c in COLLECTIONS],
            deliveries=self.stack.received.snapshot(),
        )
        self.report(producers, sent, produced_s, result, drained, len(unresolved))
        print(f"soak took {time.monotonic() - started:.0f} s before stopping the stack")
        if not drained:
            print(self.stack.tails())
            return 2
        return 0 if result.ok else 1

    def report(
        self,
        producers: list,
        sent: int,
        produced_s: float,
        result: Reconciled,
        drained: bool,
        unresolved: int,
    ) -> None:
        rows = self.samples.snapshot()
        acks = sorted(t for p in producers for t in p.tally.acked_at)
        grew = growth_times(rows)
        print(f"\n{' '.join(sys.argv)}\n")
        print(
            "| fault | at s | in flight | acks stalled s | storing stalled s | "
            "consumer lag peak | note |"
        )
        print("|---|---:|---:|---:|---:|---:|---|")
        for i, fault in enumerate(self.faults):
            # Each fault's window ends at the next fault, and at the end of producing (after
            # it nothing more is acknowledged, or stored once drained, by design).
            following = self.faults[i + 1].started if i + 1 < len(self.faults) else None
            end = min(fault.started + WINDOW_S, following or self.produced_until)
            until = following or rows[-1][0]
            lags = [lag for at, _, lag in rows if fault.started <= at <= until and lag is not None]
            print(
                f"| {fault.name} | {fault.at:.0f} | {fault.in_flight:,} | "
                f"{longest_gap(acks, fault.started, end):.1f} | "
                f"{longest_gap(grew, fault.started, end):.1f} | "
                f"{max(lags, default=0):,} | {fault.error or ''} |"
            )
        print(
            f"\nproduced {sent:,} records in {produced_s:.0f} s ({sent / produced_s:,.0f}/s) "
            f"with {', '.join(p.tally.name for p in producers)}; "
            f"delivery failed for {result.failed_delivery:,} ({unresolved} unresolved), "
            f"{result.failed_but_stored} of them stored once anyway"
        )
        print(
            f"DLQ: {result.dlq:,} distinct error ids, {result.dlq_redelivered:,} redelivered copies; "
            f"webhooks: {result.webhook_deliveries:,} deliveries notified {result.webhook_errors_notified:,} "
            f"errors, {result.webhook_redelivered:,} retried copies, "
            f"{result.notifications_undispatched} notifications left; drained: {drained}"
        )
        for problem in result.problems:
            print(f"PROBLEM {problem}")
        if result.lost:
            print(f"lost (first 10): {sorted(result.lost)[:10]}")
        if result.duplicated:
            print(f"duplicated (first 10): {sorted(result.duplicated)[:10]}")
        print(
            f"RESULT acked={result.acked} stored={result.stored} rejected={result.rejected} "
            f"dlq={result.dlq} lost={len(result.lost)} duplicated={len(result.duplicated)}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--minutes", type=float, default=3.0, help="how long the producers run")
    p.add_argument("--rate", type=float, default=200.0, help="events per second, all producers")
    p.add_argument("--invalid-share", type=float, default=0.1)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--drain-timeout", type=float, default=300.0)
    p.add_argument("--seed", type=int, default=15)
    p.add_argument("--keep", action="store_true", help="keep the data and logs directory")
    args = p.parse_args(argv)
    if not 0 <= args.invalid_share <= 1:
        p.error("--invalid-share is a fraction from 0 to 1")
    if args.workers < 1 or args.rate <= 0 or args.minutes <= 0:
        p.error("--workers, --rate and --minutes must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    root = Path(tempfile.mkdtemp(prefix="inbound-soak-"))
    run = Run(args, root)
    code = 1
    try:
        code = run.execute()
    finally:
        run.stack.stop()
        if args.keep or code:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
