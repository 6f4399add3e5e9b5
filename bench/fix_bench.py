"""Fix and replay benchmark (issue #14): the preview next to the worker's pipeline, and apply.

    .venv/bin/python -m bench.fix_bench                          # SQLite, 100,000 errors
    .venv/bin/python -m bench.fix_bench --databases sqlite,postgresql
    .venv/bin/python -m bench.fix_bench --skip-apply --profile /tmp/fix.prof
    .venv/bin/python -m bench.fix_bench --postgres-url postgresql+psycopg://user@host/db

For each database (a SQLite file in a temp dir; PostgreSQL: a new database on the server of
``--postgres-url``, or on one started from Debian's binaries as tests/support/postgres.py
does), migrated, with one project and its write key:

1. **Load**: ``--events`` realistic ~400-byte events (bench/worker_bench.py's generator) that
   each carry ``user.name`` (a dot) and ``$price`` (a leading ``$``), as records of
   ``in.<project>.<collection>`` with the write key's ``inbound.key_id`` header, spread over
   ``--events / --batch`` collections. Each goes through ``app.ingest.pipeline.process``
   (rejected: ``invalid_property_name``), ``dead_letter`` and the worker's ``BatchWriter``,
   so the error rows, problems and notifications are what the worker would have stored.
2. **Preview** (``dry_run``): the fix ``rename /user.name -> user_name, rename /$price ->
   price`` through ``app.api.fixes.service.run_fix``, the function ``POST .../errors/fix`` calls,
   in-process, one call per collection with ``limit`` = ``--batch`` (default 10,000, the
   API's largest), so every call stays within what the API accepts. The time covers what the
   route's work covers: loading the rows, patching, the pipeline, the summary.
3. **Pipeline**, side by side in the same run: ``app.ingest.pipeline.process`` over the same
   patched payloads, as the replay would deliver them (same topics, coordinates, headers), with
   a prefetched ``DbLookup`` as the worker holds one. Preview and pipeline alternate,
   ``--repeat`` times each; the best of each is reported, with the ratio preview / pipeline
   (goal: at least 80%). The preview's database read (``preview.load_rows`` alone) is timed
   too, and the preview less that read is shown against the pipeline: the pipeline starts
   from records in memory, the preview from rows it must first read. The process's garbage
   collector is tuned as ``inbound api`` and ``inbound worker`` tune theirs.
4. **Apply** (unless ``--skip-apply``): a real local Kafka broker (app.kafka.local, unless
   ``--bootstrap``), a real ``inbound worker`` subprocess, and ``run_fix`` with
   ``dry_run: false`` per collection through a real producer. The replay rate is the
   configured one: the bench sets ``INBOUND_REPLAY_RATE_PER_SECOND`` and
   ``INBOUND_REPLAY_BURST`` to ``--replay-rate`` / ``--replay-burst`` (default 1,000,000/s and
   ``--events``, so the limit does not bind) and reads them back through ``Settings``; the
   output also says what the default 50/s (burst 500) would take. End-to-end time: from the
   first apply call until the ``events`` table holds every replayed event; checked after:
   events = would-be-accepted, each error's ``replay_outcome`` is ``accepted`` with the fix id.

``--profile FILE`` records one preview pass (all batches) with cProfile and prints the top
functions. The broker, the worker and this script share the machine: the figures compare
the preview with the pipeline within one run, not absolute capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import os
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import sessionmaker

from app.api.error_views import decode_headers
from app.api.fixes.operations import ApplyFailure, apply_plan, parse_operations
from app.api.fixes.preview import _record, load_rows, lookup_for, preview_rows, shared_addons
from app.api.fixes.service import plan_for, run_fix, summarize
from app.api.producer import KafkaProducerHolder
from app.api.replay_limit import TokenBucket
from app.api.replay_service import load_errors, target_where
from app.api.schemas.fixes import FixRequest
from app.api.schemas.replay import ReplayFilter
from app.contract import headers as h
from app.contract.errors import Rejection
from app.contract.topics import inbound_topic
from app.gc_tuning import tune_garbage_collector
from app.ingest.dlq import dead_letter
from app.ingest.persist import BatchOutcome, BatchWriter
from app.ingest.pipeline import RawRecord, process
from app.kafka.client_options import kafka_options
from app.settings import Settings
from app.store.db import make_engine, session_scope
from app.store.keys import find_key
from app.store.models import Event, IngestError
from app.store.projects import create_project
from bench.problems_bench import database
from bench.worker_bench import create_topics, valid_event

OPERATIONS = [
    {"op": "rename", "path": "/user.name", "to": "user_name"},
    {"op": "rename", "path": "/$price", "to": "price"},
]
PARTITIONS = 3
WRITE_CHUNK = 2_000
DEFAULT_RATE, DEFAULT_BURST = 50.0, 500  # app/settings: replay_rate_per_second, replay_burst


@dataclass
class Loaded:
    url: str
    project_id: str
    key_id: str
    collections: list[str]
    events: int


@dataclass
class Figures:
    db: str
    events: int
    preview_s: list[float] = field(default_factory=list)
    pipeline_s: list[float] = field(default_factory=list)
    read_s: list[float] = field(default_factory=list)  # preview.load_rows alone, all batches
    accepted: int = 0
    apply: dict | None = None


def bad_event(rng: random.Random, seq: int) -> bytes:
    event = valid_event(rng, seq)
    event["user.name"] = f"user{rng.randrange(10**6):06d}"
    event["$price"] = round(rng.uniform(1, 500), 2)
    return orjson.dumps(event)


def load(url: str, events: int, batch: int, seed: int) -> Loaded:
    """The project, its key, and ``events`` rejected events stored as the worker stores them."""
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            project = create_project(session, "fix-bench")
            key = find_key(session, project["write_key"])
            assert key is not None
            project_id, key_id = project["project_id"], key.id
        settings = Settings()
        writer = BatchWriter(engine, settings.error_payload_cap, settings.problems_max_per_project)
        addons = shared_addons(settings.geoip_database)
        lookup = lookup_for(sessionmaker(engine), [])
        lookup.prefetch({project_id}, {key_id})
        headers = ((h.KEY_ID, key_id.encode()),)
        rng = random.Random(seed)
        collections = [f"purchases_{i:02d}" for i in range((events + batch - 1) // batch)]
        now = datetime.now(UTC)
        stamp = int(now.timestamp() * 1000)
        seq = 0
        for c, collection in enumerate(collections):
            topic = inbound_topic(project_id, collection)
            n = min(batch, events - c * batch)
            outcome = BatchOutcome()
            for i in range(n):
                record = RawRecord(
                    topic,
                    i % PARTITIONS,
                    i // PARTITIONS,
                    stamp,
                    None,
                    bad_event(rng, seq),
                    headers,
                )
                seq += 1
                result = process(record, lookup, now, addons)
                assert isinstance(result, Rejection), "the bench events must be rejected"
                letter = dead_letter(record, result, now)
                outcome.rejected.append(letter)
                outcome.dlq_coordinates[letter.error_id] = (record.partition, record.offset)
                if len(outcome.rejected) >= WRITE_CHUNK:
                    writer.write(outcome)
                    outcome = BatchOutcome()
            if outcome.rejected:
                writer.write(outcome)
        with engine.connect() as conn:
            stored = conn.scalar(select(func.count()).select_from(IngestError))
        assert stored == events, f"{stored} error rows, expected {events}"
        return Loaded(url, project_id, key_id, collections, events)
    finally:
        engine.dispose()


def request(collection: str, limit: int, dry_run: bool) -> FixRequest:
    # model_construct: a --batch over the API's 10,000 is the bench's choice, not a request's.
    return FixRequest.model_construct(
        error_id=None,
        filter=ReplayFilter(collection=collection),
        operations=OPERATIONS,
        dry_run=dry_run,
        limit=limit,
    )


async def preview_all(
    loaded: Loaded, sessions: sessionmaker, batch: int, settings: Settings
) -> tuple[float, int]:
    """One preview pass over every collection through run_fix; (seconds, would_accept)."""
    accepted = 0
    started = time.perf_counter()
    for collection in loaded.collections:
        result = await run_fix(
            request(collection, batch, dry_run=True),
            project_id=loaded.project_id,
            actor="bench",
            sessions=sessions,
            producer=KafkaProducerHolder(None),
            bucket=TokenBucket(rate=settings.replay_rate_per_second, capacity=1.0),
            cap=settings.replay_cap,
            geoip_database=settings.geoip_database,
        )
        accepted += result["would_accept"]
    return time.perf_counter() - started, accepted


def preview_inline(
    loaded: Loaded, sessions: sessionmaker, batch: int, settings: Settings
) -> tuple[float, int]:
    """What run_fix's dry run does, on this thread, for the profiler; (seconds, would_accept)."""
    accepted = 0
    started = time.perf_counter()
    for collection in loaded.collections:
        fix = request(collection, batch, dry_run=True)
        plan = plan_for(fix)
        where = target_where(None, fix.filter, loaded.project_id)
        matched, rows = load_rows(sessions, where, batch)
        addons = shared_addons(settings.geoip_database)
        outcomes = preview_rows(rows, plan, sessions=sessions, addons=addons, cap=3)
        accepted += summarize(matched, rows, outcomes)["would_accept"]
    return time.perf_counter() - started, accepted


