"""The rejection builder's caps at their exact edges (app/contract/rejection.py): message and
name cuts on character boundaries, the detail header's size, the headers and record budgets of a
dead letter, a refused letter's key, timestamps that are missing or not positive, NUL in client
data."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from decimal import Decimal

import orjson

from app.contract import rejection as r
from app.contract.errors import Rejection
from app.contract.rejection import (
    build_rejection,
    cap_text,
    capped_detail,
    json_no_nul,
    no_nul,
    replay_count_of,
)

AT = datetime(2026, 11, 28, 12, 0, 1, 123456, tzinfo=UTC)


def rejected(**over: object) -> r.RejectedRecord:
    args: dict = {
        "error_id": "e" * 32,
        "failed_at": AT,
        "project_id": "p" * 24,
        "collection": "c",
        "dlq_topic": "dlq.p.c",
        "original_topic": "c",
        "source": ("in.p.c", 1, 2),
        "timestamp_ms": 5,
        "key": b"k",
        "value": b"v",
        "headers": (),
        "replay_count": 0,
    }
    args.update(over)
    return build_rejection(Rejection("invalid_json", "decode", "bad", {"a": 1}), **args)


def header(letter: r.DlqRecord, name: str) -> bytes | None:
    found = [v for k, v in letter.headers if k == name]
    assert len(found) == 1, (name, letter.headers)
    return found[0]


def names(letter: r.DlqRecord) -> list[str]:
    return [k for k, _ in letter.headers]


def test_limits() -> None:
    assert (r.MESSAGE_CAP, r.DETAIL_CAP, r.NAME_CAP) == (1024, 4096, 300)
    assert r.DLQ_MAX_MESSAGE_BYTES == 2 * 1024 * 1024
    assert r.DLQ_RECORD_BUDGET == 2 * 1024 * 1024 - 128 * 1024
    assert r.DLQ_HEADERS_CAP == 256 * 1024
    assert r.REFUSED_KEY_CAP == 16 * 1024


def test_cap_text_edges() -> None:
    assert cap_text("a" * 10, 10) == "a" * 10
    assert cap_text("a" * 11, 10) == "a" * 7 + "..."
    assert len(cap_text("a" * 11, 10).encode()) == 10
    # A two-byte character cut in half is dropped, not mangled.
    assert cap_text("aaaaaaé" + "b" * 5, 10) == "aaaaaa..."
    assert cap_text("é" * 5, 10) == "é" * 5


def test_capped_detail_edges() -> None:
    # {"k":"..."} is 8 bytes of framing.
    exact = {"k": "x" * (4096 - 8)}
    assert len(orjson.dumps(exact)) == 4096
    assert capped_detail(exact) == orjson.dumps(exact)
    over = {"k": "x" * (4096 - 7)}
    assert orjson.loads(capped_detail(over)) == {"truncated": True, "size": 4097}
    # Values JSON cannot hold are written as text.
    assert orjson.loads(capped_detail({"d": Decimal("1.5")})) == {"d": "1.5"}


def test_replay_count_of() -> None:
    assert replay_count_of(()) == 0
    assert replay_count_of((("inbound.replay.count", b""),)) == 0
    assert replay_count_of((("inbound.replay.count", b"x"),)) == 0
    assert replay_count_of((("inbound.replay.count", b"2"),)) == 2


def test_names_are_cut_at_300_bytes_on_a_character_boundary() -> None:
    def topic_header(name: str) -> bytes | None:
        return header(rejected(original_topic=name).dlq_record(), "inbound.original.topic")

    assert topic_header("t" * 300) == b"t" * 300
    assert topic_header("t" * 301) == b"t" * 300
    assert topic_header("a" + "é" * 150) == ("a" + "é" * 149).encode()


def test_headers_cap_edges() -> None:
    cap = 256 * 1024
    # A header costs its name, its value and 8 bytes.
    fits = (("h", b"v" * (cap - 1 - 8)),)
    letter = rejected(headers=fits).dlq_record()
    assert letter.headers[0] == fits[0]
    assert "inbound.headers.omitted" not in names(letter)
    over = (("h", b"v" * (cap - 8)), ("i", None))
    letter = rejected(headers=over).dlq_record()
    assert header(letter, "inbound.headers.omitted") == b"2 headers, %d bytes" % (cap + 1 + 9)
    assert "h" not in names(letter)


def test_record_budget_edges() -> None:
    budget = 2 * 1024 * 1024 - 128 * 1024
    headers = (("h", b"12"),)  # 11 bytes
    fits = rejected(key=b"k" * 10, value=b"v" * (budget - 10 - 11), headers=headers)
    letter = fits.dlq_record()
    assert letter.value == fits.value
    assert "inbound.value.omitted" not in names(letter)
    over = rejected(key=b"k" * 10, value=b"v" * (budget - 10 - 10), headers=headers)
    letter = over.dlq_record()
    assert letter.value == b""
    assert header(letter, "inbound.value.size") == b"%d" % (budget - 20)
    assert header(letter, "inbound.value.omitted") == (
        b"value of %d bytes is larger than a dead letter may carry (%d bytes with key and headers)"
        % (budget - 20, budget)
    )
    # The headers count towards the budget.
    big_headers = (("h", b"x" * 1000),)
    near = rejected(key=None, value=b"v" * (budget - 500), headers=big_headers).dlq_record()
    assert near.value == b""
    assert near.key is None


def test_a_refused_letter_drops_only_a_large_key() -> None:
    cap = 16 * 1024
    kept = rejected(key=b"k" * cap).dlq_record(refused="too large")
    assert kept.key == b"k" * cap
    dropped = rejected(key=b"k" * (cap + 1)).dlq_record(refused="too large")
    assert dropped.key is None
    assert dropped.value == b""
    # Not refused: a large key stays.
    assert rejected(key=b"k" * (cap + 1)).dlq_record().key == b"k" * (cap + 1)
    assert rejected(key=None).dlq_record(refused="x").key is None


def test_a_tombstone_letter() -> None:
    letter = rejected(value=None).dlq_record()
    assert letter.value == b""
    assert header(letter, "inbound.value.omitted") == b"null value (tombstone)"
    assert header(letter, "inbound.value.size") == b"0"
    assert header(letter, "inbound.value.sha256") == hashlib.sha256(b"").hexdigest().encode()


def test_original_timestamp_header() -> None:
    assert header(rejected(timestamp_ms=None).dlq_record(), "inbound.original.timestamp") == b""
    assert header(rejected(timestamp_ms=0).dlq_record(), "inbound.original.timestamp") == b"0"
    assert header(rejected(timestamp_ms=7).dlq_record(), "inbound.original.timestamp") == b"7"


def test_error_row_timestamps_payloads_headers() -> None:
    def row(**over: object) -> dict:
        return rejected(**over).error_row(64, None)

    assert row()["message"] == "bad"
    assert row(timestamp_ms=None)["record_timestamp"] is None
    assert row(timestamp_ms=0)["record_timestamp"] is None
    assert row(timestamp_ms=-5)["record_timestamp"] is None
    assert row(timestamp_ms=1)["record_timestamp"] == datetime(
        1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC
    )
    empty = row(value=None)
    assert (empty["payload"], empty["payload_size"]) == (b"", 0)
    assert empty["payload_sha256"] == hashlib.sha256(b"").hexdigest()
    headed = row(headers=(("a", None), ("b\x00", b"\x01")))
    assert headed["headers"] == [["a", ""], ["b\ufffd", base64.b64encode(b"\x01").decode()]]


def test_no_nul() -> None:
    assert no_nul(None) is None
    assert no_nul("") == ""
    assert no_nul("abc") == "abc"
    assert no_nul("a\x00b\x00") == "a\ufffdb\ufffd"


def test_json_no_nul() -> None:
    detail = {"d": Decimal("1.5"), "s": "ok"}
    # Nothing to replace: the detail itself, untouched.
    assert json_no_nul(detail) is detail
    replaced = json_no_nul({"k": "a\x00", "d": Decimal("2")})
    assert replaced == {"k": "a\ufffd", "d": "2"}
