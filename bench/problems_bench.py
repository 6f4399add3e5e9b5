"""Problems list benchmark: ``GET /3.0/projects/{id}/problems`` over 1,000,000 error rows.

    .venv/bin/python -m bench.problems_bench                     # SQLite and a throwaway PostgreSQL
    .venv/bin/python -m bench.problems_bench --databases sqlite --errors 200000
    .venv/bin/python -m bench.problems_bench --postgres-url postgresql+psycopg://user@host/db

For each database: migrates a fresh one (a SQLite file in a temp dir; on PostgreSQL a new
database on the server of ``--postgres-url``, or on one started from Debian's binaries the
way tests/support/postgres.py does), creates a project with three sending keys, and loads
``--errors`` error rows spread over ``--problems`` problems of that project (skewed as real
failures are: a few problems hold most errors), over the last 14 days in time order, plus a
tenth as many in another project so the project filter has work to do. The rows are generated
directly (the worker's raw many-row insert on SQLite, COPY on PostgreSQL) together with the
``problems``, ``problem_hours`` and ``problem_keys`` rows they imply, and the load is checked:
every problem's count equals its error rows, and its hours and keys sum to it.

Then a real ``inbound api`` (subprocess, tests/support/cli.py's ApiProcess) serves the database
and each case is requested ``--requests`` times with one keep-alive httpx client after
``--warmup`` unmeasured requests: the default order, ``sort=count``, a ``code=`` filter and the
second page through ``next_cursor``, and one page of ``--big-limit`` problems (default 500,
the route's largest: the sparkline sums grow with the page). Prints p50/p95/p99 (client-side,
the whole request) per database and case. The target: p99 under 100 ms (for the default page).

When the API has no problems route (it answers 404 for the path), the script times the SQL
the route is expected to run instead (one indexed page of ``problems``) and says so.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.engine import make_url

from app.contract.fingerprint import ProblemKey as Fingerprint
from app.contract.fingerprint import problem_of
from app.contract.topics import dlq_topic
from app.ingest.persist import ERROR_COLUMNS
from app.ingest.raw_insert import RawInsert
from app.store.db import make_engine, session_scope
from app.store.keys import create_key, find_key
from app.store.migrate import upgrade
from app.store.models import IngestError, Problem, ProblemHour, ProblemKey
from app.store.projects import create_project

SPAN = timedelta(days=14)
CHUNK = 20_000
COLLECTIONS = [
    "purchases", "pageviews", "signups", "searches", "checkouts",
    "add_to_cart", "logins", "shares", "reviews", "refunds",
]  # fmt: skip
# Codes without a path: one problem per collection and code.
PATHLESS = [
    ("invalid_json", "decode", "Unexpected character at line 1 column 412"),
    ("not_an_object", "decode", "The event is a JSON array, not an object"),
    ("empty_value", "decode", "The record value is empty"),
    ("event_too_large", "decode", "The event is larger than 900 KB"),
    ("invalid_utf8", "decode", "The event is not valid UTF-8"),
]
REASONS = ["starts with '$'", "empty", "contains the NUL character", "longer than 256 characters"]
# Share of the errors each sending key sends.
KEY_SHARES = [("web", 0.80), ("mobile-app", 0.15), ("legacy-importer", 0.05)]


@dataclass(frozen=True)
class Spec:
    """One problem to generate: what its error rows say."""

    fingerprint: Fingerprint
    collection: str
    code: str
    stage: str
    message: str
    detail: dict
    status: str


def catalog(project_id: str, n: int) -> list[Spec]:
    """``n`` distinct problems over the collections: pathless codes first, then locations."""
    specs: list[Spec] = []
    for collection in COLLECTIONS:
        for code, stage, message in PATHLESS:
            specs.append(_spec(project_id, collection, code, stage, message, {}, len(specs)))
        specs.append(
            _spec(
                project_id,
                collection,
                "invalid_timestamp",
                "validate",
                "keen.timestamp is not an ISO-8601 date-time",
                {"path": "keen.timestamp"},
                len(specs),
            )
        )
    j = 0
    while len(specs) < n:
        collection = COLLECTIONS[j % len(COLLECTIONS)]
        if j % 10 == 9:
            detail = {"path": f"payload.level{j}" + ".x" * 33}
            code, message = "too_deeply_nested", "Nested more than 32 levels deep"
        else:
            reason = REASONS[j % len(REASONS)]
            name = "$price" if reason == "starts with '$'" else f"attr{j}"
            detail = {"path": f"items[{j % 7}].props{j}.{name}", "reason": reason}
            code, message = "invalid_property_name", f"Property name {reason}"
        specs.append(_spec(project_id, collection, code, "validate", message, detail, len(specs)))
        j += 1
    specs = specs[:n]
    assert len({s.fingerprint.problem_id for s in specs}) == n, "problem ids must be distinct"
    return specs


def _spec(
    project_id: str, collection: str, code: str, stage: str, message: str, detail: dict, i: int
) -> Spec:
    # Most problems are open; some resolved, ignored or regressed, as in a project in use.
    status = (
        "resolved" if i % 10 == 3 else "ignored" if i % 25 == 4 else "regressed" if i % 50 == 5
        else "open"
    )  # fmt: skip
    return Spec(
        problem_of(project_id, collection, code, detail),
        collection,
        code,
        stage,
        message,
        detail,
        status,
    )


@dataclass
class Tally:
    """What a problem's rows add up to, kept while its error rows are generated."""

    count: int = 0
    first: tuple[datetime, str] | None = None
    last: tuple[datetime, str] | None = None
    sample: tuple[str, str, int, int] | None = None  # error id, DLQ topic, partition, offset
    hours: Counter = field(default_factory=Counter)
    keys: dict[str, list] = field(default_factory=dict)


