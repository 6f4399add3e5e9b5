"""Scale-out benchmark: ingest throughput with one and with two workers, and how long a worker
joining stalls ingestion.

    .venv/bin/python -m bench.scaleout_bench                        # PostgreSQL, ~2 min
    .venv/bin/python -m bench.scaleout_bench --events 200000 --rate 4000 --duration 30
    .venv/bin/python -m bench.scaleout_bench --database sqlite

What it does (brokers, databases, event generator, producers and process handling are
bench/worker_bench.py's):

1. Starts a local Kafka broker (or uses ``--bootstrap``) and a PostgreSQL server from
   Debian's binaries (or creates its databases on ``--database-url``; ``--database sqlite``
   uses SQLite files, which two workers share through its single writer lock).
2. **Throughput**, once with 1 worker and once with 2, each on a fresh database with its own
   project and a fresh ``in.<project>.<collection>`` topic of ``--partitions`` (6)
   partitions: starts the workers, waits until the consumer group is stable with every worker
   owning some of the topic's partitions (so no rebalance falls inside the measurement),
   produces the same ``--events`` events (worker_bench's ~400-byte events, ``--invalid-share``
   of them invalid) and counts events + ingest_errors rows every 50 ms from the first visible
   row to the last. Throughput = rows after the first sighting / that time.
3. **Rebalance stall**: a fresh database and topic, one worker, a steady ``--rate`` events/s
   for ``--duration`` s; a third of the way in a second worker is started. Rows are counted
   every 50 ms; the longest time without the count growing is reported for the steady part
   before the second worker starts and for the part after it (the join, the group's
   rebalance, both workers fetching their offsets again), with the time from starting the
   second process to the group being stable with both.
4. Prints markdown tables. Everything it started is stopped or removed on exit.

The broker, PostgreSQL, the workers and this script share the machine: on 2 cores two
workers compete with the database and the broker for the same CPUs, so the ratio says what
a second worker buys on this machine, not on one core per worker.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from app.contract import headers as h
from app.store.db import make_engine
from bench.backend_kafka import aiokafka_options
from bench.worker_bench import (
    COUNT_POLL_S,
    Databases,
    Processes,
    SystemDied,
    count_rows,
    create_topics,
    make_project,
    make_values,
    measure_throughput,
    produce_at_rate,
    produce_fast,
    tail,
)
from bench.worker_bench import broker as start_broker
from tests.support.ports import free_port
from tests.support.worker import group_assignment

GROUP = "inbound-ingest"  # the workers' consumer group (README, "Several workers")


@dataclass
class Bench:
    bootstrap: str
    tmp: Path
    procs: Processes
    dbs: Databases
    args: argparse.Namespace
    notes: list[str] = field(default_factory=list)


@dataclass
class Throughput:
    workers: int
    events: int
    rows: int
    rate: float | None
    seconds: float


@dataclass
class Stall:
    rate: float
    events: int
    steady_gap: float
    rebalance_gap: float
    join_seconds: float


# -- workers and their group -------------------------------------------------------------------


def start_worker(bench: Bench, db_url: str, name: str) -> tuple[subprocess.Popen, Path]:
    data_dir = bench.tmp / name
    data_dir.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "INBOUND_DATABASE_URL": db_url,
        "INBOUND_KAFKA_BOOTSTRAP": bench.bootstrap,
        "INBOUND_DATA_DIR": str(data_dir),
        "INBOUND_WORKER_METRICS_PORT": str(free_port()),
        # Find the bench topics within a second (the default is 2 s).
        "INBOUND_WORKER_METADATA_MAX_AGE_MS": "1000",
    }
    log = bench.tmp / f"{name}.log"
    proc = bench.procs.start([sys.executable, "-m", "app.cli.main", "worker"], log, env)
    return proc, log


def owners(bench: Bench, topic: str) -> list[set[int]]:
    """The partitions of ``topic`` each member of a stable group owns (empty: not stable)."""
    members = group_assignment(bench.bootstrap, GROUP, **aiokafka_options(bench.bootstrap))
    return [{p for t, p in tps if t == topic} for tps in members.values()]


def wait_shared(
    bench: Bench, topic: str, workers: list[tuple[subprocess.Popen, Path]], timeout: float
) -> None:
    """Until exactly ``len(workers)`` members own the topic's partitions, all of them."""
    deadline = time.monotonic() + timeout
    want = set(range(bench.args.partitions))
    while True:
        owned = [o for o in owners(bench, topic) if o]
        if len(owned) == len(workers) and set().union(*owned) == want:
            return
        for proc, log in workers:
            if proc.poll() is not None:
                raise SystemDied(f"worker exited with {proc.returncode}:\n{tail(log)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic}: owners {owned} after {timeout:.0f}s")
        time.sleep(0.1)


