"""Ingest worker benchmark: throughput and end-to-end latency, next to a bare-consumer baseline.

    .venv/bin/python -m bench.worker_bench                       # defaults, ~2-3 min on 2 cores
    .venv/bin/python -m bench.worker_bench --events 100000 --mixes 0.2 --profile /tmp/prof
    .venv/bin/python -m bench.worker_bench --mix burst           # 100% invalid, worker only

What it does, for each invalid-event share in ``--mixes``:

1. Starts a real local Kafka broker (KRaft, data in a temp dir, free ports) unless
   ``--bootstrap`` names one, and makes fresh databases: SQLite files in the temp dir, or,
   with ``--database-url postgresql+psycopg://...``, new databases on that server (dropped
   afterwards). Each is migrated; the worker's gets a project with its standard keys.
2. **Throughput**: produces ``--events`` realistic JSON events (~400 bytes: strings, numbers,
   nested objects, arrays, a user agent, an IP, a URL; half carry ``keen.timestamp``) to a
   fresh ``in.<project>.<collection>`` topic with a batching producer, every record with the
   ``inbound.key_id`` header of the project's write key (as the edge gateway sets it). A share
   of them is invalid: invalid JSON, bad property names (``a.b``, ``$x``, empty) and
   not-an-object values, in equal parts. Then the system under test is started as a
   subprocess, and the time from the first row visible in the database to the last expected
   one is measured by counting rows every 50 ms. Throughput = rows stored after the first
   sighting / that time. Rows: for the worker ``events`` + ``ingest_errors`` (every event
   ends up as one or the other); for the baseline ``events`` only (it skips invalid events).
3. **Latency**: with the system still running, produces ``--rate`` events/s for ``--duration``
   seconds (same mix) to a topic it already subscribes to; each event carries its produce
   wall-clock time (``bench_sent_at``), and a poller reads newly visible rows every 20 ms and
   records visible time - produce time for the valid ones (the poll period adds ~10 ms on
   average). Prints p50 and p99.
4. Does 2 and 3 for the worker (``python -m app.cli.main worker``) and for the baseline
   (bench/baseline_consumer.py: aiokafka ``getmany`` up to 2,000 records + orjson + one
   ``executemany`` + manual commit into the ``events`` table of its own fresh database). The
   baseline reads the same throughput topic with its own consumer group, and its own latency
   topic (``bench.<project>.<collection>``, outside the worker's ``in.*`` pattern).
5. The ``burst`` mix (``--mix burst``, or a share of 1 in ``--mixes``) is every event invalid:
   a producer gone wrong, before the DLQ circuit breaker trips. So that the run measures the
   worker storing errors (and not a paused partition), the bench project gets the option
   ``dlq_pause_ratio: 1.0`` whenever the share is at or above the worker's default breaker
   ratio (a window trips only when its rejected share is *above* the limit); the output says
   so, and checks afterwards that no stream was paused. The baseline stores no rows at 100%
   invalid (it skips invalid events), so it is not run for that mix and there is no ratio.
6. Prints a table: system | events | invalid share | throughput ev/s | ratio to baseline |
   p50 ms | p99 ms. Everything it started (broker, subprocesses, profilers, databases) is
   stopped or removed on exit, Ctrl-C included.

Flags:
  --events N           events per mix for the throughput phase (default 50000)
  --mixes A,B          invalid shares, one run per share (default 0,0.2)
  --invalid-share X    a single mix; same as --mixes X
  --mix NAME           a named mix instead of --mixes: standard (0,0.2) or burst (1: every
                       event invalid, breaker held open as described above)
  --rate R             latency phase produce rate, events/s (default 1000)
  --duration S         latency phase length, seconds (default 10; 0 skips the phase)
  --partitions P       partitions of each bench topic (default 3, as the local broker's default)
  --systems LIST       worker,baseline (default both)
  --addons-share X     share of valid events that request keen:ua_parser and keen:url_parser
                       (default 0; the baseline does no enrichment either way)
  --bootstrap HOST:P   use this broker instead of starting one; it must not hold other
                       unconsumed in.* topics (the worker reads them all)
  --database-url URL   PostgreSQL server to create the fresh databases on (default: SQLite)
  --profile DIR        record the worker and the baseline with py-spy during the throughput
                       phase (raw collapsed stacks in DIR, top functions printed)
  --timeout S          longest wait for one phase (default 300)
  --seed N             random seed of the event generator (default 7)
  --keep               keep the temp dir (databases, worker and broker logs)

The broker, the system under test and this script share the machine, so the figures are
for comparing the worker with the baseline within one run, not absolute capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from app.contract import headers as h
from app.settings import Settings
from app.store.db import make_engine, session_scope
from app.store.keys import find_key
from app.store.migrate import upgrade
from app.store.models import Event, IngestError, Project, StreamPause
from app.store.projects import create_project
from bench.backend_kafka import aiokafka_options
from tests.support.ports import free_kafka_base, free_port

REPO = Path(__file__).resolve().parents[1]
# Named mixes (--mix): invalid shares, one run each.
MIXES = {"standard": "0,0.2", "burst": "1"}
COUNT_POLL_S = 0.05
LATENCY_POLL_S = 0.02

# -- events ------------------------------------------------------------------------------------

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
]
EVENT_TYPES = ["page_view", "add_to_cart", "purchase", "signup", "search", "checkout"]
PLANS = ["free", "starter", "pro", "enterprise"]
SECTIONS = ["products", "blog", "docs", "pricing", "cart", "account"]
SOURCES = ["google", "newsletter", "twitter", "direct", "partner"]
TAGS = ["new", "returning", "mobile", "promo", "beta", "vip", "trial", "eu", "us"]
BAD_NAMES = ["user.id", "$price", ""]
NOT_OBJECTS = [b"[1, 2, 3]", b'"just a string"', b"42", b"null"]


def valid_event(rng: random.Random, seq: int, addons: bool = False) -> dict:
    """One realistic event (~400 bytes once serialised)."""
    section = rng.choice(SECTIONS)
    items = [
        {"sku": f"SKU-{rng.randrange(100000):05d}", "qty": rng.randrange(1, 4)}
        for _ in range(rng.randrange(1, 3))
    ]
    event: dict = {
        "type": rng.choice(EVENT_TYPES),
        "seq": seq,
        "user": {
            "id": f"u{rng.randrange(10**7):07d}",
            "plan": rng.choice(PLANS),
            "age_days": rng.randrange(3000),
        },
        "ip": f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "ua": rng.choice(USER_AGENTS),
        "page": {
            "url": f"https://shop.example.com/{section}/{rng.randrange(10000)}"
            f"?utm_source={rng.choice(SOURCES)}",
            "load_ms": rng.randrange(40, 4000),
        },
        "cart": {"items": items, "total": round(rng.uniform(1, 500), 2)},
        "tags": rng.sample(TAGS, rng.randrange(0, 3)),
        "first_visit": rng.random() < 0.2,
    }
    if rng.random() < 0.5:
        moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(10**7))
        event["keen"] = {"timestamp": moment.isoformat().replace("+00:00", "Z")}
    if addons:
        event.setdefault("keen", {})["addons"] = [
            {"name": "keen:ua_parser", "input": {"ua_string": "ua"}, "output": "ua_info"},
            {"name": "keen:url_parser", "input": {"url": "page.url"}, "output": "url_info"},
        ]
    return event


def invalid_value(rng: random.Random, seq: int) -> bytes:
    """Invalid JSON, a bad property name or not an object, in turn."""
    kind = seq % 3
    if kind == 0:
        return orjson.dumps(valid_event(rng, seq))[:-7]  # truncated: not JSON
    if kind == 1:
        event = valid_event(rng, seq)
        event[BAD_NAMES[(seq // 3) % len(BAD_NAMES)]] = 1
        return orjson.dumps(event)
    return NOT_OBJECTS[(seq // 3) % len(NOT_OBJECTS)]


def invalid_positions(n: int, share: float, rng: random.Random) -> set[int]:
    return set(rng.sample(range(n), round(n * share)))


def make_values(n: int, share: float, seed: int, addons_share: float) -> tuple[list[bytes], int]:
    """n serialised events and how many of them are valid."""
    rng = random.Random(seed)
    bad = invalid_positions(n, share, rng)
    values = [
        invalid_value(rng, i)
        if i in bad
        else orjson.dumps(valid_event(rng, i, rng.random() < addons_share))
        for i in range(n)
    ]
    return values, n - len(bad)


# -- kafka -------------------------------------------------------------------------------------


async def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(**aiokafka_options(bootstrap))
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
        )
    finally:
        await admin.close()


async def produce_fast(
    bootstrap: str, topic: str, values: list[bytes], headers: list, partitions: int
) -> float:
    """Produce every value in full batches, round-robin over partitions; returns events/s."""
    producer = AIOKafkaProducer(
        acks="all", linger_ms=20, max_batch_size=512 * 1024, **aiokafka_options(bootstrap)
    )
    await producer.start()
    started = time.perf_counter()
    try:
        futures = []
        partition = 0
        batch = producer.create_batch()
        for value in values:
            if batch.append(key=None, value=value, timestamp=None, headers=headers) is None:
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                partition = (partition + 1) % partitions
                batch = producer.create_batch()
                batch.append(key=None, value=value, timestamp=None, headers=headers)
        if batch.record_count():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(values) / (time.perf_counter() - started)


async def produce_at_rate(
    bootstrap: str,
    topic: str,
    rate: float,
    duration: float,
    share: float,
    seed: int,
    headers: list,
    partitions: int,
) -> int:
    """Produce rate events/s for duration seconds; valid ones carry bench_sent_at. Returns valid."""
    rng = random.Random(seed)
    total = int(rate * duration)
    bad = invalid_positions(total, share, rng)
    templates = {i: valid_event(rng, i) for i in range(total) if i not in bad}
    invalid = {i: invalid_value(rng, i) for i in bad}
    producer = AIOKafkaProducer(acks="all", linger_ms=0, **aiokafka_options(bootstrap))
    await producer.start()
    try:
        futures = []
        start = time.monotonic()
        i = 0
        while i < total:
            due = min(total, int((time.monotonic() - start) * rate) + 1)
            while i < due:
                if i in bad:
                    value = invalid[i]
                else:
                    event = templates.pop(i)
                    event["bench_sent_at"] = time.time()
                    value = orjson.dumps(event)
                futures.append(
                    await producer.send(topic, value, partition=i % partitions, headers=headers)
                )
                i += 1
            await asyncio.sleep(0.002)
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return total - len(bad)


# -- databases ---------------------------------------------------------------------------------


class Databases:
    """Fresh databases: SQLite files in a directory, or new databases on a PostgreSQL server."""

    def __init__(self, directory: Path, server_url: str | None) -> None:
        self.directory = directory
        self.server_url = server_url
        self.created: list[str] = []

    def fresh(self, role: str) -> str:
        if not self.server_url:
            return f"sqlite:///{self.directory / f'{role}.db'}"
        import psycopg

        base = make_url(self.server_url)
        name = f"inbound_bench_{uuid.uuid4().hex[:8]}_{role}".replace("-", "_")
        admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return base.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if not self.server_url or not self.created:
            return
        import psycopg

        admin = make_url(self.server_url).set(drivername="postgresql")
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as c:
            for name in self.created:
                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


def count_rows(engine: Engine, project_id: str, collection: str, errors: bool) -> int:
    """events (+ ingest_errors) rows of one collection."""
    with engine.connect() as conn:
        n = conn.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.project_id == project_id, Event.collection == collection)
        )
        if errors:
            n += conn.scalar(
                select(func.count())
                .select_from(IngestError)
                .where(IngestError.project_id == project_id, IngestError.collection == collection)
            )
    return n


# -- processes ---------------------------------------------------------------------------------


class Processes:
    """Every child this script starts, so all of them are stopped on the way out."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen] = []

    def start(self, cmd: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches this script only; it stops them
            )
        self.children.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, wait: float = 20) -> None:
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if proc in self.children:
            self.children.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.children):
            self.stop(proc)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# -- measurement -------------------------------------------------------------------------------


