"""Kill the dispatcher process mid-way, restart it: nothing lost, nothing under two ids."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.store.models import Notification, WebhookDelivery
from tests.webhooks.helpers import add_notifications, failed_payload, new_project, new_webhook
from tests.webhooks.receiver import Reply

ROOT = Path(__file__).resolve().parents[2]


def _start(db_url: str, data_dir: Path, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "INBOUND_DATABASE_URL": db_url,
        "INBOUND_DATA_DIR": str(data_dir),
        "INBOUND_WEBHOOK_ALLOW_PRIVATE": "true",
        "INBOUND_WEBHOOK_BATCH_WINDOW_MS": "200",
        "INBOUND_WEBHOOK_POLL_MS": "100",
        "INBOUND_WEBHOOK_CONCURRENCY": "4",
        # Short timeouts make the claim lease short (6 s), so in-flight deliveries of the
        # killed process are retried quickly.
        "INBOUND_WEBHOOK_CONNECT_TIMEOUT": "1",
        "INBOUND_WEBHOOK_READ_TIMEOUT": "1",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli.main", "webhooks"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _settled(engine) -> bool:  # noqa: ANN001
    with Session(engine) as session:
        open_notes = session.scalar(
            select(func.count()).where(Notification.dispatched_at.is_(None))
        )
        open_deliveries = session.scalar(
            select(func.count()).where(WebhookDelivery.status != "delivered")
        )
    return open_notes == 0 and open_deliveries == 0


def test_kill_and_restart_loses_nothing(engine, db_url, receiver, tmp_path) -> None:
    receiver.plan = lambda _r: Reply(delay=0.15)
    projects = [new_project(engine) for _ in range(2)]
    for project in projects:
        new_webhook(engine, project, receiver.url(f"/{project}"), ["ingest.failed", "dlq.paused"])

    expected_failed: dict[str, int] = defaultdict(int)
    expected_paused: set[str] = set()

    def wave(tag: str, per_project: int) -> None:
        for project in projects:
            for i in range(per_project):
                reason = f"{tag}-{project}-{i}"
                expected_paused.add(reason)
                add_notifications(
                    engine, project, "dlq.paused", [{"collection": "c", "reason": reason}]
                )
                add_notifications(engine, project, "ingest.failed", [failed_payload()] * 3)
                expected_failed[project] += 3

    wave("first", 20)
    log = tmp_path / "dispatcher.log"
    first = _start(db_url, tmp_path / "data", log)
    try:
        receiver.wait_for(8, timeout=30)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    seen_at_kill = len(receiver.requests)
    wave("second", 10)  # arrives while no dispatcher runs

    second = _start(db_url, tmp_path / "data", log)
    try:
        deadline = time.monotonic() + 90
        while not _settled(engine):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            assert second.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0  # SIGTERM-clean

    assert len(receiver.requests) > seen_at_kill
    bodies_by_id: dict[str, set[bytes]] = defaultdict(set)
    ids_per_reason: dict[str, set[str]] = defaultdict(set)
    failed_totals: dict[str, dict[str, int]] = defaultdict(dict)
    for got in receiver.requests:
        body = got.json
        bodies_by_id[got.webhook_id].add(got.body)
        project = got.path.strip("/")
        if body["type"] == "dlq.paused":
            ids_per_reason[body["data"]["reason"]].add(got.webhook_id)
        else:
            failed_totals[project][got.webhook_id] = body["data"]["total"]
    # A webhook-id seen twice is only ever a retry of the same message.
    assert all(len(bodies) == 1 for bodies in bodies_by_id.values())
    # Every pause notification arrived, each under exactly one webhook-id.
    assert set(ids_per_reason) == expected_paused
    assert all(len(ids) == 1 for ids in ids_per_reason.values())
    # Every rejected event is counted once across the distinct ingest.failed deliveries.
    for project in projects:
        assert sum(failed_totals[project].values()) == expected_failed[project]
    with Session(engine) as session:
        stored = set(session.scalars(select(WebhookDelivery.id)))
    assert set(bodies_by_id) == stored