def fresh_topic(bench: Bench, tag: str) -> tuple[str, str, str, list]:
    """A fresh database with a project, and a fresh topic of it: (db url, topic, collection,
    the key-id header the edge would stamp)."""
    url = bench.dbs.fresh(tag)
    project_id, key_id = make_project(url)
    collection = f"scale_{tag}"
    topic = f"in.{project_id}.{collection}"
    asyncio.run(create_topics(bench.bootstrap, [topic], bench.args.partitions))
    return url, topic, collection, [(h.KEY_ID, key_id.encode())]


# -- 1 and 2 workers ---------------------------------------------------------------------------


def run_throughput(bench: Bench, workers: int, values: list[bytes]) -> Throughput:
    args = bench.args
    tag = f"w{workers}"
    url, topic, collection, headers = fresh_topic(bench, tag)
    project_id = topic.split(".")[1]
    engine = make_engine(url)
    started = [start_worker(bench, url, f"{tag}-{i}") for i in range(workers)]
    try:
        wait_shared(bench, topic, started, args.timeout)
        produced = asyncio.run(
            produce_fast(bench.bootstrap, topic, values, headers, args.partitions)
        )
        print(f"[{workers} worker(s)] produced {len(values):,} events at {produced:,.0f} ev/s")
        began = time.perf_counter()
        proc, log = started[0]
        rate, measured = measure_throughput(
            lambda: count_rows(engine, project_id, collection, True),
            len(values),
            proc,
            log,
            args.timeout,
        )
        seconds = time.perf_counter() - began
        if measured < len(values):
            bench.notes.append(
                f"{workers} worker(s): {len(values) - measured:,} rows were stored while "
                "producing, before the first count; the rate is over the rest"
            )
        for p, lg in started:
            if p.poll() is not None:
                raise SystemDied(f"a worker exited with {p.returncode}:\n{tail(lg)}")
        print(f"[{workers} worker(s)] {rate or 0:,.0f} rows/s over {measured:,} rows", flush=True)
        return Throughput(workers, len(values), measured, rate, seconds)
    finally:
        for p, _ in started:
            bench.procs.stop(p)
        engine.dispose()


# -- a worker joining mid-run ------------------------------------------------------------------


class RowSampler(threading.Thread):
    """(monotonic time, row count) every 50 ms."""

    def __init__(self, counter: Callable[[], int]) -> None:
        super().__init__(daemon=True, name="row-sampler")
        self.counter = counter
        self.samples: list[tuple[float, int]] = []
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.done.is_set():
                self.samples.append((time.monotonic(), self.counter()))
                time.sleep(COUNT_POLL_S)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            self.error = exc


def longest_gap(samples: list[tuple[float, int]], start: float, end: float) -> float:
    """Longest time between two growths of the count within [start, end]."""
    last_growth = start
    longest = 0.0
    previous = None
    for at, count in samples:
        if previous is not None and count > previous and start <= at <= end:
            longest = max(longest, at - last_growth)
            last_growth = at
        previous = count
    return longest


def run_stall(bench: Bench) -> Stall:
    args = bench.args
    url, topic, collection, headers = fresh_topic(bench, "join")
    project_id = topic.split(".")[1]
    engine = make_engine(url)
    first = start_worker(bench, url, "join-0")
    second: tuple[subprocess.Popen, Path] | None = None
    sampler = RowSampler(lambda: count_rows(engine, project_id, collection, True))
    try:
        wait_shared(bench, topic, [first], args.timeout)
        total = int(args.rate * args.duration)
        producer_error: list[BaseException] = []

        def produce() -> None:
            try:
                asyncio.run(
                    produce_at_rate(
                        bench.bootstrap,
                        topic,
                        args.rate,
                        args.duration,
                        args.invalid_share,
                        args.seed + 1,
                        headers,
                        args.partitions,
                    )
                )
            except BaseException as exc:  # noqa: BLE001 - reported below
                producer_error.append(exc)

        producing = threading.Thread(target=produce, daemon=True, name="rate-producer")
        sampler.start()
        began = time.monotonic()
        producing.start()
        time.sleep(args.duration / 3)
        join_at = time.monotonic()
        second = start_worker(bench, url, "join-1")
        wait_shared(bench, topic, [first, second], args.timeout)
        shared_at = time.monotonic()
        producing.join()
        if producer_error:
            raise producer_error[0]
        deadline = time.monotonic() + args.timeout
        while count_rows(engine, project_id, collection, True) < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"rebalance run: not every row stored\n{tail(second[1])}")
            time.sleep(0.1)
        end = time.monotonic()
        sampler.done.set()
        sampler.join(5)
        if sampler.error is not None:
            raise sampler.error
        # Skip the first second: the first batch of a fresh project costs its look-ups.
        steady = longest_gap(sampler.samples, began + 1.0, join_at)
        rebalance = longest_gap(sampler.samples, join_at, end)
        print(
            f"[join] {total:,} events at {args.rate:,.0f}/s: longest gap {steady:.2f}s before "
            f"the second worker, {rebalance:.2f}s after; group shared "
            f"{shared_at - join_at:.1f}s after its start",
            flush=True,
        )
        return Stall(args.rate, total, steady, rebalance, shared_at - join_at)
    finally:
        sampler.done.set()
        for proc in (first, second):
            if proc is not None:
                bench.procs.stop(proc[0])
        engine.dispose()