@dataclass
class Result:
    system: str
    share: float
    events: int
    rows: int = 0
    throughput: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    latency_samples: int = 0
    latency_rate: float = 0.0
    notes: list[str] = field(default_factory=list)


class SystemDied(RuntimeError):
    pass


def measure_throughput(
    counter: Callable[[], int],
    expected: int,
    proc: subprocess.Popen,
    log: Path,
    timeout: float,
    on_first_row: Callable[[], None] | None = None,
) -> tuple[float | None, int]:
    """Rows/s from the first visible row to the expected count; also returns rows measured."""
    deadline = time.monotonic() + timeout
    first_at, first_count = None, 0
    while True:
        count = counter()
        now = time.perf_counter()
        if count and first_at is None:
            first_at, first_count = now, count
            if on_first_row:
                on_first_row()
        if count >= expected:
            break
        if proc.poll() is not None:
            raise SystemDied(f"exited with {proc.returncode}:\n{tail(log)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count}/{expected} rows after {timeout:.0f}s:\n{tail(log)}")
        time.sleep(COUNT_POLL_S)
    assert first_at is not None
    measured = expected - first_count
    if measured <= 0 or now <= first_at:
        return None, 0
    return measured / (now - first_at), measured


class LatencyPoller(threading.Thread):
    """Reads newly visible rows every 20 ms and records visible - produce time (ms)."""

    def __init__(self, engine: Engine, project_id: str, collection: str) -> None:
        super().__init__(daemon=True, name="latency-poller")
        self.engine = engine
        self.project_id = project_id
        self.collection = collection
        self.samples: list[float] = []
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        last_id = 0
        query = select(Event.id, Event.body).where(
            Event.project_id == self.project_id, Event.collection == self.collection
        )
        try:
            with self.engine.connect() as conn:
                while not self.done.is_set():
                    rows = conn.execute(query.where(Event.id > last_id).order_by(Event.id)).all()
                    seen = time.time()
                    conn.rollback()  # a fresh snapshot next time
                    for row_id, body in rows:
                        last_id = row_id
                        sent = body.get("bench_sent_at")
                        if sent is not None:
                            self.samples.append((seen - sent) * 1000)
                    time.sleep(LATENCY_POLL_S)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            self.error = exc


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# -- profiling ---------------------------------------------------------------------------------


