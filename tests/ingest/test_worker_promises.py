"""README and docs/design.md promises about the worker, each against a real broker, a real
database (SQLite and PostgreSQL) and `inbound worker` as a subprocess. Names and values are
the documents' literals, not the code's constants."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import func, select

from app.ingest.pipeline import keen_id_for
from app.store.db import session_scope
from app.store.keys import create_key
from app.store.migrate import upgrade
from app.store.models import ApiKey, Event, IngestCounter, IngestError, Notification, Problem
from app.store.projects import create_project
from tests.conftest import fresh_postgres_database
from tests.ingest.conftest import Stack, make_stack
from tests.support import metrics
from tests.support.cli import ApiProcess
from tests.support.worker import wait_until

# README, settings table and "Error codes"; docs/design.md, "A dead letter".
EVENT_LIMIT = 921_600
ERROR_PAYLOAD_CAP = 65536
BROKER_MAX_MESSAGE = 1_048_588  # message.max.bytes, the largest record the broker accepts


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One worker per database for the module; the crash test kills and restarts it."""
    data_dir = tmp_path_factory.mktemp("promises")
    if request.param == "sqlite":
        url = f"sqlite:///{data_dir / 'inbound.db'}"
    else:
        url = fresh_postgres_database(request.getfixturevalue("postgres_server"))
    upgrade(url)
    s = make_stack(url, kafka_bootstrap, data_dir, INBOUND_WORKER_BATCH_SIZE="200")
    try:
        yield s
    finally:
        s.worker.stop()
        s.engine.dispose()


def read_topic(bootstrap: str, topic: str, timeout: float = 30) -> list:
    """Every record of a topic, from its beginning to its end offsets as of now."""

    async def _read() -> list:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=3_000_000,
            metadata_max_age_ms=500,
        )
        await consumer.start()
        out: list = []
        try:
            deadline = asyncio.get_running_loop().time() + timeout
            while not consumer.assignment():
                assert asyncio.get_running_loop().time() < deadline, f"no topic {topic}"
                for msgs in (await consumer.getmany(timeout_ms=200)).values():
                    out.extend(msgs)
            tps = sorted(consumer.assignment())
            ends = await consumer.end_offsets(tps)
            while any([await consumer.position(tp) < ends[tp] for tp in tps]):
                assert asyncio.get_running_loop().time() < deadline, f"{topic}: read {len(out)}"
                for msgs in (await consumer.getmany(timeout_ms=500)).values():
                    out.extend(msgs)
        finally:
            await consumer.stop()
        return [m for m in out if m.offset < ends[TopicPartition(topic, m.partition)]]

    return asyncio.run(_read())


def _hdrs(msg) -> dict[str, bytes]:  # noqa: ANN001 - aiokafka ConsumerRecord
    return {k: v for k, v in msg.headers}


def _lag(stack: Stack) -> float | None:
    return metrics.value(stack.worker.metrics(), "inbound_consumer_lag")


def _caught_up(stack: Stack) -> None:
    wait_until(lambda: _lag(stack) == 0, 60, lambda: f"lag {_lag(stack)}\n{stack.worker.tail()}")


# -- 6. commit after DLQ and error row, under kill -9 ---------------------------------------