# -- output ------------------------------------------------------------------------------------


def print_tables(bench: Bench, rows: list[Throughput], stall: Stall | None) -> None:
    one = next((r.rate for r in rows if r.workers == 1 and r.rate), None)
    print(
        "\n| workers | events | partitions | rows/s | ratio to 1 worker |\n"
        "|--------:|-------:|-----------:|-------:|------------------:|"
    )
    for r in rows:
        ratio = f"{r.rate / one:.2f}" if r.rate and one else "n/a"
        rate = f"{r.rate:,.0f}" if r.rate else "n/a"
        print(f"| {r.workers} | {r.events:,} | {bench.args.partitions} | {rate} | {ratio} |")
    if stall is not None:
        print(
            "\n| rebalance run | events | rate ev/s | longest gap, steady | "
            "longest gap, 2nd worker joining | start to group shared |\n"
            "|---|--:|--:|--:|--:|--:|"
        )
        print(
            f"| 1 worker, a 2nd started at 1/3 | {stall.events:,} | {stall.rate:,.0f} | "
            f"{stall.steady_gap:.2f} s | {stall.rebalance_gap:.2f} s | "
            f"{stall.join_seconds:.1f} s |"
        )
    print(
        f"\nrows: events + ingest_errors (invalid share {bench.args.invalid_share:.0%}); database: "
        f"{bench.args.database}; {os.cpu_count()} CPUs shared by the broker, the database, the "
        "workers and this script. Gap: longest time without the row count growing (50 ms "
        "polls). Start to group shared: from starting the second process (Python start-up "
        "included) to a stable group with both owning partitions."
    )
    for note in bench.notes:
        print(f"note: {note}")


# -- main --------------------------------------------------------------------------------------


@contextmanager
def database_server(args: argparse.Namespace):  # noqa: ANN201 - yields a server URL or None
    if args.database == "sqlite" or args.database_url:
        yield args.database_url
        return
    from tests.support.postgres import LocalPostgres

    # Its own temp dir: LocalPostgres hands it to the postgres user, who cannot enter ours.
    server = LocalPostgres(Path(tempfile.mkdtemp(prefix="inbound-scaleout-pg-")))
    try:
        yield server.start()
    finally:
        server.cleanup()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Scale-out benchmark (see the module docstring).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--events", type=int, default=60_000, help="events per throughput run")
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--invalid-share", type=float, default=0.0)
    p.add_argument("--rate", type=float, default=3000.0, help="rebalance run, events/s")
    p.add_argument("--duration", type=float, default=15.0, help="rebalance run, seconds (0: skip)")
    p.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    p.add_argument("--database-url", default=None, help="PostgreSQL server for the databases")
    p.add_argument("--bootstrap", default=None, help="a broker with no other unread in.* topic")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    if args.database_url:
        args.database = "postgresql"
    if not 0 <= args.invalid_share < 0.9:
        p.error("--invalid-share is in [0, 0.9): above, the DLQ circuit breaker pauses streams")
    return args


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="inbound-scaleout-"))
    procs = Processes()
    rows: list[Throughput] = []
    stall: Stall | None = None
    try:
        with start_broker(args, tmp) as bootstrap, database_server(args) as server_url:
            dbs = Databases(tmp, server_url if args.database == "postgresql" else None)
            bench = Bench(bootstrap, tmp, procs, dbs, args)
            try:
                values, valid = make_values(args.events, args.invalid_share, args.seed, 0.0)
                print(f"{len(values):,} events, {valid:,} valid", flush=True)
                for workers in (1, 2):
                    rows.append(run_throughput(bench, workers, values))
                if args.duration > 0:
                    stall = run_stall(bench)
            finally:
                procs.stop_all()
                dbs.drop_all()
            print_tables(bench, rows, stall)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything", file=sys.stderr)
        raise SystemExit(130) from None
    except (SystemDied, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        procs.stop_all()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
