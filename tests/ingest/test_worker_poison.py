"""One poison record never stops the worker (issue #9): records the DLQ cannot take as they
are (null key and value, a value far over the DLQ limit once decompressed, many or null
headers) are dead-lettered in a bounded form, and another project's events keep flowing."""

from __future__ import annotations

import asyncio
import hashlib
import random

import orjson
from aiokafka import AIOKafkaProducer

from app.contract import headers as h
from app.store.db import session_scope
from app.store.projects import create_project
from tests.ingest.conftest import Stack, consume_all
from tests.support.worker import wait_until


def _other_project(stack: Stack) -> str:
    with session_scope(stack.engine) as s:
        return create_project(s, "other")["project_id"]


async def _produce_raw(
    bootstrap: str,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: list | None = None,
    compression: str | None = None,
) -> None:
    """Produce one record as it is, null key and value included: aiokafka's ``send`` refuses
    that pair, a hand-built batch does not."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        compression_type=compression,
        max_request_size=8 * 1024 * 1024,
        max_batch_size=8 * 1024 * 1024,
    )
    await producer.start()
    try:
        await producer.partitions_for(topic)  # creates the topic, fetches its metadata
        batch = producer.create_batch()
        assert batch.append(key=key, value=value, timestamp=None, headers=headers or [])
        fut = await producer.send_batch(batch, topic, partition=0)
        await fut
    finally:
        await producer.stop()


def _produce_one(stack: Stack, topic: str, key, value, headers=None, compression=None) -> None:  # noqa: ANN001
    asyncio.run(_produce_raw(stack.bootstrap, topic, key, value, headers, compression))


def _dead(stack: Stack, collection: str, n: int) -> list:
    """The collection's dead letters, one per error id: DLQ topics are at-least-once (a
    redelivery after a rebalance writes a letter again, under the same inbound.error.id)."""
    got = asyncio.run(consume_all(stack.bootstrap, f"dlq.{stack.project_id}.{collection}", n))
    by_id: dict[bytes, object] = {}
    for msg in got:
        by_id.setdefault(dict(msg.headers)[h.ERROR_ID], msg)
    return list(by_id.values())


def _json_ish(size: int) -> bytes:
    rng = random.Random(size)
    parts, total = [], 0
    while total < size:
        part = orjson.dumps({"id": rng.getrandbits(32), "name": f"user-{rng.random()}"})
        parts.append(part)
        total += len(part) + 1
    return b'{"rows": [' + b",".join(parts) + b"]}"


def _then_other_project_flows(stack: Stack, other: str, tag: str) -> None:
    """A valid event of another project, produced after the poison record, is stored."""
    coll = stack.unique(tag)
    topic = f"in.{other}.{coll}"
    stack.produce(topic, [orjson.dumps({"after": tag})])
    wait_until(
        lambda: _count(stack, other, coll) >= 1,
        30,
        f"{tag}: the other project's event was not stored\n{stack.worker.tail()}",
    )


def _count(stack: Stack, project_id: str, collection: str) -> int:
    from sqlalchemy import func, select

    from app.store.models import Event

    with stack.engine.connect() as conn:
        return conn.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.project_id == project_id, Event.collection == collection)
        )


def test_null_key_and_value_is_dead_lettered_and_others_flow(stack: Stack) -> None:
    other = _other_project(stack)
    coll = stack.unique("null")
    _produce_one(stack, stack.topic(coll), None, None)
    _then_other_project_flows(stack, other, "after_null")
    stack.wait_errors(coll, 1)
    (row,) = stack.errors(coll)
    assert row.code == "empty_value" and row.stage == "decode"
    assert row.dlq_offset is not None
    (msg,) = _dead(stack, coll, 1)
    hdrs = dict(msg.headers)
    assert msg.key is None and msg.value == b""
    assert hdrs[h.ERROR_CODE] == b"empty_value"
    assert hdrs[h.VALUE_OMITTED].startswith(b"null value")
    assert stack.worker.health()["status"] == "ok"


def test_compressed_record_too_large_for_the_dlq_is_bounded(stack: Stack) -> None:
    other = _other_project(stack)
    coll = stack.unique("zip")
    value = _json_ish(3 * 1024 * 1024)
    _produce_one(stack, stack.topic(coll), b"k", value, [("trace", b"t")], compression="gzip")
    _then_other_project_flows(stack, other, "after_zip")
    stack.wait_errors(coll, 1)
    (row,) = stack.errors(coll)
    assert row.code == "event_too_large"
    assert row.payload_size == len(value)
    (msg,) = _dead(stack, coll, 1)
    hdrs = dict(msg.headers)
    assert msg.value == b"" and msg.key == b"k"
    assert hdrs[h.VALUE_OMITTED]
    assert hdrs[h.VALUE_SIZE] == str(len(value)).encode()
    assert hdrs[h.VALUE_SHA256] == hashlib.sha256(value).hexdigest().encode()
    assert hdrs["trace"] == b"t"


def test_record_shapes_never_stop_the_worker(stack: Stack) -> None:
    """Every shape, then a valid event of another project that must be stored."""
    other = _other_project(stack)
    big = _json_ish(2_500_000)
    many = [(f"h{i}", b"v" * 200) for i in range(2000)]  # ~420 KB of headers
    shapes = [
        ("null_value_with_key", b"k", None, [], None),
        ("empty_key_empty_value", b"", b"", [], None),
        ("null_key_empty_value", None, b"", [], None),
        ("null_header_values", None, b"{bad", [("a", None), (h.KEY_ID, None)], None),
        ("many_headers", b"k", b'{"a": 1}', many, None),
        ("many_headers_zstd_big", None, big, many, "zstd"),
        ("null_value_gzip", None, None, [("x", None)], "gzip"),
        ("oversized_zstd", b"k" * 1000, big, [], "zstd"),
        ("nul_in_header_name", b"k\x00", b"{bad\x00", [("a\x00b", b"\x00")], None),
        ("nul_in_key_id", None, b'{"a": 1}', [(h.KEY_ID, b"k\x00")], None),
        ("replay_header_malformed", None, b'{"a": 1}', [(h.REPLAY_SOURCE, b"no/such")], None),
        # PostgreSQL's JSON columns cannot hold \u0000: it must be dead-lettered, not stored.
        ("nul_in_a_string_value", None, b'{"note": "a\\u0000b"}', [], None),
    ]
    collections = []
    for tag, key, value, headers, codec in shapes:
        coll = stack.unique(tag[:20])
        collections.append(coll)
        _produce_one(stack, stack.topic(coll), key, value, headers, codec)
        _then_other_project_flows(stack, other, tag[:20])
    for coll in collections:
        # Each record ended up somewhere: stored, or an error row with a DLQ record.
        wait_until(
            lambda c=coll: stack.count_events(c) + len(stack.errors(c)) >= 1,
            30,
            f"{coll}: neither stored nor dead-lettered\n{stack.worker.tail()}",
        )
        assert all(r.dlq_offset is not None for r in stack.errors(coll))
    [nul] = stack.errors(collections[-1])
    assert nul.code == "invalid_property_value"
    assert stack.worker.alive()
    assert stack.worker.health()["status"] == "ok"