def read_all(loaded: Loaded, sessions: sessionmaker, batch: int) -> float:
    """Seconds the preview's database read (preview.load_rows) takes, alone, for every batch."""
    started = time.perf_counter()
    for collection in loaded.collections:
        where = target_where(None, ReplayFilter(collection=collection), loaded.project_id)
        load_rows(sessions, where, batch)
    return time.perf_counter() - started


def patched_records(loaded: Loaded, sessions: sessionmaker, batch: int) -> list[RawRecord]:
    """Each error's patched record as its replay would deliver it (not timed)."""
    plan = parse_operations(OPERATIONS)
    records = []
    for collection in loaded.collections:
        where = target_where(None, ReplayFilter(collection=collection), loaded.project_id)
        _, rows = load_errors(sessions, where, batch)
        for row in rows:
            patched = apply_plan(plan, row.payload)
            assert not isinstance(patched, ApplyFailure), patched
            records.append(_record(row, patched, row.source_topic, 1, decode_headers(row.headers)))
    return records


def pipeline_all(records: list[RawRecord], lookup, addons) -> float:  # noqa: ANN001
    now = datetime.now(UTC)
    started = time.perf_counter()
    for record in records:
        process(record, lookup, now, addons)
    return time.perf_counter() - started


def measure_preview(loaded: Loaded, args: argparse.Namespace, figures: Figures) -> None:
    settings = Settings()
    engine = make_engine(loaded.url)
    sessions = sessionmaker(engine)
    try:
        addons = shared_addons(settings.geoip_database)  # warm, as in a running API
        tune_garbage_collector()  # as `inbound api` and `inbound worker` do once started
        records = patched_records(loaded, sessions, args.batch)
        lookup = lookup_for(sessions, [])
        lookup.prefetch({loaded.project_id}, {loaded.key_id})
        accepted = sum(
            not isinstance(process(r, lookup, datetime.now(UTC), addons), Rejection)
            for r in records
        )
        for _ in range(args.repeat):
            figures.pipeline_s.append(pipeline_all(records, lookup, addons))
            seconds, figures.accepted = asyncio.run(
                preview_all(loaded, sessions, args.batch, settings)
            )
            figures.preview_s.append(seconds)
            figures.read_s.append(read_all(loaded, sessions, args.batch))
            print(
                f"{figures.db}: pipeline {figures.pipeline_s[-1]:.2f} s, "
                f"preview {seconds:.2f} s, of which reading the rows {figures.read_s[-1]:.2f} s",
                flush=True,
            )
        assert figures.accepted == accepted == loaded.events, (figures.accepted, accepted)
        if args.profile:
            # run_fix does its work in the threadpool, out of cProfile's sight: the same
            # steps, called here on this thread.
            profiler = cProfile.Profile()
            profiler.enable()
            preview_inline(loaded, sessions, args.batch, settings)
            profiler.disable()
            profiler.dump_stats(args.profile)
            print(f"\n{figures.db}: cProfile of one preview pass ({args.profile}):")
            stats = pstats.Stats(profiler).strip_dirs().sort_stats("tottime")
            stats.print_stats(25)
    finally:
        engine.dispose()