def test_kill_9_with_a_mix_stores_each_valid_once_and_records_each_invalid_once(
    stack: Stack,
) -> None:
    coll = stack.unique("crashmix")
    topic = stack.topic(coll)
    total = 4000
    invalid = {i for i in range(total) if i % 4 == 1}
    # Two kinds of invalid event, so two problems: a $-name (every 8th) and broken JSON.
    dollar = {i for i in invalid if i % 8 == 5}

    def value(i: int) -> bytes:
        if i in dollar:
            return b'{"$price": %d}' % i
        if i in invalid:
            return b'{"n": %d, broken' % i
        return orjson.dumps({"n": i, "pad": "x" * 300})

    values = [value(i) for i in range(total)]
    # One partition: the record's index is its offset.
    producer = threading.Thread(target=stack.produce, args=(topic, values), kwargs={"key": b"k"})
    producer.start()
    wait_until(lambda: stack.count_events(coll) > 200, 60, "worker never started storing")
    stack.worker.kill()
    producer.join()
    at_kill = stack.count_events(coll), len(stack.errors(coll))
    assert at_kill[0] < total - len(invalid), "the kill came too late to test anything"
    stack.worker.start()
    stack.wait_events(coll, total - len(invalid), timeout=120)
    stack.wait_errors(coll, len(invalid), timeout=60)
    _caught_up(stack)  # everything committed: nothing more can be redelivered

    with stack.engine.connect() as conn:
        n, distinct = conn.execute(
            select(func.count(), func.count(func.distinct(Event.body["n"].as_integer()))).where(
                Event.collection == coll
            )
        ).one()
    assert (n, distinct) == (total - len(invalid), total - len(invalid))
    rows = stack.errors(coll)
    assert [r.source_offset for r in rows] == sorted(invalid), "one error row per invalid event"
    codes = {r.source_offset: r.code for r in rows}
    assert codes == {
        i: "invalid_property_name" if i in dollar else "invalid_json" for i in sorted(invalid)
    }
    assert all(r.dlq_offset is not None for r in rows)

    dead = read_topic(stack.bootstrap, f"dlq.{stack.project_id}.{coll}")
    by_offset: dict[int, list] = defaultdict(list)
    for m in dead:
        by_offset[int(_hdrs(m)["inbound.original.offset"])].append(m)
    assert set(by_offset) == invalid, "every invalid event is dead-lettered, nothing else"
    row_by_offset = {r.source_offset: r for r in rows}
    for offset, copies in by_offset.items():
        row = row_by_offset[offset]
        # A copy produced again after the crash is the same letter: same error id, same bytes.
        assert {_hdrs(m)["inbound.error.id"].decode() for m in copies} == {row.id}
        assert {m.value for m in copies} == {values[offset]}
        assert row.dlq_offset in {m.offset for m in copies}, "the row names its DLQ record"
    duplicates = len(dead) - len(invalid)
    print(f"kill -9 at {at_kill[0]} stored/{at_kill[1]} errors: {duplicates} DLQ duplicates")

    with session_scope(stack.engine) as s:
        notes = s.scalars(select(Notification).where(Notification.type == "ingest.failed")).all()
        told = [n.payload["error_id"] for n in notes if n.payload.get("collection") == coll]
        assert sorted(told) == sorted(r.id for r in rows), "one notification per error"
        counters = s.scalars(select(IngestCounter).where(IngestCounter.collection == coll)).all()
        assert sum(c.received for c in counters) == total
        assert sum(c.accepted for c in counters) == total - len(invalid)
        assert sum(c.rejected for c in counters) == len(invalid)

    # Problems (issue #12): redelivered rows were not counted twice. The documented rule:
    # sha256(project \x1f collection \x1f code \x1f location)[:32].
    def problem_id(code: str, location: str) -> str:
        joined = "\x1f".join((stack.project_id, coll, code, location))
        return hashlib.sha256(joined.encode()).hexdigest()[:32]

    broken, priced = problem_id("invalid_json", ""), problem_id("invalid_property_name", "$price")
    with stack.engine.connect() as conn:
        rows_per_problem = dict(
            conn.execute(
                select(IngestError.problem_id, func.count())
                .where(IngestError.project_id == stack.project_id)
                .group_by(IngestError.problem_id)
            ).all()
        )
        counts = dict(
            conn.execute(
                select(Problem.id, Problem.count).where(Problem.project_id == stack.project_id)
            ).all()
        )
        created = conn.execute(
            select(Notification.payload).where(
                Notification.project_id == stack.project_id,
                Notification.type == "problem.created",
            )
        ).scalars()
        created_per_problem = Counter(p["problem_id"] for p in created)
    assert (len(invalid - dollar), len(dollar)) == (500, 500)
    assert (counts[broken], counts[priced]) == (500, 500)
    assert (rows_per_problem[broken], rows_per_problem[priced]) == (500, 500)
    assert counts == rows_per_problem, "each problem counts exactly its error rows"
    assert sum(counts.values()) == sum(rows_per_problem.values())
    assert created_per_problem == dict.fromkeys(counts, 1), "one problem.created per problem"


# -- 7. the _invalid fallback DLQ -----------------------------------------------------------


def test_a_collection_whose_dlq_topic_cannot_exist_goes_to_the_invalid_fallback(
    stack: Stack,
) -> None:
    """Kafka topic names have at most 249 characters. `in.<project>.<collection>` at 249 is a
    real topic; its `dlq.<project>.<collection>` would have 250 and cannot exist."""
    longest = "L" * (249 - len(f"in.{stack.project_id}."))
    assert len(stack.topic(longest)) == 249
    value = b'{"name": "too long for a DLQ"}'
    stack.produce(stack.topic(longest), [value], key=b"k7")
    stack.wait_errors(longest, 1)
    (row,) = stack.errors(longest)
    fallback = f"dlq.{stack.project_id}._invalid"
    assert row.code == "collection_name_too_long"
    assert row.dlq_topic == fallback
    dead = [m for m in read_topic(stack.bootstrap, fallback) if _hdrs(m)["inbound.error.id"]
            == row.id.encode()]  # fmt: skip
    assert len(dead) == 1
    (msg,) = dead
    assert msg.value == value and msg.key == b"k7"
    assert msg.offset == row.dlq_offset
    assert _hdrs(msg)["inbound.error.code"] == b"collection_name_too_long"
    assert stack.worker.health()["status"] == "ok"


