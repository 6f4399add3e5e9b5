"""One builder for a rejection: the worker's dead letters and the HTTP API's refusals carry the
same headers, caps and timestamp format (docs/design.md, "A dead letter"), without a broker."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import orjson

from app.contract.errors import Rejection
from app.contract.rejection import build_rejection
from app.contract.topics import inbound_parts
from app.ingest.dlq import dead_letter
from app.ingest.persist import ERROR_COLUMNS
from app.ingest.records import RawRecord

PID = "ab" * 12
FAILED_AT = datetime(2026, 11, 28, 12, 0, 1, 123456, tzinfo=UTC)
RECORD_MS = 1_795_161_600_250  # 2026-11-20T08:00:00.250Z
ERROR_HEADERS = [
    "inbound.error.code",
    "inbound.error.stage",
    "inbound.error.message",
    "inbound.error.detail",
    "inbound.error.id",
    "inbound.original.topic",
]


def _worker(
    topic: str = f"in.{PID}.purchases",
    headers: tuple = (("inbound.key_id", b"k1"), ("trace", b"t")),
    rejection: Rejection | None = None,
):  # noqa: ANN202
    record = RawRecord(topic, 2, 41, RECORD_MS, b"key", b"{bad", headers)
    return dead_letter(
        record, rejection or Rejection("invalid_json", "decode", "bad", {"pos": 1}), FAILED_AT
    )


def _http(collection: str = "purchases", message: str = "The body is not JSON."):  # noqa: ANN202
    return build_rejection(
        Rejection("invalid_json", "http", message, {"position": 3}),
        error_id="e" * 32,
        failed_at=FAILED_AT,
        project_id=PID,
        collection=collection,
        dlq_topic=f"dlq.{PID}.purchases",
        original_topic=collection,
        source=None,
        timestamp_ms=RECORD_MS,
        key=None,
        value=b"{no",
        headers=(("inbound.key_id", b"k1"),),
        replay_count=0,
    )


def test_a_worker_dead_letter_keeps_the_original_then_adds_the_error_headers() -> None:
    rec = _worker().dlq_record()
    assert (rec.key, rec.value) == (b"key", b"{bad")
    assert [k for k, _ in rec.headers] == [
        "inbound.key_id",
        "trace",
        *ERROR_HEADERS,
        "inbound.original.partition",
        "inbound.original.offset",
        "inbound.original.timestamp",
        "inbound.failed_at",
    ]
    hdrs = dict(rec.headers)
    assert hdrs["inbound.error.code"] == b"invalid_json"
    assert hdrs["inbound.error.stage"] == b"decode"
    assert orjson.loads(hdrs["inbound.error.detail"]) == {"pos": 1}
    assert hdrs["inbound.original.topic"] == b"purchases"  # the customer's name
    assert (hdrs["inbound.original.partition"], hdrs["inbound.original.offset"]) == (b"2", b"41")
    assert hdrs["inbound.original.timestamp"] == b"1795161600250"
    assert hdrs["inbound.failed_at"] == b"2026-11-28T12:00:01.123Z"


def test_an_http_refusal_has_no_partition_or_offset_and_the_same_format() -> None:
    rec = _http().dlq_record()
    assert (rec.key, rec.value) == (None, b"{no")
    assert [k for k, _ in rec.headers] == [
        "inbound.key_id",
        *ERROR_HEADERS,
        "inbound.original.timestamp",
        "inbound.failed_at",
    ]
    hdrs = dict(rec.headers)
    assert hdrs["inbound.error.stage"] == b"http"
    assert hdrs["inbound.error.id"] == b"e" * 32
    assert hdrs["inbound.failed_at"] == b"2026-11-28T12:00:01.123Z"


def test_caps_keep_headers_valid_utf8_and_json() -> None:
    long_name = "é" * 400  # 800 bytes
    hdrs = dict(_http(collection=long_name, message="ü" * 2000).dlq_record().headers)
    assert len(hdrs["inbound.original.topic"]) <= 300
    hdrs["inbound.original.topic"].decode()
    message = hdrs["inbound.error.message"]
    assert len(message) <= 1024 and message.decode().endswith("...")
    big = _worker(rejection=Rejection("invalid_json", "decode", "m", {"x": "y" * 5000}))
    detail = orjson.loads(dict(big.dlq_record().headers)["inbound.error.detail"])
    assert detail["truncated"] is True and detail["size"] > 4096


def test_the_error_row_names_every_column_and_the_dlq_coordinates() -> None:
    letter = _worker(headers=(("inbound.key_id", b"k1"), ("inbound.replay.count", b"2")))
    row = letter.error_row(payload_cap=2, dlq_at=(0, 7))
    assert list(row) == list(ERROR_COLUMNS)
    assert row["code"] == "invalid_json" and row["stage"] == "decode"
    assert (row["project_id"], row["collection"]) == (PID, "purchases")
    assert (row["source_topic"], row["source_partition"], row["source_offset"]) == (
        f"in.{PID}.purchases",
        2,
        41,
    )
    assert row["record_timestamp"] == datetime(2026, 11, 20, 8, 0, 0, 250000, tzinfo=UTC)
    assert (row["payload"], row["payload_size"]) == (b"{b", 4)
    assert row["payload_sha256"] == hashlib.sha256(b"{bad").hexdigest()
    assert row["record_key"] == b"key"
    assert row["headers"][0] == ["inbound.key_id", base64.b64encode(b"k1").decode()]
    assert (row["key_id"], row["status"], row["replay_count"]) == ("k1", "open", 2)
    assert (row["dlq_topic"], row["dlq_partition"], row["dlq_offset"]) == (
        f"dlq.{PID}.purchases",
        0,
        7,
    )
    assert row["created_at"] == row["updated_at"] == FAILED_AT


def test_an_http_row_has_no_source_and_no_dlq_when_kafka_did_not_take_it() -> None:
    row = _http().error_row(payload_cap=1024, dlq_at=None)
    assert (row["source_topic"], row["source_partition"], row["source_offset"]) == (None,) * 3
    assert (row["dlq_topic"], row["dlq_partition"], row["dlq_offset"]) == (None,) * 3
    assert (row["stage"], row["key_id"], row["replay_count"]) == ("http", "k1", 0)
    assert row["headers"] == [["inbound.key_id", base64.b64encode(b"k1").decode()]]


def test_nul_from_client_data_never_reaches_the_row() -> None:
    rejection = Rejection("key_not_permitted", "validate", "m", {"key_id": "a\x00b"})
    row = _worker(headers=(("x\x00", b"v"), ("inbound.key_id", b"a\x00b")), rejection=rejection)
    values = row.error_row(payload_cap=10, dlq_at=(0, 1))
    assert values["detail"] == {"key_id": "a\ufffdb"}
    assert values["key_id"] == "a\ufffdb" and values["headers"][0][0] == "x\ufffd"


def test_a_malformed_inbound_topic_is_named_as_far_as_it_goes() -> None:
    assert inbound_parts(f"in.{PID}.purchases") == (PID, "purchases")
    assert inbound_parts("in.short.purchases") == ("short", "purchases")
    assert inbound_parts(f"in.{PID}") == (PID, "")
    letter = _worker(topic="in.short.purchases")
    assert letter.dlq_topic == "dlq.short.purchases"
    assert dict(letter.dlq_record().headers)["inbound.original.topic"] == b"in.short.purchases"
    assert _worker(topic=f"in.{PID}").dlq_topic == f"dlq.{PID}._invalid"


def test_the_notification_carries_the_same_ids_and_timestamp() -> None:
    note = _worker().notification()
    # The fingerprint rule of docs/design.md, "Problems", written out: no path, code alone.
    problem_id = hashlib.sha256(f"{PID}\x1fpurchases\x1finvalid_json\x1f".encode()).hexdigest()
    assert note == {
        "error_id": _worker().error_id,
        "problem_id": problem_id[:32],
        "code": "invalid_json",
        "stage": "decode",
        "collection": "purchases",
        "message": "bad",
        "created_at": "2026-11-28T12:00:01.123Z",
    }