def _error_status(problem_status: str) -> str:
    return {"resolved": "resolved", "ignored": "ignored"}.get(problem_status, "open")


def generate(
    project_id: str, specs: list[Spec], key_ids: list[str], n: int, end: datetime, seed: int
) -> Iterator[tuple[list, Spec]]:
    """``n`` error rows (as ERROR_COLUMNS value lists) in time order, with their problem."""
    rng = random.Random(seed)
    weights = [1 / (k + 1) ** 1.1 for k in range(len(specs))]
    rng.shuffle(weights)
    # Every problem gets a row first, then the skewed draw.
    picks = list(range(len(specs))) + rng.choices(
        range(len(specs)), weights=weights, k=max(0, n - len(specs))
    )
    rng.shuffle(picks)
    key_picks = rng.choices(key_ids, weights=[w for _, w in KEY_SHARES], k=n)
    start = end - SPAN
    step = SPAN / n
    offsets: Counter = Counter()
    headers = [["inbound.key_id", "d2Vi"]]
    for i in range(n):
        spec = specs[picks[i]]
        at = start + step * i
        error_id = f"{rng.getrandbits(128):032x}"
        topic = f"in.{project_id}.{spec.collection}"
        source_partition = i % 3
        source_offset = offsets[(topic, source_partition)]
        offsets[(topic, source_partition)] += 1
        dlq = dlq_topic(project_id, spec.collection)
        payload = b'{"type":"purchase","items":[{"sku":"SKU-00042","qty":2}],"$price":' + (
            str(i).encode() + b"}"
        )
        row = [
            error_id, project_id, spec.collection, spec.code, spec.stage, spec.message,
            spec.detail, topic, source_partition, source_offset, at, payload, len(payload),
            uuid.UUID(int=rng.getrandbits(128)).hex * 2, None, headers, key_picks[i],
            _error_status(spec.status), 0, dlq, source_partition, source_offset,
            spec.fingerprint.problem_id, at, at,
        ]  # fmt: skip
        yield row, spec


def load_project(
    engine: Engine, project_id: str, key_ids: list[str], n_errors: int, n_problems: int, seed: int
) -> dict[str, Tally]:
    """Error rows and their problems, hours and keys rows; returns the tallies per problem."""
    specs = catalog(project_id, n_problems)
    by_id = {s.fingerprint.problem_id: s for s in specs}
    tallies = {pid: Tally() for pid in by_id}
    end = datetime.now(UTC).replace(microsecond=0)
    writer = RawInsert(
        engine.dialect.name,
        "ingest_errors",
        ERROR_COLUMNS,
        json_columns=("detail", "headers"),
        datetime_columns=("record_timestamp", "created_at", "updated_at"),
        conflict=("id",),
    )
    at_i, id_i, key_i = (ERROR_COLUMNS.index(c) for c in ("created_at", "id", "key_id"))
    dlq_i = ERROR_COLUMNS.index("dlq_topic")
    rows: list[tuple] = []
    for values, spec in generate(project_id, specs, key_ids, n_errors, end, seed):
        at, error_id, key_id = values[at_i], values[id_i], values[key_i]
        t = tallies[spec.fingerprint.problem_id]
        t.count += 1
        if t.first is None:
            t.first = (at, error_id)
        t.last = (at, error_id)  # rows come in time order
        t.sample = (error_id, values[dlq_i], values[dlq_i + 1], values[dlq_i + 2])
        t.hours[at.replace(minute=0, second=0, microsecond=0)] += 1
        seen = t.keys.get(key_id)
        if seen is None:
            t.keys[key_id] = [1, at]
        else:
            seen[0] += 1
            seen[1] = at
        rows.append(writer.row(values))
        if len(rows) >= CHUNK:
            _write_errors(engine, writer, rows)
            rows.clear()
    if rows:
        _write_errors(engine, writer, rows)
    _write_problems(engine, project_id, by_id, tallies, end)
    return tallies


