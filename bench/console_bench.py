"""Console pages benchmark: the Problems, Problem and Error pages over 1,000,000 error rows.

    .venv/bin/python -m bench.console_bench                      # SQLite and a throwaway PostgreSQL
    .venv/bin/python -m bench.console_bench --databases sqlite --errors 200000
    .venv/bin/python -m bench.console_bench --postgres-url postgresql+psycopg://user@host/db

For each database, bench/problems_bench.py's loader makes a fresh migrated database and loads
``--errors`` error rows in ``--problems`` problems of one project (skewed, over 14 days, with
their problems, hourly and key rows, checked against the rows), plus a tenth as many in a
neighbouring project. A real ``inbound api`` (subprocess) serves it; one keep-alive httpx
client signs in to the console as a customer would (GET /console/login for the form's CSRF
token, POST it with the project id and master key, keep the session cookie) and requests each
page ``--requests`` times after ``--warmup`` unmeasured ones:

- the Problems page (50 problems with their 14-day sparklines), default sort and sort=count;
- the Problem page of the problem with the most errors (hourly chart, keys, newest errors);
- an Error page (that problem's newest error: the payload, headers, DLQ coordinates).

The time is the whole request measured by the client over loopback keep-alive (request sent
to the last byte of the HTML read): the server's time plus a loopback round trip, nothing
added to the app. Prints p50/p95/p99 per page per database; the goal is p99 < 150 ms.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from app.store.db import make_engine
from bench.problems_bench import (
    Figure,
    Tally,
    analyze,
    database,
    load_project,
    make_projects,
    percentile,
    print_table,
    verify,
)

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def load(url: str, args: argparse.Namespace) -> tuple[str, str, dict[str, Tally]]:
    """The bench project (id, master key) and its problems' tallies, loaded and checked."""
    project_id, master, keys, other_id, other_keys = make_projects(url)
    engine = make_engine(url)
    try:
        started = time.perf_counter()
        tallies = load_project(engine, project_id, keys, args.errors, args.problems, args.seed)
        other_errors, other_problems = args.errors // 10, max(1, args.problems // 10)
        load_project(engine, other_id, other_keys, other_errors, other_problems, args.seed + 1)
        analyze(engine)
        loaded = time.perf_counter() - started
        wrong = verify(engine, project_id, args.errors, args.problems)
        wrong += verify(engine, other_id, other_errors, other_problems)
    finally:
        engine.dispose()
    if wrong:
        raise SystemExit(f"the load is inconsistent: {wrong[:5]}")
    print(
        f"loaded {args.errors:,} error rows in {args.problems} problems "
        f"(+{other_errors:,} in {other_problems} of another project) in {loaded:.0f} s; "
        "problem counts, hours and keys match the rows",
        flush=True,
    )
    return project_id, master, tallies


def sign_in(client: httpx.Client, project_id: str, master_key: str) -> None:
    """The customers' sign-in form, as a browser posts it; the client keeps the cookie."""
    form = client.get("/console/login")
    form.raise_for_status()
    token = CSRF.search(form.text)
    if token is None:
        raise RuntimeError("no CSRF token on the sign-in page")
    answer = client.post(
        "/console/login",
        data={
            "csrf_token": token.group(1),
            "as": "customer",
            "project_id": project_id,
            "master_key": master_key,
            "next": "",
        },
    )
    if answer.status_code != 303 or "inbound_console" not in client.cookies:
        raise RuntimeError(f"sign-in refused: {answer.status_code} {answer.text[:300]}")


def time_page(
    client: httpx.Client, db: str, case: str, path: str, must_show: str, n: int, warmup: int
) -> Figure:
    """Milliseconds of ``n`` GETs of ``path`` after ``warmup``; each must be 200 and show
    ``must_show`` (a page that lost its content, or the sign-in page, is not a fast page)."""
    timings: list[float] = []
    first = 0.0
    size = 0
    for i in range(warmup + n):
        started = time.perf_counter()
        resp = client.get(path)
        body = resp.text
        elapsed = (time.perf_counter() - started) * 1000
        if resp.status_code != 200 or must_show not in body:
            raise RuntimeError(f"GET {path}: {resp.status_code} {body[:300]}")
        if i == 0:
            first, size = elapsed, len(resp.content)
        if i >= warmup:
            timings.append(elapsed)
    return Figure(
        db,
        case,
        len(timings),
        percentile(timings, 0.50),
        percentile(timings, 0.95),
        percentile(timings, 0.99),
        statistics.fmean(timings),
        first,
        f"{size / 1024:.0f} KiB",
    )


def run_database(kind: str, args: argparse.Namespace, tmp: Path) -> list[Figure]:
    from tests.support.cli import ApiProcess

    with database(kind, tmp, args.postgres_url) as url:
        print(f"{kind}: loading", flush=True)
        project_id, master, tallies = load(url, args)
        biggest, tally = max(tallies.items(), key=lambda item: item[1].count)
        assert tally.sample is not None
        error_id = tally.sample[0]
        base = f"/console/projects/{project_id}"
        cases = [
            ("Problems page (sort=last_seen)", f"{base}/problems", 'table class="problems"'),
            ("Problems page (sort=count)", f"{base}/problems?sort=count", 'table class="problems"'),
            (f"Problem page ({tally.count:,} errors)", f"{base}/problems/{biggest}", biggest),
            ("Error page", f"{base}/errors/{error_id}", error_id),
        ]
        api = ApiProcess(url, None, tmp / f"api-{kind}").start()
        try:
            print(f"{kind}: inbound api at {api.url}; {time.strftime('%H:%M:%S')} {_load()}")
            with httpx.Client(base_url=api.url, timeout=30, follow_redirects=False) as client:
                sign_in(client, project_id, master)
                figures = [
                    time_page(client, kind, case, path, shown, args.requests, args.warmup)
                    for case, path, shown in cases
                ]
            print(f"{kind}: measured; {time.strftime('%H:%M:%S')} {_load()}", flush=True)
            return figures
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
    p.add_argument("--target-ms", type=float, default=150.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--keep", action="store_true", help="keep the temp dir (SQLite file, logs)")
    args = p.parse_args(argv)
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if not set(args.databases) <= {"sqlite", "postgresql"} or not args.databases:
        p.error("--databases takes sqlite and/or postgresql")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="inbound-console-bench-"))
    figures: list[Figure] = []
    try:
        for kind in args.databases:
            figures += run_database(kind, args, tmp)
            print_table(figures, args.target_ms)
            print("(here every case is a page, timed by the client over loopback keep-alive)")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