@contextmanager
def broker(args: argparse.Namespace, tmp: Path) -> Iterator[str]:
    if args.bootstrap:
        yield args.bootstrap
        return
    from app.kafka import local
    from tests.support.ports import free_kafka_base

    data_dir = tmp / "kafka"
    try:
        state = local.start(
            data_dir, Settings().cache_dir, base_port=free_kafka_base(1), nodes=1, timeout=120
        )
        print(f"local Kafka at {state.bootstrap}", flush=True)
        yield state.bootstrap
    finally:
        local.stop(data_dir)


def count(engine: Engine, table, project_id: str) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.scalar(
            select(func.count()).select_from(table).where(table.project_id == project_id)
        )


async def apply_all(
    loaded: Loaded, sessions: sessionmaker, batch: int, settings: Settings, bootstrap: str
) -> tuple[int, list[str]]:
    producer = KafkaProducerHolder(kafka_options(settings, bootstrap))
    bucket = TokenBucket(rate=settings.replay_rate_per_second, capacity=settings.replay_burst)
    replayed, fix_ids = 0, []
    try:
        for collection in loaded.collections:
            result = await run_fix(
                request(collection, batch, dry_run=False),
                project_id=loaded.project_id,
                actor="bench",
                sessions=sessions,
                producer=producer,
                bucket=bucket,
                cap=settings.replay_cap,
                geoip_database=settings.geoip_database,
            )
            replayed += result["replayed"]
            fix_ids.append(result["fix_id"])
            if result["remaining"] or result["refused"]:
                raise RuntimeError(f"apply left work: {result['remaining']}, {result['refused']}")
    finally:
        await producer.stop()
    return replayed, fix_ids