def _write_errors(engine: Engine, writer: RawInsert, rows: list[tuple]) -> None:
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            writer.execute(conn, rows)
        return
    # COPY: several times faster than a many-row INSERT for a million rows.
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy(f"COPY ingest_errors ({', '.join(ERROR_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def _write_problems(
    engine: Engine,
    project_id: str,
    specs: dict[str, Spec],
    tallies: dict[str, Tally],
    now: datetime,
) -> None:
    problems, hours, keys = [], [], []
    for pid, t in tallies.items():
        s = specs[pid]
        assert t.first is not None and t.last is not None and t.sample is not None
        changed = t.last[0] + timedelta(hours=1) if s.status != "open" else None
        problems.append(
            {
                "id": pid,
                "project_id": project_id,
                "collection": s.collection,
                "code": s.code,
                "stage": s.stage,
                "location": s.fingerprint.location,
                "title": s.fingerprint.title,
                "status": s.status,
                "count": t.count,
                "first_seen": t.first[0],
                "last_seen": t.last[0],
                "first_error_id": t.first[1],
                "last_error_id": t.last[1],
                "sample_error_id": t.sample[0],
                "sample_dlq_topic": t.sample[1],
                "sample_dlq_partition": t.sample[2],
                "sample_dlq_offset": t.sample[3],
                "status_changed_at": changed,
                "status_changed_by": "support@example.com" if changed else None,
                "resolved_at": changed if s.status == "resolved" else None,
                "regressed_at": t.last[0] if s.status == "regressed" else None,
                "ignore_until": None,
                "ignore_until_count": None,
                "created_at": t.first[0],
                "updated_at": t.last[0],
            }
        )
        hours += [{"problem_id": pid, "bucket": b, "count": c} for b, c in t.hours.items()]
        keys += [
            {"problem_id": pid, "key_id": k, "count": c, "last_seen": at}
            for k, (c, at) in t.keys.items()
        ]
    with engine.begin() as conn:
        for table, values in (
            (Problem.__table__, problems),
            (ProblemHour.__table__, hours),
            (ProblemKey.__table__, keys),
        ):
            for i in range(0, len(values), CHUNK):
                conn.execute(insert(table), values[i : i + CHUNK])


def verify(engine: Engine, project_id: str, errors: int, problems: int) -> list[str]:
    """Problems whose count, hours or keys disagree with their error rows (empty: all agree)."""
    e, p, hr, k = IngestError, Problem, ProblemHour, ProblemKey
    with engine.connect() as conn:
        rows = dict(
            conn.execute(
                select(e.problem_id, func.count())
                .where(e.project_id == project_id)
                .group_by(e.problem_id)
            ).all()
        )
        counts = dict(conn.execute(select(p.id, p.count).where(p.project_id == project_id)).all())
        in_project = select(p.id).where(p.project_id == project_id)
        hour_sums = dict(
            conn.execute(
                select(hr.problem_id, func.sum(hr.count))
                .where(hr.problem_id.in_(in_project))
                .group_by(hr.problem_id)
            ).all()
        )
        key_sums = dict(
            conn.execute(
                select(k.problem_id, func.sum(k.count))
                .where(k.problem_id.in_(in_project))
                .group_by(k.problem_id)
            ).all()
        )
    wrong = [
        pid
        for pid in set(rows) | set(counts)
        if not rows.get(pid) == counts.get(pid) == hour_sums.get(pid) == key_sums.get(pid)
    ]
    if sum(rows.values()) != errors or len(counts) != problems:
        wrong.append(f"totals: {sum(rows.values())} rows, {len(counts)} problems")
    return wrong


# -- databases ---------------------------------------------------------------------------------


