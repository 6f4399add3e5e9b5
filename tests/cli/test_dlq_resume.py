"""`inbound dlq resume --project P --collection C` (README, "DLQ circuit breaker"): a stream the
breaker paused resumes, and the running worker (not restarted) stores the events that waited.

tests/ingest/test_worker_faults.py resumes through app.ingest.pause.resume and restarts the
worker; tests/api/test_admin.py resumes a hand-made pause over the API with no worker. Here
the pause is the worker's own and the resume is the command's."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app.store.db import session_scope
from app.store.migrate import upgrade
from app.store.models import Notification, StreamPause
from tests.conftest import fresh_postgres_database
from tests.ingest.conftest import Stack, make_stack, produce
from tests.support import metrics
from tests.support.cli import inbound, inbound_env
from tests.support.offsets import start_group_at_end
from tests.support.worker import wait_until

MIN_EVENTS = 50


@pytest.fixture(params=["sqlite", "postgresql"])
def breaker_stack(
    request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path: Path
) -> Iterator[Stack]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'inbound.db'}"
    else:
        url = fresh_postgres_database(request.getfixturevalue("postgres_server"))
    upgrade(url)
    # Its own consumer group, started at the end of every topic there is: on the shared
    # broker, the default group would first work through what earlier tests produced (other
    # projects' events, refused as unknown: they trip the breaker on partitions of their own).
    group = f"inbound-ingest-{uuid.uuid4().hex[:8]}"
    start_group_at_end(kafka_bootstrap, group)
    s = make_stack(
        url,
        kafka_bootstrap,
        tmp_path / "w",
        INBOUND_DLQ_PAUSE_MIN_EVENTS=str(MIN_EVENTS),
        INBOUND_DLQ_PAUSE_RATIO="0.5",
        INBOUND_WORKER_GROUP_ID=group,
    )
    try:
        yield s
    finally:
        s.worker.stop()
        s.engine.dispose()


def _active_pauses(stack: Stack, coll: str) -> list[StreamPause]:
    with session_scope(stack.engine) as s:
        return list(
            s.scalars(
                select(StreamPause).where(
                    StreamPause.collection == coll, StreamPause.resumed_at.is_(None)
                )
            )
        )


def _paused_gauge(stack: Stack) -> float | None:
    return metrics.value(stack.worker.metrics(), "inbound_paused_partitions")


def test_cli_resume_lets_the_running_worker_store_what_waited(breaker_stack: Stack) -> None:
    stack = breaker_stack
    coll = stack.unique("flood")
    garbage, good = 60, 40
    wait_until(lambda: _paused_gauge(stack) == 0, 30, "a fresh worker has paused partitions")
    # One partition (fixed key) so the breaker's window sees the whole stream. The first
    # window is all garbage and trips; what waits behind it (11 garbage, 40 good) does not.
    asyncio.run(
        produce(stack.bootstrap, stack.topic(coll), [b"garbage"] * garbage + [b'{"ok": 1}'] * good,
                key=b"k")
    )  # fmt: skip
    wait_until(lambda: _active_pauses(stack, coll), 30, f"no pause\n{stack.worker.tail()}")
    wait_until(
        lambda: _paused_gauge(stack) == 1,
        30,
        lambda: (
            f"inbound_paused_partitions is {_paused_gauge(stack)}, not 1\n{stack.worker.tail(60)}"
        ),
    )
    assert stack.count_events(coll) == 0, "events behind the pause must wait"
    waiting = garbage + good - len(stack.errors(coll))
    assert waiting > good, "the breaker did not stop the flood"
    # README: consumer lag is log end minus committed offsets, whatever the worker is doing;
    # the paused partition's waiting records are the lag.
    lag = lambda: metrics.value(stack.worker.metrics(), "inbound_consumer_lag")  # noqa: E731
    wait_until(lambda: lag() == waiting, 30, lambda: f"lag {lag()}, {waiting} waiting")
    pid = stack.worker.proc.pid

    env = inbound_env(
        INBOUND_DATABASE_URL=stack.db_url,
        INBOUND_KAFKA_BOOTSTRAP=stack.bootstrap,
        INBOUND_DATA_DIR=str(stack.data_dir / "cli"),
    )
    done = inbound("dlq", "resume", "--project", stack.project_id, "--collection", coll, env=env)
    assert done.returncode == 0, done.stdout + done.stderr

    stack.wait_events(coll, good, timeout=60)
    stack.wait_errors(coll, garbage)
    assert stack.worker.alive() and stack.worker.proc.pid == pid, "the worker was restarted"
    assert _active_pauses(stack, coll) == []
    wait_until(lambda: _paused_gauge(stack) == 0, 30, "inbound_paused_partitions stayed 1")
    wait_until(lambda: lag() == 0, 30, lambda: f"lag stayed {lag()}")
    assert stack.count_events(coll) == good
    assert len(stack.errors(coll)) == garbage
    with session_scope(stack.engine) as s:
        resumed = s.scalars(select(Notification).where(Notification.type == "dlq.resumed"))
        assert [n.payload["collection"] for n in resumed] == [coll]


def test_cli_resume_of_a_stream_that_is_not_paused_fails(db_url: str, tmp_path: Path) -> None:
    from app.store.db import make_engine
    from app.store.projects import create_project

    engine = make_engine(db_url)
    with session_scope(engine) as s:
        pid = create_project(s, "calm")["project_id"]
    engine.dispose()
    env = inbound_env(INBOUND_DATABASE_URL=db_url, INBOUND_DATA_DIR=str(tmp_path / "cli"))
    done = inbound("dlq", "resume", "--project", pid, "--collection", "calm", env=env)
    assert done.returncode != 0
    assert "calm" in done.stderr