def measure_apply(
    loaded: Loaded, args: argparse.Namespace, figures: Figures, bootstrap: str, tmp: Path
) -> None:
    from tests.support.worker import WorkerProcess

    settings = Settings()
    engine = make_engine(loaded.url)
    sessions = sessionmaker(engine)
    topics = [inbound_topic(loaded.project_id, c) for c in loaded.collections]
    asyncio.run(create_topics(bootstrap, topics, PARTITIONS))
    worker = WorkerProcess(loaded.url, bootstrap, tmp / f"worker-{figures.db}").start()
    try:
        started = time.perf_counter()
        replayed, fix_ids = asyncio.run(
            apply_all(loaded, sessions, args.batch, settings, bootstrap)
        )
        produced = time.perf_counter() - started
        deadline = time.monotonic() + args.timeout
        while (stored := count(engine, Event, loaded.project_id)) < replayed:
            if not worker.alive():
                raise RuntimeError(f"the worker died:\n{worker.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{stored}/{replayed} events stored after {args.timeout} s")
            time.sleep(0.1)
        end_to_end = time.perf_counter() - started
        with engine.connect() as conn:
            outcomes = conn.execute(select(IngestError.replay_outcome)).scalars().all()
        good = sum(
            1
            for o in outcomes
            if o and o.get("status") == "accepted" and o.get("fix_id") in fix_ids
        )
        figures.apply = {
            "replayed": replayed,
            "stored": stored,
            "outcomes_accepted": good,
            "produce_s": produced,
            "end_to_end_s": end_to_end,
            "rate": settings.replay_rate_per_second,
            "burst": settings.replay_burst,
        }
        print(
            f"{figures.db}: apply replayed {replayed:,} in {produced:.1f} s, all {stored:,} "
            f"stored after {end_to_end:.1f} s",
            flush=True,
        )
    finally:
        worker.stop()
        engine.dispose()


def at_rate(n: int, rate: float, burst: int) -> float:
    """Seconds the token bucket needs for ``n`` replays: the burst at once, then ``rate``/s."""
    return max(0, n - burst) / rate


