"""The bounded form of a dead letter, and lag and stall detection, without a broker."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from app.contract import headers as h
from app.contract.errors import Rejection
from app.ingest.dlq import DLQ_MAX_MESSAGE_BYTES, DLQ_RECORD_BUDGET, dead_letter
from app.ingest.dlq_writer import DlqWriter
from app.ingest.lag import StallTracker, partition_lag
from app.ingest.pipeline import RawRecord
from app.kafka.client_options import plaintext

PID = "ab" * 12
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _letter(  # noqa: ANN202
    value: bytes | None, key: bytes | None = b"k", headers: tuple = (), offset: int = 7
):
    record = RawRecord(f"in.{PID}.c", 0, offset, 1_700_000_000_000, key, value, headers)
    return dead_letter(record, Rejection("invalid_json", "decode", "bad", {}), NOW)


def _size(rec) -> int:  # noqa: ANN001
    return (
        len(rec.key or b"") + len(rec.value) + sum(len(k) + len(v or b"") for k, v in rec.headers)
    )


def test_a_record_that_fits_is_dead_lettered_as_it_is() -> None:
    rec = _letter(b"{bad", headers=(("trace", b"t"),)).dlq_record()
    names = [k for k, _ in rec.headers]
    assert rec.value == b"{bad" and rec.key == b"k"
    assert names[0] == "trace" and h.ERROR_CODE in names
    assert h.VALUE_OMITTED not in names and h.HEADERS_OMITTED not in names


def test_a_null_value_becomes_empty_and_says_so() -> None:
    rec = _letter(None, key=None).dlq_record()
    hdrs = dict(rec.headers)
    assert rec.value == b"" and rec.key is None
    assert hdrs[h.VALUE_OMITTED].startswith(b"null value")
    assert hdrs[h.VALUE_SIZE] == b"0"


def test_a_value_over_the_dlq_budget_is_omitted_with_its_size_and_hash() -> None:
    value = b"x" * (3 * 1024 * 1024)
    rec = _letter(value).dlq_record()
    hdrs = dict(rec.headers)
    assert rec.value == b""
    assert hdrs[h.VALUE_SIZE] == str(len(value)).encode()
    assert hdrs[h.VALUE_SHA256] == hashlib.sha256(value).hexdigest().encode()
    assert _size(rec) < DLQ_MAX_MESSAGE_BYTES


def test_a_value_just_under_the_budget_is_kept() -> None:
    value = b"x" * (DLQ_RECORD_BUDGET - 100)
    assert _letter(value, key=None).dlq_record().value == value


def test_too_many_headers_are_dropped_and_counted() -> None:
    many = tuple((f"h{i}", b"v" * 1000) for i in range(1000))
    rec = _letter(b"{bad", headers=many).dlq_record()
    hdrs = dict(rec.headers)
    assert hdrs[h.HEADERS_OMITTED].startswith(b"1000 headers")
    assert "h1" not in hdrs and rec.value == b"{bad"


def test_the_refused_form_keeps_only_the_error_headers() -> None:
    rec = _letter(b"v" * 1000, key=b"K" * 100_000, headers=(("a", None),)).dlq_record(
        refused="MessageSizeTooLargeError: too big"
    )
    hdrs = dict(rec.headers)
    assert rec.value == b"" and rec.key is None
    assert b"MessageSizeTooLargeError" in hdrs[h.VALUE_OMITTED]
    assert h.HEADERS_OMITTED in hdrs and "a" not in hdrs
    assert hdrs[h.ERROR_ID]


def test_partition_lag() -> None:
    assert partition_lag(10, 4, 0) == 6
    assert partition_lag(10, None, 3) == 7  # nothing committed: from the log start
    assert partition_lag(10, -1001, None) == 10
    assert partition_lag(None, 4, 0) == 0
    assert partition_lag(3, 5, 0) == 0


def test_stall_needs_lag_and_an_offset_that_does_not_move() -> None:
    tracker: StallTracker[str] = StallTracker(stall_seconds=60)
    assert tracker.observe(0, {"a": 10, "b": 5}, {"a": 4, "b": 5}) == 6
    assert tracker.stalled(59) == []
    tracker.observe(59, {"a": 12, "b": 5}, {"a": 4, "b": 5})
    assert [tp for tp, _ in tracker.stalled(61)] == ["a"]
    assert tracker.stalled(61, excluded={"a"}) == []  # paused on purpose
    tracker.observe(62, {"a": 12, "b": 5}, {"a": 8, "b": 5})  # it moved
    assert tracker.stalled(100) == []
    tracker.observe(130, {"a": 12, "b": 5}, {"a": 8, "b": 5})
    ((tp, state),) = tracker.stalled(130)
    assert tp == "a" and state.lag == 4 and state.committed == 8


def test_caught_up_is_never_stalled_and_revoked_partitions_are_forgotten() -> None:
    tracker: StallTracker[str] = StallTracker(stall_seconds=1)
    tracker.observe(0, {"a": 5}, {"a": 5})
    tracker.observe(10, {"a": 5}, {"a": 5})
    assert tracker.stalled(10) == []
    tracker.observe(11, {"b": 5}, {"b": 0})
    assert set(tracker.partitions) == {"b"}


class _FakeProducer:
    """Refuses records with a value over ``limit`` (as the broker does, through the future) and
    raises ``on_send`` from ``send`` for the first attempt of every record."""

    def __init__(self, limit: int, on_send: BaseException | None = None) -> None:
        self.limit, self.on_send, self.sent = limit, on_send, []

    async def send(self, topic, value=None, key=None, headers=None):  # noqa: ANN001, ANN201
        fut = asyncio.get_running_loop().create_future()
        if self.on_send is not None and not any(k == h.VALUE_OMITTED for k, _ in headers):
            raise self.on_send
        if len(value) > self.limit:
            fut.set_exception(MessageSizeTooLargeError("too large"))
        else:
            self.sent.append((key, value, dict(headers)))
            fut.set_result(SimpleNamespace(partition=0, offset=len(self.sent) - 1))
        return fut


def _writer(producer: _FakeProducer) -> DlqWriter:
    writer = DlqWriter(plaintext("unused:9092"), 1)
    writer._producer = producer  # type: ignore[assignment]
    writer._known = {f"dlq.{PID}.c"}
    return writer


def test_a_refused_letter_is_produced_again_without_value_and_the_rest_go_through() -> None:
    producer = _FakeProducer(limit=10)
    letters = [_letter(b"{bad", offset=1), _letter(b"y" * 100, offset=2), _letter(b"{x", offset=3)]
    coords = asyncio.run(_writer(producer).write(letters))
    assert len(coords) == 3
    values = [v for _, v, _ in producer.sent]
    assert values == [b"{bad", b"{x", b""]
    assert b"MessageSizeTooLargeError" in producer.sent[2][2][h.VALUE_OMITTED]


def test_a_record_fault_raised_by_send_is_not_retried_forever() -> None:
    producer = _FakeProducer(limit=100, on_send=AssertionError("Need at least one: key or value"))
    coords = asyncio.run(_writer(producer).write([_letter(b"{bad")]))
    assert len(coords) == 1 and producer.sent[0][1] == b""


def test_broker_unavailability_propagates_for_the_batch_to_be_retried() -> None:
    producer = _FakeProducer(limit=100, on_send=KafkaConnectionError("down"))
    with pytest.raises(KafkaConnectionError):
        asyncio.run(_writer(producer).write([_letter(b"{bad")]))
