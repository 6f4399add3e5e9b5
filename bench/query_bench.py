"""Query benchmark: a filtered count over one million events of one collection.

    .venv/bin/python -m bench.query_bench                       # SQLite file in a temp dir
    .venv/bin/python -m bench.query_bench --database-url postgresql+psycopg://...  --events 1000000

Loads N events (plus as many in another collection and another project, so the indexes have
to do their work), then times count queries through the API's own query code and prints the
figures. The target: under one second for the filtered count. The `sum` and `count_unique`
lines with group_by run next to `count` with the same group_by (the baseline) in the same run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.api.analyses import run_analysis
from app.api.queries import parse_query
from app.ingest.persist import EVENT_COLUMNS
from app.ingest.raw_insert import RawInsert
from app.store.db import engine_for, session_factory
from app.store.migrate import upgrade

PROJECT = "b" * 24
OTHER_PROJECT = "c" * 24
PLANS = ["free", "pro", "team", "enterprise"]


def load(url: str, events: int, chunk: int = 20000) -> float:
    engine = engine_for(url)
    # The worker's own many-row insert: loading a million rows through the ORM takes minutes.
    writer = RawInsert(
        engine.dialect.name,
        "events",
        EVENT_COLUMNS,
        json_columns=("body",),
        datetime_columns=("keen_timestamp", "created_at"),
        conflict=("keen_id",),
    )
    rng = random.Random(7)
    end = datetime.now(UTC)
    started = time.perf_counter()
    rows = []
    targets = [(PROJECT, "purchases", events), (PROJECT, "pageviews", events // 4)]
    targets.append((OTHER_PROJECT, "purchases", events // 4))
    for project, collection, n in targets:
        span = 30 * 86400
        for i in range(n):
            # Live events arrive roughly in time order (a minute of jitter), so rows sit in
            # the table in about the order of the (project, collection, timestamp) index.
            at = end - timedelta(seconds=span * (n - i) / n + rng.uniform(-60, 60))
            keen_id = uuid.uuid4().hex
            iso = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
            body = {
                "item": f"sku-{rng.randrange(500)}",
                "price": round(rng.uniform(1, 100), 2),
                "user": {"plan": rng.choice(PLANS), "country": rng.choice("ABCDEFGH")},
                "keen": {"id": keen_id, "timestamp": iso, "created_at": iso},
            }
            rows.append(writer.row([project, collection, keen_id, at, at, body]))
            if len(rows) >= chunk:
                with engine.begin() as conn:
                    writer.execute(conn, rows)
                rows.clear()
    if rows:
        with engine.begin() as conn:
            writer.execute(conn, rows)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE events")
        else:
            conn.exec_driver_sql("ANALYZE")
        conn.commit()
    return time.perf_counter() - started


def time_query(
    url: str, params: dict, repeat: int, analysis: str = "count"
) -> tuple[float, object]:
    sessions = session_factory(engine_for(url))
    timings = []
    result: object = None
    for _ in range(repeat):
        started = time.perf_counter()
        with sessions() as session:
            query = parse_query(PROJECT, params, forced_filters=[], analysis=analysis)
            answer = run_analysis(session, query, analysis, max_buckets=5000, max_values=100000)
            result = answer["result"]
        timings.append(time.perf_counter() - started)
    return statistics.median(timings), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="default: a new SQLite file in a temp dir")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="start a throwaway PostgreSQL from Debian's binaries and use it",
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    url = args.database_url
    server = None
    if args.postgres:
        from tests.support.postgres import LocalPostgres

        server = LocalPostgres(Path(tempfile.mkdtemp(prefix="inbound-bench-pg-")))
        url = server.start()
    if url is None:
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='inbound-bench-')) / 'bench.db'}"
    upgrade(url)
    dialect = url.split(":", 1)[0]
    print(f"loading {args.events:,} events (+{args.events // 2:,} elsewhere) into {dialect} ...")
    print(f"  loaded in {load(url, args.events):.1f} s")
    base = {"event_collection": "purchases", "timeframe": "this_30_days"}
    cases = {
        "count, no filter": base,
        "count, filter user.plan eq pro": {
            **base,
            "filters": [{"property_name": "user.plan", "operator": "eq", "property_value": "pro"}],
        },
        "count, filters plan eq pro AND price gt 50": {
            **base,
            "filters": [
                {"property_name": "user.plan", "operator": "eq", "property_value": "pro"},
                {"property_name": "price", "operator": "gt", "property_value": 50},
            ],
        },
        "count, filter, previous_7_days, daily interval": {
            **base,
            "timeframe": "previous_7_days",
            "interval": "daily",
            "filters": [{"property_name": "price", "operator": "gt", "property_value": 50}],
        },
    }
    grouped = {**base, "group_by": "user.plan"}
    analyses = {
        "count, group_by user.plan (baseline)": ("count", grouped),
        "sum price, group_by user.plan": ("sum", {**grouped, "target_property": "price"}),
        "count_unique item, group_by user.plan": (
            "count_unique",
            {**grouped, "target_property": "item"},
        ),
    }
    runs = {name: ("count", params) for name, params in cases.items()} | analyses
    for name, (analysis, params) in runs.items():
        seconds, result = time_query(url, params, args.repeat, analysis)
        if isinstance(result, int):
            shown: object = result
        elif "group_by" in params:
            shown = f"{len(result)} groups"
        else:
            shown = f"{len(result)} buckets"
        print(f"  {name:50s} {seconds * 1000:8.0f} ms  (result {shown})")
    if server is not None:
        server.cleanup()


if __name__ == "__main__":
    main()