# -- 8. the largest record the broker takes is dead-lettered whole ---------------------------


def test_a_record_at_the_broker_limit_is_dead_lettered_with_its_bytes_intact(
    stack: Stack,
) -> None:
    """Above the 900 KB event limit, at the broker's own limit (README: DLQ topics have
    max.message.bytes = 2 MiB "so the largest accepted record plus headers always fits")."""
    coll = stack.unique("huge")
    value = os.urandom(BROKER_MAX_MESSAGE - 1024)
    assert len(value) > EVENT_LIMIT
    stack.produce(stack.topic(coll), [value], headers=[("trace", b"t-1")], key=b"big")
    stack.wait_errors(coll, 1, timeout=60)
    (row,) = stack.errors(coll)
    assert row.code == "event_too_large"
    assert row.payload_size == len(value)
    assert row.payload == value[:ERROR_PAYLOAD_CAP]
    assert row.payload_sha256 == hashlib.sha256(value).hexdigest()
    (msg,) = read_topic(stack.bootstrap, f"dlq.{stack.project_id}.{coll}")
    hdrs = _hdrs(msg)
    assert msg.value == value, "the dead letter must carry the original bytes"
    assert msg.key == b"big" and hdrs["trace"] == b"t-1"
    assert hdrs["inbound.error.code"] == b"event_too_large"
    assert hdrs["inbound.error.id"] == row.id.encode()
    assert "inbound.value.omitted" not in hdrs


# -- 9. inbound.replay.count on replays that fail again -------------------------------------


def _replay_setup(stack: Stack) -> tuple[str, str, str, str]:
    """A project whose access key may not write: (project id, master key, key id, collection)."""
    with session_scope(stack.engine) as s:
        project = create_project(s, "replays")
        key_id = create_key(s, project["project_id"], "access", name="nw", permitted=[]).key.id
    return project["project_id"], project["master_key"], key_id, stack.unique("refunds")


def _rows(stack: Stack, pid: str, coll: str) -> list[IngestError]:
    with session_scope(stack.engine) as s:
        return list(
            s.scalars(
                select(IngestError)
                .where(IngestError.project_id == pid, IngestError.collection == coll)
                .order_by(IngestError.source_offset)
            )
        )