@contextmanager
def database(kind: str, tmp: Path, server_url: str | None) -> Iterator[str]:
    """A fresh, migrated database URL of ``kind``; dropped (or its server stopped) after."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'problems.db'}"
        upgrade(url)
        yield url
        return
    import psycopg

    server = None
    if server_url is None:
        from tests.support.postgres import LocalPostgres

        # Its own temp dir: LocalPostgres hands it to the postgres user, who cannot enter tmp.
        server = LocalPostgres(Path(tempfile.mkdtemp(prefix="inbound-problems-bench-pg-")))
        server_url = server.start()
    base = make_url(server_url)
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"inbound_problems_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = base.set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if server is not None:
            server.cleanup()


def make_projects(url: str) -> tuple[str, str, list[str], str, list[str]]:
    """(project id, master key, its sending key ids, other project id, its key ids)."""
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            out = []
            for name in ("problems-bench", "neighbour"):
                project = create_project(session, name)
                write = find_key(session, project["write_key"])
                assert write is not None
                extra = [
                    create_key(session, project["project_id"], "write", name=n).key
                    for n, _ in KEY_SHARES[1:]
                ]
                session.flush()
                out.append((project, [write.id, *(k.id for k in extra)]))
        (main, main_keys), (other, other_keys) = out
        return main["project_id"], main["master_key"], main_keys, other["project_id"], other_keys
    finally:
        engine.dispose()


def analyze(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()


# -- measurement -------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class Figure:
    database: str
    case: str
    n: int
    p50: float
    p95: float
    p99: float
    mean: float
    first: float
    shown: str


def time_requests(
    client: httpx.Client, path: str, params: dict, n: int, warmup: int
) -> tuple[list[float], float, dict]:
    """Milliseconds of n requests after warmup ones; also the first (cold) one and a body."""
    timings: list[float] = []
    first = 0.0
    body: dict = {}
    for i in range(warmup + n):
        started = time.perf_counter()
        resp = client.get(path, params=params)
        elapsed = (time.perf_counter() - started) * 1000
        if resp.status_code != 200:
            raise RuntimeError(f"GET {path} {params}: {resp.status_code} {resp.text[:300]}")
        if i == 0:
            first, body = elapsed, resp.json()
        if i >= warmup:
            timings.append(elapsed)
    return timings, first, body


def measure_api(
    db: str,
    base_url: str,
    master_key: str,
    project_id: str,
    code: str,
    n: int,
    warmup: int,
    big_limit: int = 0,
) -> list[Figure]:
    path = f"/3.0/projects/{project_id}/problems"
    figures = []
    with httpx.Client(
        base_url=base_url, headers={"Authorization": master_key}, timeout=30
    ) as client:
        probe = client.get(path)
        if probe.status_code == 404 and probe.json().get("message") == "Not Found":
            raise RouteMissing(path)
        page = probe.json()
        cursor = page.get("next_cursor")
        cases: list[tuple[str, dict]] = [
            ("default (sort=last_seen)", {}),
            ("sort=count", {"sort": "count"}),
            (f"code={code}", {"code": code}),
        ]
        if cursor:
            cases.append(("second page (cursor)", {"cursor": cursor}))
        else:
            print(f"  note: no next_cursor on the first page ({len(page['problems'])} problems)")
        if big_limit:
            cases.append((f"limit={big_limit}", {"limit": big_limit}))
        for name, params in cases:
            timings, first, body = time_requests(client, path, params, n, warmup)
            problems = body.get("problems", [])
            shown = f"{len(problems)} problems" + (
                ", next_cursor" if body.get("next_cursor") else ""
            )
            figures.append(_figure(db, name, timings, first, shown))
    return figures


class RouteMissing(RuntimeError):
    pass


def measure_sql(db: str, url: str, project_id: str, code: str, n: int, warmup: int) -> list[Figure]:
    """The page queries the route is expected to run, timed on the engine (no HTTP)."""
    engine = make_engine(url)
    p = Problem.__table__.c
    limit = 50
    base = select(Problem.__table__).where(p.project_id == project_id)
    by_last = base.order_by(p.last_seen.desc(), p.id.desc()).limit(limit)
    figures = []
    try:
        with engine.connect() as conn:
            tail = conn.execute(by_last).all()[-1]
        cases = [
            ("default (sort=last_seen)", by_last),
            ("sort=count", base.order_by(p.count.desc(), p.id.desc()).limit(limit)),
            (f"code={code}", by_last.where(p.code == code)),
            (
                "second page (cursor)",
                base.where(
                    (p.last_seen < tail.last_seen)
                    | ((p.last_seen == tail.last_seen) & (p.id < tail.id))
                )
                .order_by(p.last_seen.desc(), p.id.desc())
                .limit(limit),
            ),
        ]
        for name, query in cases:
            timings: list[float] = []
            first = 0.0
            rows: list = []
            for i in range(warmup + n):
                started = time.perf_counter()
                with engine.connect() as conn:
                    rows = conn.execute(query).all()
                elapsed = (time.perf_counter() - started) * 1000
                if i == 0:
                    first = elapsed
                if i >= warmup:
                    timings.append(elapsed)
            figures.append(_figure(db, f"SQL: {name}", timings, first, f"{len(rows)} rows"))
    finally:
        engine.dispose()
    return figures


def _figure(db: str, name: str, timings: list[float], first: float, shown: str) -> Figure:
    return Figure(
        db,
        name,
        len(timings),
        percentile(timings, 0.50),
        percentile(timings, 0.95),
        percentile(timings, 0.99),
        statistics.fmean(timings),
        first,
        shown,
    )


def print_table(figures: list[Figure], target_ms: float) -> None:
    header = ["database", "case", "n", "p50 ms", "p95 ms", "p99 ms", "mean ms", "first ms", "page"]
    rows = [
        [
            f.database,
            f.case,
            str(f.n),
            f"{f.p50:.1f}",
            f"{f.p95:.1f}",
            f"{f.p99:.1f}",
            f"{f.mean:.1f}",
            f"{f.first:.1f}",
            f.shown,
        ]
        for f in figures
    ]
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    left = {0, 1, 8}
    line = " | ".join(f"{{:{'<' if i in left else '>'}{w}}}" for i, w in enumerate(widths))
    print()
    print(line.format(*header))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))
    over = [f for f in figures if f.p99 >= target_ms]
    verdict = "all under" if not over else f"{len(over)} case(s) at or over"
    print(
        f"\ntarget p99 < {target_ms:.0f} ms: {verdict} (API cases: client-side, the whole HTTP "
        "request; SQL cases: the query alone)"
    )


# -- main --------------------------------------------------------------------------------------


def run_database(kind: str, args: argparse.Namespace, tmp: Path) -> list[Figure]:
    from tests.support.cli import ApiProcess

    with database(kind, tmp, args.postgres_url) as url:
        project_id, master, keys, other_id, other_keys = make_projects(url)
        engine = make_engine(url)
        try:
            started = time.perf_counter()
            load_project(engine, project_id, keys, args.errors, args.problems, args.seed)
            other_errors, other_problems = args.errors // 10, max(1, args.problems // 10)
            load_project(engine, other_id, other_keys, other_errors, other_problems, args.seed + 1)
            analyze(engine)
            loaded = time.perf_counter() - started
            wrong = verify(engine, project_id, args.errors, args.problems)
            wrong += verify(engine, other_id, other_errors, other_problems)
        finally:
            engine.dispose()
        if wrong:
            raise SystemExit(f"{kind}: the load is inconsistent: {wrong[:5]}")
        print(
            f"{kind}: loaded {args.errors:,} error rows in {args.problems} problems "
            f"(+{other_errors:,} in {other_problems} of another project) in {loaded:.0f} s; "
            "problem counts, hours and keys match the rows",
            flush=True,
        )
        code = "invalid_json"
        api = ApiProcess(url, None, tmp / f"api-{kind}").start()
        try:
            print(f"{kind}: inbound api at {api.url}; {time.strftime('%H:%M:%S')} {_load()}")
            try:
                return measure_api(
                    kind,
                    api.url,
                    master,
                    project_id,
                    code,
                    args.requests,
                    args.warmup,
                    args.big_limit,
                )
            except RouteMissing as missing:
                print(f"{kind}: no route {missing} yet: timing the equivalent SQL instead")
                return measure_sql(kind, url, project_id, code, args.requests, args.warmup)
        finally:
            api.stop()


def _load() -> str:
    try:
        return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return ""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--databases", default="sqlite,postgresql")
    p.add_argument("--postgres-url", default=None, help="a server to create the database on")
    p.add_argument("--errors", type=int, default=1_000_000)
    p.add_argument("--problems", type=int, default=500)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--target-ms", type=float, default=100.0)
    p.add_argument(
        "--big-limit", type=int, default=500, help="also time a page this large (0: skip)"
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--keep", action="store_true", help="keep the temp dir (SQLite file, logs)")
    args = p.parse_args(argv)
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if not set(args.databases) <= {"sqlite", "postgresql"} or not args.databases:
        p.error("--databases takes sqlite and/or postgresql")
    if args.problems < len(COLLECTIONS) * (len(PATHLESS) + 1) or args.errors < args.problems:
        p.error(f"at least {len(COLLECTIONS) * (len(PATHLESS) + 1)} problems, and a row each")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="inbound-problems-bench-"))
    figures: list[Figure] = []
    try:
        for kind in args.databases:
            figures += run_database(kind, args, tmp)
            print_table(figures, args.target_ms)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
