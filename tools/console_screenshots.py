"""The README's console screenshots, made again: docs/screenshots/console-{problems,problem,
error}.png at 1280x800.

    .venv/bin/python -m tools.console_screenshots [--out docs/screenshots] [--dark]

Needs Debian's `chromium` and `chromium-driver` and the dev extra (selenium). A fresh SQLite
database in a temp dir gets one demo project whose rejections are decided by the worker's own
steps and stored by its BatchWriter (as tests/console/support.py does), with failure times
spread over the last 14 days so the sparklines and the hourly chart have a shape; one problem
is resolved through the problem lifecycle. A real `inbound api` serves it and a headless
Chromium (offline) signs in with the project's master key and takes the three pages.
"""

from __future__ import annotations

import argparse
import itertools
import random
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from app.ingest.dlq import dead_letter
from app.ingest.persist import BatchOutcome, BatchWriter
from app.ingest.records import RawRecord
from app.settings import Settings
from app.store.db import make_engine, session_scope
from app.store.keys import create_key, find_key
from app.store.migrate import upgrade
from app.store.models import Problem
from app.store.problem_lifecycle import change_status
from app.store.projects import create_project
from tests.console.support import worker_rejection
from tests.support.browser import offline_chromium
from tests.support.cli import ApiProcess
from tests.support.console_browser import go, page_shot, sign_in_customer

WIDTH, HEIGHT = 1280, 800
PRICED = b'{"order_id": "A-1042", "items": [{"sku": "SKU-00042", "qty": 2, "$price": 12.5}], '
PRICED += b'"currency": "EUR"}'


@dataclass(frozen=True)
class Demo:
    """One kind of bad event: where it is sent, what it is, and errors per day (oldest first,
    the last entry is today)."""

    collection: str
    value: bytes
    per_day: tuple[int, ...]
    resolved: bool = False


DEMOS = (
    Demo("purchases", PRICED, (0, 0, 4, 9, 15, 22, 30, 41, 55, 72, 90, 118, 140, 96)),
    Demo(
        "pageviews",
        b'{"url": "/pricing", "referrer": "https://example.com/", "ms": 412,}',
        (0, 0, 0, 0, 0, 3, 180, 95, 12, 0, 0, 2, 1, 0),
    ),
    Demo(
        "signups",
        b'{"user.email": "ada@example.com", "plan": "pro"}',
        (6, 8, 5, 9, 7, 11, 4, 0, 0, 0, 0, 0, 0, 0),
        resolved=True,
    ),
    Demo("checkouts", b'[{"total": 42.0, "currency": "EUR"}]', (0,) * 11 + (2, 5, 3)),
)


def load_demo(url: str, now: datetime, seed: int = 13) -> dict[str, str]:
    """The demo project (its id and master key) with the DEMOS' errors stored."""
    rng = random.Random(seed)
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            project = create_project(session, "Acme Shop")
            web = find_key(session, project["write_key"])
            assert web is not None
            web.name = "web"
            app_key = create_key(session, project["project_id"], "write", name="mobile-app").key
            session.flush()
            key_ids = [web.id, app_key.id]
        pid = project["project_id"]
        offsets = itertools.count()
        settings = Settings()
        writer = BatchWriter(engine, settings.error_payload_cap, settings.problems_max_per_project)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        days = len(DEMOS[0].per_day)
        for back in range(days - 1, -1, -1):
            day = today - timedelta(days=back)
            span = (now - day) if back == 0 else timedelta(days=1)
            letters = []
            for demo in DEMOS:
                for _ in range(demo.per_day[days - 1 - back]):
                    at = day + span * rng.random()
                    key_id = rng.choices(key_ids, weights=(0.8, 0.2))[0]
                    record = RawRecord(
                        topic=f"in.{pid}.{demo.collection}",
                        partition=0,
                        offset=next(offsets),
                        timestamp_ms=int(at.timestamp() * 1000),
                        key=f"user-{rng.randrange(1, 5000)}".encode(),
                        value=demo.value,
                        headers=(("inbound.key_id", key_id.encode()),),
                    )
                    letters.append(dead_letter(record, worker_rejection(record), at))
            letters.sort(key=lambda d: d.failed_at)
            writer.write(
                BatchOutcome(
                    rejected=letters,
                    dlq_coordinates={d.error_id: (0, d.source_offset or 0) for d in letters},
                )
            )
        with session_scope(engine) as session:
            for demo in DEMOS:
                if demo.resolved:
                    problem = session.scalars(
                        select(Problem).where(
                            Problem.project_id == pid, Problem.collection == demo.collection
                        )
                    ).one()
                    change_status(session, problem, "resolved", "admin:Grace", now=now)
        return project
    finally:
        engine.dispose()


def take(base_url: str, project: dict[str, str], out: Path, dark: bool = False) -> list[Path]:
    from selenium.webdriver.common.by import By

    shots = []
    with offline_chromium(WIDTH, HEIGHT) as driver:
        if dark:
            # The console follows prefers-color-scheme; the headless browser reports light.
            driver.execute_cdp_cmd(
                "Emulation.setEmulatedMedia",
                {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
            )
        sign_in_customer(driver, base_url, project["project_id"], project["master_key"])
        shots.append(page_shot(driver, out / "console-problems.png", WIDTH, HEIGHT))
        go(driver, driver.find_element(By.PARTIAL_LINK_TEXT, "$price"))
        shots.append(page_shot(driver, out / "console-problem.png", WIDTH, HEIGHT))
        go(driver, driver.find_element(By.CSS_SELECTOR, "a.sample"))
        shots.append(page_shot(driver, out / "console-error.png", WIDTH, HEIGHT))
    return shots


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    p.add_argument("--dark", action="store_true", help="the dark colour scheme")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="inbound-console-shots-"))
    try:
        url = f"sqlite:///{tmp / 'inbound.db'}"
        upgrade(url)
        project = load_demo(url, datetime.now(UTC))
        api = ApiProcess(url, None, tmp / "api").start()
        try:
            for path in take(api.url, project, args.out, args.dark):
                print(f"{path} {path.stat().st_size / 1024:.0f} KiB")
        finally:
            api.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