class Profiler:
    """py-spy record (raw collapsed stacks) of one pid, started and stopped around a phase."""

    def __init__(self, procs: Processes, out: Path) -> None:
        self.procs = procs
        self.out = out
        self.proc: subprocess.Popen | None = None

    def start(self, pid: int) -> None:
        py_spy = Path(sys.executable).with_name("py-spy")
        cmd = [
            str(py_spy if py_spy.exists() else "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "200",
            "--nonblocking",
            "-o",
            str(self.out),
        ]
        self.proc = self.procs.start(cmd, self.out.with_suffix(".log"))

    def stop(self) -> None:
        if self.proc is not None:
            self.procs.stop(self.proc, signal.SIGINT, wait=30)
            self.proc = None


# Inclusive time is listed for the project's own functions (app/, bench/), without the
# entry points that every sample of a process passes through.
_ENTRY_POINTS = ("<module> (", "(app/cli/", "run_worker (", "main (bench/", "consume (bench/")


def _function(frame: str) -> str:
    """'name (path/file.py:123)' -> 'name (path/file.py)': a function, not a line."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def summarize_profile(path: Path, top: int = 15) -> str:
    """Top functions by own and by inclusive samples, from py-spy's raw collapsed output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"  (no profile at {path}; see {path.with_suffix('.log')})"
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            if ("(app/" in frame or "(bench/" in frame) and not any(
                p in frame for p in _ENTRY_POINTS
            ):
                inclusive[frame] += count
    if not total:
        return "  (empty profile)"
    out = [f"  {total} samples (all threads, idle excluded); own time:"]
    out += [f"    {n / total:6.1%}  {frame}" for frame, n in own.most_common(top)]
    out.append("  inclusive time, project functions:")
    out += [f"    {n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(out)


# -- one run -----------------------------------------------------------------------------------


@dataclass
class Setup:
    bootstrap: str
    tmp: Path
    procs: Processes
    dbs: Databases
    args: argparse.Namespace


def make_project(url: str, options: dict | None = None) -> tuple[str, str]:
    """Migrate a fresh database and create a project; returns (project_id, write key id)."""
    upgrade(url)
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            project = create_project(session, "bench")
            key = find_key(session, project["write_key"])
            assert key is not None
            if options:
                row = session.get(Project, project["project_id"])
                assert row is not None
                row.options = {**(row.options or {}), **options}
            return project["project_id"], key.id
    finally:
        engine.dispose()


def holds_breaker_open(share: float) -> bool:
    """Whether a mix this invalid would trip the worker's default DLQ circuit breaker."""
    return share >= Settings().dlq_pause_ratio


def paused_streams(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(StreamPause)) or 0
    finally:
        engine.dispose()


def run_system(
    setup: Setup,
    system: str,
    share: float,
    tag: str,
    values: list[bytes],
    valid: int,
    tput_topic: str,
    project_id: str,
    key_id: str,
    db_url: str,
) -> Result:
    args = setup.args
    result = Result(system, share, len(values))
    collection = tput_topic.split(".", 2)[2]
    headers = [(h.KEY_ID, key_id.encode())]
    log = setup.tmp / f"{system}-{tag}.log"
    engine = make_engine(db_url)
    if system == "worker":
        lat_topic = f"in.{project_id}.lat_{tag}"
        data_dir = setup.tmp / f"worker-{tag}"
        data_dir.mkdir(exist_ok=True)
        env = {
            **os.environ,
            "INBOUND_DATABASE_URL": db_url,
            "INBOUND_KAFKA_BOOTSTRAP": setup.bootstrap,
            "INBOUND_DATA_DIR": str(data_dir),
            "INBOUND_WORKER_METRICS_PORT": str(free_port()),
        }
        cmd = [sys.executable, "-m", "app.cli.main", "worker"]
        expected = len(values)  # every event is an events or an ingest_errors row
    else:
        lat_topic = f"bench.{project_id}.lat_{tag}"
        env = None
        cmd = [
            sys.executable,
            "-m",
            "bench.baseline_consumer",
            "--bootstrap",
            setup.bootstrap,
            "--database-url",
            db_url,
            "--group",
            f"bench-baseline-{uuid.uuid4().hex[:8]}",
            "--topics",
            f"{tput_topic},{lat_topic}",
        ]
        expected = valid  # the baseline stores the valid events and skips the rest
    with_errors = system == "worker"
    asyncio.run(create_topics(setup.bootstrap, [lat_topic], args.partitions))
    proc = setup.procs.start(cmd, log, env)
    profiler = Profiler(setup.procs, setup.tmp / f"{system}-{tag}.pyspy.txt")
    profiling = args.profile is not None
    try:
        rate, measured = measure_throughput(
            lambda: count_rows(engine, project_id, collection, with_errors),
            expected,
            proc,
            log,
            args.timeout,
            on_first_row=(lambda: profiler.start(proc.pid)) if profiling else None,
        )
        profiler.stop()
        result.throughput, result.rows = rate, expected
        if measured < expected:
            result.notes.append(f"{system} {tag}: {expected - measured} rows before first sighting")
        if profiling:
            dest = Path(args.profile) / profiler.out.name
            if profiler.out.exists():
                shutil.copy(profiler.out, dest)
            print(f"\n[{system}, invalid {share:.0%}] py-spy, throughput phase ({dest}):")
            print(summarize_profile(profiler.out))
        if args.duration > 0:
            lat_collection = lat_topic.split(".", 2)[2]
            poller = LatencyPoller(engine, project_id, lat_collection)
            poller.start()
            lat_valid = asyncio.run(
                produce_at_rate(
                    setup.bootstrap,
                    lat_topic,
                    args.rate,
                    args.duration,
                    share,
                    args.seed + 1,
                    headers,
                    args.partitions,
                )
            )
            deadline = time.monotonic() + args.timeout
            while len(poller.samples) < lat_valid and poller.error is None:
                if proc.poll() is not None:
                    raise SystemDied(f"exited with {proc.returncode}:\n{tail(log)}")
                if time.monotonic() > deadline:
                    result.notes.append(
                        f"{system} {tag}: only {len(poller.samples)}/{lat_valid} latency events"
                    )
                    break
                time.sleep(0.1)
            poller.done.set()
            poller.join(5)
            if poller.error is not None:
                raise poller.error
            result.latency_rate = args.rate
            if poller.samples:
                result.p50_ms = percentile(poller.samples, 0.50)
                result.p99_ms = percentile(poller.samples, 0.99)
                result.latency_samples = len(poller.samples)
            if with_errors:
                # Let the worker store (and commit) the rejected ones too before it stops,
                # so the next run's worker has nothing left over to read.
                total = int(args.rate * args.duration)
                end = time.monotonic() + 30
                while count_rows(engine, project_id, lat_collection, True) < total:
                    if time.monotonic() > end:
                        break
                    time.sleep(0.1)
    finally:
        profiler.stop()
        setup.procs.stop(proc)
        engine.dispose()
    return result


def run_mix(setup: Setup, share: float) -> list[Result]:
    args = setup.args
    tag = f"m{round(share * 100)}"
    values, valid = make_values(args.events, share, args.seed, args.addons_share)
    worker_url = setup.dbs.fresh(f"worker_{tag}")
    burst = holds_breaker_open(share)
    project_id, key_id = make_project(worker_url, {"dlq_pause_ratio": 1.0} if burst else None)
    if burst:
        print(
            f"[invalid {share:.0%}] burst: project option dlq_pause_ratio=1.0 (worker default "
            f"{Settings().dlq_pause_ratio}), so the DLQ circuit breaker does not trip",
            flush=True,
        )
    baseline_url = setup.dbs.fresh(f"baseline_{tag}")
    upgrade(baseline_url)
    tput_topic = f"in.{project_id}.tput_{tag}"
    asyncio.run(create_topics(setup.bootstrap, [tput_topic], args.partitions))
    headers = [(h.KEY_ID, key_id.encode())]
    avg = sum(map(len, values)) / len(values)
    rate = asyncio.run(produce_fast(setup.bootstrap, tput_topic, values, headers, args.partitions))
    print(
        f"[invalid {share:.0%}] produced {len(values):,} events ({valid:,} valid, "
        f"{avg:.0f} bytes on average) to {tput_topic} at {rate:,.0f} ev/s",
        flush=True,
    )
    results = []
    for system in args.systems:
        if system == "baseline" and share >= 1:
            print(f"[invalid {share:.0%}] baseline: not run (it would store no rows)", flush=True)
            continue
        url = worker_url if system == "worker" else baseline_url
        res = run_system(
            setup, system, share, tag, values, valid, tput_topic, project_id, key_id, url
        )
        tput = f"{res.throughput:,.0f} ev/s" if res.throughput else "n/a"
        p50 = f"{res.p50_ms:.1f}" if res.p50_ms is not None else "n/a"
        p99 = f"{res.p99_ms:.1f}" if res.p99_ms is not None else "n/a"
        print(
            f"[invalid {share:.0%}] {system}: {res.rows:,} rows, {tput}; latency p50 {p50} ms, "
            f"p99 {p99} ms over {res.latency_samples:,} events",
            flush=True,
        )
        if system == "worker" and burst:
            pauses = paused_streams(worker_url)
            res.notes.append(
                f"worker at {share:.0%} invalid: breaker held open by dlq_pause_ratio=1.0; "
                f"{pauses} stream(s) paused" + ("" if pauses else " (it did not trip)")
            )
        results.append(res)
    return results


def print_table(results: list[Result]) -> None:
    base = {r.share: r.throughput for r in results if r.system == "baseline"}
    header = [
        "system",
        "events",
        "invalid share",
        "throughput ev/s",
        "ratio to baseline",
        "p50 ms",
        "p99 ms",
    ]
    rows = []
    for r in results:
        b = base.get(r.share)
        rows.append(
            [
                r.system,
                f"{r.events:,}",
                f"{r.share:.0%}",
                f"{r.throughput:,.0f}" if r.throughput else "n/a",
                f"{r.throughput / b:.2f}" if r.throughput and b else "n/a",
                f"{r.p50_ms:.1f}" if r.p50_ms is not None else "n/a",
                f"{r.p99_ms:.1f}" if r.p99_ms is not None else "n/a",
            ]
        )
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    line = " | ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    print()
    print(line.format(*header))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))
    print(
        "\nthroughput: rows stored from the first visible row to the last (worker: events + "
        "ingest_errors; baseline: events only, invalid events skipped); latency: produce -> "
        "row visible, valid events only, 20 ms polling."
    )
    for r in results:
        for note in r.notes:
            print(f"note: {note}")
        if r.throughput and r.p50_ms is not None and r.latency_rate > 0.5 * r.throughput:
            print(
                f"note: {r.system} at {r.share:.0%} invalid: the latency rate "
                f"({r.latency_rate:,.0f} ev/s) is {r.latency_rate / r.throughput:.0%} of its "
                "measured throughput, so its latency includes queueing"
            )