def _replay(api: ApiProcess, pid: str, master: str, body: dict) -> dict:
    r = httpx.post(
        f"{api.url}/3.0/projects/{pid}/errors/replay",
        headers={"Authorization": master},
        json=body,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()


def _dead_letter_of(stack: Stack, row: IngestError):  # noqa: ANN202 - aiokafka ConsumerRecord
    (msg,) = [m for m in read_topic(stack.bootstrap, row.dlq_topic) if m.offset == row.dlq_offset]
    assert _hdrs(msg)["inbound.error.id"] == row.id.encode()
    return msg


def _new_row(stack: Stack, pid: str, coll: str, known: set[str]) -> IngestError:
    """The one error row of the collection that is not in ``known``, once the worker wrote it."""

    def fresh() -> list[IngestError]:
        return [r for r in _rows(stack, pid, coll) if r.id not in known]

    wait_until(fresh, 30, stack.worker.tail)
    (row,) = fresh()
    return row


def _row(stack: Stack, error_id: str) -> IngestError:
    with session_scope(stack.engine) as s:
        return s.get(IngestError, error_id)


def _fail_twice(stack: Stack, api: ApiProcess) -> tuple[str, str, str, str, int, int]:
    """An event rejected, replayed and rejected again, twice; returns what the caller needs."""
    pid, master, key_id, coll = _replay_setup(stack)
    topic = f"in.{pid}.{coll}"
    ((partition, offset),) = stack.produce(
        topic, [b'{"amount": 3}'], headers=[("inbound.key_id", key_id.encode())]
    )
    first = _new_row(stack, pid, coll, set())
    assert first.code == "key_not_permitted"
    assert (first.source_partition, first.source_offset) == (partition, offset)
    assert "inbound.replay.count" not in _hdrs(_dead_letter_of(stack, first))

    out = _replay(api, pid, master, {"error_id": first.id})
    assert [(r["error_id"], r["replay_count"]) for r in out["replayed"]] == [(first.id, 1)]
    second = _new_row(stack, pid, coll, {first.id})
    assert second.code == "key_not_permitted"
    assert _hdrs(_dead_letter_of(stack, second))["inbound.replay.count"] == b"1"
    assert second.replay_count == 1
    # README: the error's replay_outcome links the result to the error_id.
    wait_until(
        lambda: (_row(stack, first.id).replay_outcome or {}).get("status") == "rejected",
        30,
        "the first error's replay_outcome never said rejected",
    )
    assert _row(stack, first.id).replay_outcome["error_id"] == second.id

    # The customer replays what is still open: the new error, not the replayed one.
    out = _replay(api, pid, master, {"filter": {"collection": coll, "status": "open"}})
    assert [(r["error_id"], r["replay_count"]) for r in out["replayed"]] == [(second.id, 2)]
    third = _new_row(stack, pid, coll, {first.id, second.id})
    assert _hdrs(_dead_letter_of(stack, third))["inbound.replay.count"] == b"2"
    assert third.replay_count == 2
    return pid, master, key_id, coll, partition, offset


@pytest.fixture
def api(stack: Stack) -> Iterator[ApiProcess]:
    proc = ApiProcess(stack.db_url, stack.bootstrap, stack.data_dir / "api").start()
    try:
        yield proc
    finally:
        proc.stop()


def test_a_replay_that_fails_again_counts_its_replays(stack: Stack, api: ApiProcess) -> None:
    _fail_twice(stack, api)


def test_after_failed_replays_a_fixed_event_is_stored_once_under_its_original_keen_id(
    stack: Stack, api: ApiProcess
) -> None:
    """README: `inbound.replay.source` names the original record, "so the worker keeps the
    original keen.id (a replayed event can never be stored twice)"."""
    pid, master, key_id, coll, partition, offset = _fail_twice(stack, api)
    with session_scope(stack.engine) as s:
        s.get(ApiKey, key_id).permitted = ["writes"]
    # Until the worker's key cache has the fix: a probe written with the key is stored.
    probe = stack.unique("probe")
    wait_until(
        lambda: (
            stack.produce(
                f"in.{pid}.{probe}", [b"{}"], headers=[("inbound.key_id", key_id.encode())]
            )
            and _count(stack, pid, probe) > 0
        ),
        30,
        "the worker never saw the key's fix",
    )
    # Every error row of this one event replayed (all under the cap of 3): open and replayed.
    out = _replay(api, pid, master, {"filter": {"collection": coll, "status": "open,replayed"}})
    assert len(out["replayed"]) == 3, out
    wait_until(
        lambda: (
            all(
                (r.replay_outcome or {}).get("status") in ("accepted", "rejected")
                for r in _rows(stack, pid, coll)
                if r.status == "replayed"
            )
            and _count(stack, pid, coll) > 0
        ),
        30,
        stack.worker.tail,
    )
    with session_scope(stack.engine) as s:
        stored = list(s.scalars(select(Event.keen_id).where(Event.collection == coll)))
    assert stored == [keen_id_for(f"in.{pid}.{coll}", partition, offset)]


def _count(stack: Stack, pid: str, coll: str) -> int:
    with stack.engine.connect() as conn:
        return conn.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.project_id == pid, Event.collection == coll)
        )


# -- 10. metric values -------------------------------------------------------------------


def test_metrics_count_exactly_what_was_accepted_and_rejected(stack: Stack) -> None:
    """README, "Worker observability": accepted, rejected by code, consumer lag."""
    _caught_up(stack)
    before = stack.worker.metrics()
    accepted0 = metrics.value(before, "inbound_events_accepted_total") or 0
    rejected0 = metrics.by_label(before, "inbound_events_rejected_total", "code")
    coll = stack.unique("counted")
    values = [orjson.dumps({"i": i}) for i in range(7)] + [b"{nope"] * 3 + [b"[1]", b"2"]
    stack.produce(stack.topic(coll), values)
    stack.wait_events(coll, 7)
    stack.wait_errors(coll, 5)

    def delta() -> tuple[float, dict[str, float]]:
        text = stack.worker.metrics()
        accepted = (metrics.value(text, "inbound_events_accepted_total") or 0) - accepted0
        now = metrics.by_label(text, "inbound_events_rejected_total", "code")
        rejected = {c: v - rejected0.get(c, 0) for c, v in now.items() if v != rejected0.get(c, 0)}
        return accepted, rejected

    expected = (7, {"invalid_json": 3, "not_an_object": 2})
    wait_until(lambda: delta() == expected, 30, lambda: f"metrics moved by {delta()}")
    _caught_up(stack)
    assert delta() == expected
