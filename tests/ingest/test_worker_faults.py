"""Fault tests: the worker killed mid-batch, the database down, a broker down, a bad producer."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select

from app.ingest.pause import resume
from app.kafka import local
from app.settings import Settings
from app.store.db import session_factory, session_scope
from app.store.migrate import upgrade
from app.store.models import Event, Notification, StreamPause
from tests.conftest import fresh_postgres_database
from tests.ingest.conftest import Stack, make_stack, produce
from tests.support import metrics
from tests.support.offsets import caught_up, committed_and_end
from tests.support.ports import free_kafka_base
from tests.support.worker import wait_until


@pytest.fixture
def own_stack(request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path: Path):
    """A stack whose worker a test may kill or starve (PostgreSQL, so the server can be stopped)."""
    server = request.getfixturevalue("postgres_server")
    url = fresh_postgres_database(server)
    upgrade(url)
    env = getattr(request, "param", {}) or {}
    s = make_stack(url, kafka_bootstrap, tmp_path, INBOUND_WORKER_BATCH_SIZE="200", **env)
    s.pg = server  # type: ignore[attr-defined]
    try:
        yield s
    finally:
        s.worker.stop()
        s.engine.dispose()


def test_kill_9_mid_stream_then_restart_loses_and_duplicates_nothing(own_stack: Stack) -> None:
    coll = own_stack.unique("kill")
    total = 6000
    values = [orjson.dumps({"n": i, "pad": "x" * 300}) for i in range(total)]
    producer = threading.Thread(target=own_stack.produce, args=(own_stack.topic(coll), values))
    producer.start()
    wait_until(lambda: own_stack.count_events(coll) > 300, 30, "worker never started storing")
    own_stack.worker.kill()
    producer.join()
    stored_at_kill = own_stack.count_events(coll)
    assert stored_at_kill < total, "the kill came too late to test anything"
    own_stack.worker.start()
    own_stack.wait_events(coll, total, timeout=60)
    # Redelivered records land before the offsets past them are committed: once the group has
    # committed the whole topic, a duplicate would be in the table.
    topic = own_stack.topic(coll)
    wait_until(
        lambda: caught_up(own_stack.bootstrap, topic),
        60,
        lambda: f"offsets never caught up: {committed_and_end(own_stack.bootstrap, topic)}",
    )
    with own_stack.engine.connect() as conn:
        n, distinct = conn.execute(
            select(func.count(), func.count(func.distinct(Event.body["n"].as_integer()))).where(
                Event.collection == coll
            )
        ).one()
    assert n == total and distinct == total


def test_database_outage_rejects_nothing_and_catches_up(own_stack: Stack) -> None:
    pg = own_stack.pg  # type: ignore[attr-defined]
    if isinstance(pg, str):
        pytest.skip("an external PostgreSQL cannot be stopped by the test")
    coll = own_stack.unique("outage")
    own_stack.produce(own_stack.topic(coll), [b'{"before": 1}'])
    own_stack.wait_events(coll, 1)
    own_stack.engine.dispose()
    pg.stop()
    try:
        values = [orjson.dumps({"during": i}) for i in range(500)]
        own_stack.produce(own_stack.topic(coll), values)
        wait_until(
            lambda: (own_stack.worker.health() or {}).get("status") == "unhealthy",
            30,
            "worker did not report the outage",
        )
        # Alive through several retries, not just one: the worker waits out the outage.
        wait_until(
            lambda: _retries(own_stack) >= 2,
            60,
            lambda: f"fewer than 2 retries\n{own_stack.worker.tail()}",
        )
        assert own_stack.worker.alive()
    finally:
        pg.restart()
    own_stack.wait_events(coll, 501, timeout=60)
    assert own_stack.errors(coll) == []
    wait_until(
        lambda: (own_stack.worker.health() or {}).get("status") == "ok", 30, "still unhealthy"
    )


@pytest.mark.parametrize(
    "own_stack",
    [{"INBOUND_DLQ_PAUSE_MIN_EVENTS": "50", "INBOUND_DLQ_PAUSE_RATIO": "0.5"}],
    indirect=True,
)
def test_circuit_breaker_pauses_a_flooding_stream_and_resumes(own_stack: Stack) -> None:
    coll = own_stack.unique("flood")
    topic = own_stack.topic(coll)

    async def flood() -> None:
        # One partition (key fixed) so the window sees the whole stream.
        await produce(
            own_stack.bootstrap, topic, [b"garbage"] * 300 + [b'{"good": 1}'] * 10, key=b"k"
        )

    asyncio.run(flood())
    sessions = session_factory(own_stack.engine)
    wait_until(lambda: _paused(sessions, coll), 30, f"no pause\n{own_stack.worker.tail()}")
    # The consumer itself paused (the gauge), not only the row written: nothing more comes in.
    wait_until(
        lambda: (metrics.value(own_stack.worker.metrics(), "inbound_paused_partitions") or 0) >= 1,
        30,
        "the paused-partitions gauge never rose",
    )
    rejected_while_paused = len(own_stack.errors(coll))
    assert rejected_while_paused < 300, "the breaker did not stop the flood"
    assert own_stack.count_events(coll) == 0, "events behind the pause must wait, not skip"
    with session_scope(own_stack.engine) as s:
        note = s.scalars(select(Notification).where(Notification.type == "dlq.paused")).all()
        assert any(n.payload["collection"] == coll for n in note)
    # Raise this project's limit so the rest can flow, then resume.
    from app.store.models import Project

    with session_scope(own_stack.engine) as s:
        s.get(Project, own_stack.project_id).options = {"dlq_pause_ratio": 1.0}
    assert resume(sessions, own_stack.project_id, coll, by="test") >= 1
    # The restart also shows that a pause and a changed option survive a worker restart.
    own_stack.worker.stop()
    own_stack.worker.start()
    own_stack.wait_events(coll, 10, timeout=60)
    assert len(own_stack.errors(coll)) == 300


def _paused(sessions, coll: str) -> bool:  # noqa: ANN001
    with sessions() as s:
        return bool(
            s.scalars(
                select(StreamPause).where(
                    StreamPause.collection == coll, StreamPause.resumed_at.is_(None)
                )
            ).all()
        )


@pytest.mark.slow
def test_broker_killed_during_acks_all_production_loses_no_acknowledged_event(
    tmp_path: Path, sqlite_url: str
) -> None:
    state = local.start(
        tmp_path / "k3", Settings().cache_dir, base_port=free_kafka_base(3), nodes=3
    )
    stack = make_stack(sqlite_url, state.bootstrap, tmp_path / "w", INBOUND_DLQ_REPLICAS="3")
    coll = stack.unique("rf3")
    topic = stack.topic(coll)
    acked: list[int] = []

    async def run() -> None:
        from aiokafka import AIOKafkaProducer
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(bootstrap_servers=state.bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)])
        await admin.close()
        producer = AIOKafkaProducer(
            bootstrap_servers=state.bootstrap,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=10000,
        )
        await producer.start()
        try:
            for i in range(3000):
                if i == 1000:
                    os.kill(state.nodes[1]["pid"], signal.SIGKILL)
                try:
                    await producer.send_and_wait(topic, orjson.dumps({"n": i}))
                    acked.append(i)
                except Exception:  # noqa: BLE001 - unacknowledged: not promised
                    pass
        finally:
            await producer.stop()

    try:
        asyncio.run(run())
        assert len(acked) > 2500
        stack.wait_events(coll, len(acked), timeout=90)
        with stack.engine.connect() as conn:
            stored = set(
                conn.scalars(select(Event.body["n"].as_integer()).where(Event.collection == coll))
            )
        assert set(acked) <= stored
    finally:
        stack.worker.stop()
        stack.engine.dispose()
        local.stop(tmp_path / "k3")


def _retries(stack: Stack) -> float:
    """Batches retried for any cause (a database outage fails the look-up or the store)."""
    try:
        text = stack.worker.metrics()
    except Exception:  # noqa: BLE001 - the metrics port may be busy answering; ask again
        return 0
    return sum(metrics.by_label(text, "inbound_infrastructure_retries_total", "cause").values())