@contextmanager
def broker(args: argparse.Namespace, tmp: Path) -> Iterator[str]:
    if args.bootstrap:
        yield args.bootstrap
        return
    from app.kafka import local

    data_dir = tmp / "kafka"
    started = time.perf_counter()
    try:
        state = local.start(
            data_dir, Settings().cache_dir, base_port=free_kafka_base(1), nodes=1, timeout=120
        )
        print(
            f"local Kafka at {state.bootstrap} ({time.perf_counter() - started:.0f}s)", flush=True
        )
        yield state.bootstrap
    finally:
        local.stop(data_dir)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Ingest worker benchmark (see the module docstring).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--mixes", default="0,0.2")
    p.add_argument("--invalid-share", type=float, default=None)
    p.add_argument("--mix", choices=sorted(MIXES), default=None)
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--systems", default="worker,baseline")
    p.add_argument("--addons-share", type=float, default=0.0)
    p.add_argument("--bootstrap", default=None)
    p.add_argument("--database-url", default=None)
    p.add_argument("--profile", default=None)
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    if args.invalid_share is not None:
        args.mixes = str(args.invalid_share)
    if args.mix is not None:
        args.mixes = MIXES[args.mix]
    args.shares = [float(x) for x in args.mixes.split(",") if x.strip()]
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if not set(args.systems) <= {"worker", "baseline"} or not args.systems:
        p.error("--systems takes worker and/or baseline")
    if any(not 0 <= s <= 1 for s in args.shares):
        p.error("invalid shares are in [0, 1]")
    if args.database_url and not args.database_url.startswith("postgresql"):
        p.error("--database-url is a PostgreSQL server URL (the default is SQLite)")
    return args


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Ctrl-C and SIGTERM both unwind through the cleanup below (SIGINT explicitly: a shell
    # starts background jobs with it ignored, and Python would keep that).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    # Producing right after creating a topic logs a retried NotLeaderForPartition; noise here.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="inbound-bench-"))
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    procs = Processes()
    dbs = Databases(tmp, args.database_url)
    results: list[Result] = []
    try:
        with broker(args, tmp) as bootstrap:
            setup = Setup(bootstrap, tmp, procs, dbs, args)
            try:
                for share in args.shares:
                    results += run_mix(setup, share)
            finally:
                procs.stop_all()
        print_table(results)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything", file=sys.stderr)
        if results:
            print_table(results)
        raise SystemExit(130) from None
    except (SystemDied, TimeoutError) as exc:
        print(f"error: system under test: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        procs.stop_all()
        dbs.drop_all()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