def print_tables(all_figures: list[Figures], args: argparse.Namespace) -> None:
    print(f"\n{' '.join(sys.argv)}\n")
    print(
        "| database | errors | pipeline ev/s | preview (run_fix) ev/s | ratio | "
        "reading the rows s | preview less the read ev/s | ratio | "
        "runs: pipeline / run_fix / read (s) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for f in all_figures:
        if not f.preview_s:
            continue
        pl = f.events / min(f.pipeline_s)
        pv = f.events / min(f.preview_s)
        read = min(f.read_s)
        # The preview's own work: its best run less the best read (both measured here).
        less = f.events / max(min(f.preview_s) - read, 1e-9)
        runs = ", ".join(
            f"{a:.2f}/{b:.2f}/{c:.2f}"
            for a, b, c in zip(f.pipeline_s, f.preview_s, f.read_s, strict=True)
        )
        print(
            f"| {f.db} | {f.events:,} | {pl:,.0f} | {pv:,.0f} | {pv / pl:.0%} | "
            f"{read:.2f} | {less:,.0f} | {less / pl:.0%} | {runs} |"
        )
    print(
        f"\npreview: run_fix dry_run, {len(all_figures[0].preview_s) and args.batch:,} errors "
        "per call (one call per collection); best of "
        f"{args.repeat}; median preview/pipeline ratio "
        + ", ".join(
            f"{f.db} {statistics.median(f.pipeline_s) / statistics.median(f.preview_s):.0%}"
            for f in all_figures
            if f.preview_s
        )
    )
    applied = [f for f in all_figures if f.apply]
    if not applied:
        return
    print(
        "\n| database | replayed | stored | outcomes accepted | produce s | end-to-end s | "
        "ev/s end-to-end | rate/s, burst (set) | at the default 50/s, burst 500 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for f in applied:
        a = f.apply
        default = at_rate(a["replayed"], DEFAULT_RATE, DEFAULT_BURST)
        print(
            f"| {f.db} | {a['replayed']:,} | {a['stored']:,} | {a['outcomes_accepted']:,} | "
            f"{a['produce_s']:.1f} | {a['end_to_end_s']:.1f} | "
            f"{a['replayed'] / a['end_to_end_s']:,.0f} | {a['rate']:,.0f}, {a['burst']:,} | "
            f"≥ {default:,.0f} s ({default / 60:.0f} min) |"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--databases", default="sqlite")
    p.add_argument("--postgres-url", default=None, help="a server to create the database on")
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=10_000, help="errors per run_fix call")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--skip-apply", action="store_true")
    p.add_argument("--bootstrap", default=None, help="a broker instead of a local one")
    p.add_argument("--replay-rate", type=float, default=1_000_000.0)
    p.add_argument("--replay-burst", type=int, default=None, help="default: --events")
    p.add_argument("--timeout", type=float, default=1800.0)
    p.add_argument("--profile", default=None, help="cProfile output file of one preview pass")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if not set(args.databases) <= {"sqlite", "postgresql"} or not args.databases:
        p.error("--databases takes sqlite and/or postgresql")
    if args.replay_burst is None:
        args.replay_burst = args.events
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    # The apply runs at the configured rate: configured here, read back through Settings.
    os.environ["INBOUND_REPLAY_RATE_PER_SECOND"] = str(args.replay_rate)
    os.environ["INBOUND_REPLAY_BURST"] = str(args.replay_burst)
    tmp = Path(tempfile.mkdtemp(prefix="inbound-fix-bench-"))
    all_figures: list[Figures] = []
    try:
        with broker(args, tmp) if not args.skip_apply else _nothing() as bootstrap:
            for kind in args.databases:
                with database(kind, tmp, args.postgres_url) as url:
                    started = time.perf_counter()
                    loaded = load(url, args.events, args.batch, args.seed)
                    print(
                        f"{kind}: {args.events:,} rejected events stored through BatchWriter "
                        f"in {time.perf_counter() - started:.0f} s",
                        flush=True,
                    )
                    figures = Figures(kind, args.events)
                    all_figures.append(figures)
                    measure_preview(loaded, args, figures)
                    if bootstrap:
                        measure_apply(loaded, args, figures, bootstrap, tmp)
        print_tables(all_figures, args)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    main()
