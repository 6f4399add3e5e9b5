"""Several workers (issue #15, point 3): two `inbound worker` processes in one consumer group
share the `in.*` partitions; a worker killed or started rebalances without loss or duplicates;
control commands reach every worker; a project's options reach running workers within seconds.

Everything is real: the session's broker, SQLite and PostgreSQL, two worker subprocesses.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import func, select

from app.ingest.control import send_command
from app.kafka.client_options import plaintext
from app.store.db import session_scope
from app.store.migrate import upgrade
from app.store.models import ApiKey, Event, IngestError, Project, StreamPause
from tests.conftest import fresh_postgres_database
from tests.ingest.conftest import Stack, make_stack
from tests.support import metrics
from tests.support.offsets import caught_up
from tests.support.worker import WorkerProcess, group_assignment, wait_until

PARTITIONS = 6
KEY_HEADER = "inbound.key_id"  # README: the edge stamps every record with the writing key's id
# Small breaker windows so that a test can fill some; the project starts with a ratio of 1.0
# (a window all rejected does not trip: the limit is "above the ratio").
WORKER_ENV = {"INBOUND_WORKER_BATCH_SIZE": "200", "INBOUND_DLQ_PAUSE_MIN_EVENTS": "20"}


@dataclass
class Pair:
    stack: Stack
    second: WorkerProcess

    @property
    def workers(self) -> tuple[WorkerProcess, WorkerProcess]:
        return self.stack.worker, self.second

    def tails(self) -> str:
        return "\n".join(f"--- worker {w.metrics_port}\n{w.tail(15)}" for w in self.workers)


def _database(request: pytest.FixtureRequest, data_dir: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{data_dir / 'inbound.db'}"
    else:
        url = fresh_postgres_database(request.getfixturevalue("postgres_server"))
    upgrade(url)
    return url


def _start_pair(url: str, bootstrap: str, data_dir: Path, **env: str) -> Pair:
    stack = make_stack(url, bootstrap, data_dir / "a", **env)
    with session_scope(stack.engine) as s:
        s.get(Project, stack.project_id).options = {"dlq_pause_ratio": 1.0}
    second = WorkerProcess(url, bootstrap, data_dir / "b", **env).start()
    return Pair(stack, second)


def _stop_pair(pair: Pair) -> None:
    for worker in pair.workers:
        worker.stop()
    pair.stack.engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def pair(
    request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    data_dir = tmp_path_factory.mktemp("two_workers")
    p = _start_pair(_database(request, data_dir), kafka_bootstrap, data_dir, **WORKER_ENV)
    try:
        yield p
    finally:
        _stop_pair(p)


@contextmanager
def _restarted(pair: Pair, **env: str) -> Iterator[Pair]:
    """Both workers run with ``env`` added for the block, then as before (one group of two
    throughout: a second pair would split the partitions four ways)."""
    for worker in pair.workers:
        worker.stop()
    saved = [dict(w.env) for w in pair.workers]
    for worker in pair.workers:
        worker.env.update(env)
        worker.start()
    try:
        yield pair
    finally:
        for worker, before in zip(pair.workers, saved, strict=True):
            worker.stop()
            worker.env = before
            worker.start()


# -- helpers ---------------------------------------------------------------------------------


def _create_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, partitions, 1)])
        finally:
            await admin.close()

    asyncio.run(create())


def _produce(bootstrap: str, topic: str, values: dict[int, bytes], key_id: str) -> None:
    """Each value to partition ``i % 6`` with the key-id header, as the edge produces."""

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            headers = [(KEY_HEADER, key_id.encode())]
            futures = [
                await producer.send(topic, v, partition=i % PARTITIONS, headers=headers)
                for i, v in values.items()
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(send())


def _value(i: int) -> bytes:
    """Event number i; every 7th is invalid JSON."""
    if i % 7 == 3:
        return b'{"n": %d, broken' % i
    return orjson.dumps({"n": i, "pad": "x" * 200})


def _invalid(numbers: range) -> set[int]:
    return {i for i in numbers if i % 7 == 3}


def _shared(pair: Pair, topic: str) -> bool:
    """Both workers (and nobody else) own partitions of the topic, all six between them."""
    members = group_assignment(pair.stack.bootstrap)
    owned = [{p for t, p in tps if t == topic} for tps in members.values()]
    owned = [o for o in owned if o]
    return len(owned) == 2 and set().union(*owned) == set(range(PARTITIONS))


def _alone(pair: Pair, topic: str) -> bool:
    members = group_assignment(pair.stack.bootstrap)
    owned = [{p for t, p in tps if t == topic} for tps in members.values()]
    return [o for o in owned if o] == [set(range(PARTITIONS))]


def _wait_shared(pair: Pair, topic: str) -> None:
    wait_until(lambda: _shared(pair, topic), 90, lambda: f"{topic} not shared\n{pair.tails()}")


def _stored_numbers(pair: Pair, collection: str) -> tuple[int, int]:
    """(event rows, distinct event numbers) of the collection."""
    with pair.stack.engine.connect() as conn:
        return conn.execute(
            select(func.count(), func.count(func.distinct(Event.body["n"].as_integer()))).where(
                Event.project_id == pair.stack.project_id, Event.collection == collection
            )
        ).one()


def _error_sources(pair: Pair, collection: str) -> list[tuple[int, int]]:
    with pair.stack.engine.connect() as conn:
        rows = conn.execute(
            select(IngestError.source_partition, IngestError.source_offset).where(
                IngestError.project_id == pair.stack.project_id,
                IngestError.collection == collection,
            )
        ).all()
    return [tuple(r) for r in rows]


def _settled(pair: Pair, collection: str, valid: int, invalid: int, timeout: float) -> None:
    """Every record stored or an error row, and the group committed the whole topic (so a
    redelivery, which would come before that commit, has already happened)."""
    topic = pair.stack.topic(collection)

    def done() -> bool:
        events, _ = _stored_numbers(pair, collection)
        return (
            events >= valid
            and len(_error_sources(pair, collection)) >= invalid
            and caught_up(pair.stack.bootstrap, topic)
        )

    wait_until(
        done,
        timeout,
        lambda: (
            f"{collection}: {_stored_numbers(pair, collection)} events, "
            f"{len(_error_sources(pair, collection))} errors of {valid}/{invalid}\n{pair.tails()}"
        ),
    )


def _accepted(worker: WorkerProcess) -> float:
    return metrics.value(worker.metrics(), "inbound_events_accepted_total") or 0.0


# -- a. two workers share the partitions -------------------------------------------------------


def test_two_workers_share_the_partitions_and_store_each_record_once(pair: Pair) -> None:
    stack = pair.stack
    coll = stack.unique("shared")
    topic = stack.topic(coll)
    _create_topic(stack.bootstrap, topic)
    _wait_shared(pair, topic)
    before = [_accepted(w) for w in pair.workers]

    total = 2100
    numbers = range(total)
    invalid = _invalid(numbers)
    _produce(stack.bootstrap, topic, {i: _value(i) for i in numbers}, stack.write_key_id)
    _settled(pair, coll, total - len(invalid), len(invalid), timeout=120)

    assert len(invalid) == 300
    assert _stored_numbers(pair, coll) == (1800, 1800), "each valid event stored exactly once"
    errors = _error_sources(pair, coll)
    assert len(errors) == 300 and len(set(errors)) == 300, "one error row per invalid event"
    # Both stored some of them: the partitions were shared while the records came in.
    gained = [_accepted(w) - b for w, b in zip(pair.workers, before, strict=True)]
    assert all(g > 0 for g in gained), f"events stored per worker: {gained}"
    assert sum(gained) >= 1800


# -- b. a worker killed, then started again, mid-stream ---------------------------------------


def test_a_worker_killed_and_restarted_mid_stream_loses_and_duplicates_nothing(
    pair: Pair,
) -> None:
    stack = pair.stack
    victim, survivor = pair.workers
    coll = stack.unique("kill")
    topic = stack.topic(coll)
    _create_topic(stack.bootstrap, topic)
    _wait_shared(pair, topic)

    phase1, phase2, phase3 = range(0, 6000), range(6000, 8000), range(8000, 10000)
    values = {i: _value(i) for i in range(10000)}
    producing = threading.Thread(
        target=_produce,
        args=(stack.bootstrap, topic, {i: values[i] for i in phase1}, stack.write_key_id),
    )
    producing.start()
    wait_until(lambda: stack.count_events(coll) > 300, 60, f"nothing stored\n{pair.tails()}")
    victim.kill()
    at_kill = stack.count_events(coll)
    producing.join()
    _produce(stack.bootstrap, topic, {i: values[i] for i in phase2}, stack.write_key_id)
    assert at_kill < len(phase1) - len(_invalid(phase1)), "the kill came too late"

    # The survivor alone takes every partition and finishes what the victim left.
    before_phase3 = range(0, 8000)
    _settled(
        pair,
        coll,
        len(before_phase3) - len(_invalid(before_phase3)),
        len(_invalid(before_phase3)),
        timeout=120,
    )
    wait_until(lambda: _alone(pair, topic), 30, "the survivor is not alone with every partition")
    assert survivor.alive()

    # A worker joining takes partitions back; records produced meanwhile are not lost.
    victim.start()
    _produce(stack.bootstrap, topic, {i: values[i] for i in phase3}, stack.write_key_id)
    _wait_shared(pair, topic)
    everything = range(10000)
    invalid = _invalid(everything)
    _settled(pair, coll, len(everything) - len(invalid), len(invalid), timeout=120)

    assert len(invalid) == 1429
    assert _stored_numbers(pair, coll) == (8571, 8571), "each valid event exactly once"
    errors = _error_sources(pair, coll)
    assert len(errors) == 1429 and len(set(errors)) == 1429, "one error row per invalid event"
    print(f"kill -9 after {at_kill} of 5142 events of the first phase were stored")


# -- d. a project's breaker ratio changed in the database --------------------------------------


def _paused_partitions(pair: Pair, collection: str) -> set[int]:
    with pair.stack.engine.connect() as conn:
        return set(
            conn.scalars(
                select(StreamPause.partition).where(
                    StreamPause.collection == collection, StreamPause.resumed_at.is_(None)
                )
            )
        )


def test_a_changed_breaker_ratio_is_used_by_both_running_workers(pair: Pair) -> None:
    stack = pair.stack
    coll = stack.unique("ratio")
    topic = stack.topic(coll)
    _create_topic(stack.bootstrap, topic)
    _wait_shared(pair, topic)
    garbage = b"{not json"
    # Two full windows (20 events) per partition, every event rejected: at a ratio of 1.0
    # nothing trips.
    _produce(stack.bootstrap, topic, dict.fromkeys(range(240), garbage), stack.write_key_id)
    _settled(pair, coll, 0, 240, timeout=60)
    assert _paused_partitions(pair, coll) == set()

    with session_scope(stack.engine) as s:
        s.get(Project, stack.project_id).options = {"dlq_pause_ratio": 0.5}
    # Without a restart: one more window of garbage per partition not paused yet, until every
    # partition, on both workers, has tripped.
    sent = 240

    def all_paused() -> bool:
        nonlocal sent
        paused = _paused_partitions(pair, coll)
        open_ = [p for p in range(PARTITIONS) if p not in paused]
        if not open_:
            return True
        before = _errors_per_partition(pair, coll)
        chunk = {sent + k * PARTITIONS + p: garbage for k in range(20) for p in open_}
        _produce(stack.bootstrap, topic, chunk, stack.write_key_id)
        sent += 20 * PARTITIONS

        def window_done() -> bool:
            now, paused_now = _errors_per_partition(pair, coll), _paused_partitions(pair, coll)
            return all(p in paused_now or now.get(p, 0) >= before.get(p, 0) + 20 for p in open_)

        wait_until(window_done, 30, pair.tails)
        return False

    wait_until(all_paused, 60, lambda: f"paused: {_paused_partitions(pair, coll)}\n{pair.tails()}")


def _errors_per_partition(pair: Pair, collection: str) -> dict[int, int]:
    counts: dict[int, int] = {}
    for partition, _ in _error_sources(pair, collection):
        counts[partition] = counts.get(partition, 0) + 1
    return counts


# -- c. control commands reach every worker ----------------------------------------------------


def test_control_commands_reach_both_workers_and_a_revoked_key_stops_on_both(
    pair: Pair,
) -> None:
    # Keys and projects cached for an hour: only the command can make the workers read again.
    with _restarted(pair, INBOUND_WORKER_KEY_CACHE_SECONDS="3600"):
        _revoked_key_stops_on_both(pair)


def _revoked_key_stops_on_both(pair: Pair) -> None:
    stack = pair.stack
    coll = stack.unique("revoke")
    topic = stack.topic(coll)
    _create_topic(stack.bootstrap, topic)
    _wait_shared(pair, topic)
    good = {i: orjson.dumps({"n": i}) for i in range(60)}
    _produce(stack.bootstrap, topic, good, stack.autofill_key_id)
    _settled(pair, coll, 60, 0, timeout=60)

    with session_scope(stack.engine) as s:
        s.get(ApiKey, stack.autofill_key_id).is_active = False
    # Cached for an hour: both workers still take the key, on all six partitions.
    _produce(stack.bootstrap, topic, {i: orjson.dumps({"n": i}) for i in range(60, 120)},
             stack.autofill_key_id)  # fmt: skip
    _settled(pair, coll, 120, 0, timeout=60)
    assert _error_sources(pair, coll) == []

    kafka = plaintext(stack.bootstrap)
    for command, line in (
        ("resume", "control command resume received"),
        ("invalidate_keys", "control command invalidate_keys received"),
    ):
        seen = [w.log_count(line) for w in pair.workers]
        assert send_command(kafka, {"type": command}) is True
        for worker, count in zip(pair.workers, seen, strict=True):
            wait_until(
                lambda w=worker, c=count, t=line: w.log_count(t) > c,
                30,
                lambda w=worker, t=line: f"worker {w.metrics_port} never logged {t!r}\n{w.tail()}",
            )

    _produce(stack.bootstrap, topic, {i: orjson.dumps({"n": i}) for i in range(120, 180)},
             stack.autofill_key_id)  # fmt: skip
    _settled(pair, coll, 120, 60, timeout=60)
    assert _stored_numbers(pair, coll) == (120, 120), "no event of the revoked key stored"
    with stack.engine.connect() as conn:
        codes = conn.execute(
            select(IngestError.code, IngestError.source_partition).where(
                IngestError.collection == coll
            )
        ).all()
    assert {c for c, _ in codes} == {"key_not_permitted"}
    assert {p for _, p in codes} == set(range(PARTITIONS)), "refused on every partition"
