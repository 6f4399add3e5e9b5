"""The ingest steps one at a time, each refusal pinned whole (code, stage, message, detail):
the customer reads these in DLQ headers and the errors API, so a change must be deliberate.
Edges written for mutation testing (tools/mutation.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from app.contract.errors import Rejection
from app.ingest.steps.access import check_access
from app.ingest.steps.autofill import apply_autofill
from app.ingest.steps.collection import collection_of
from app.ingest.steps.decode import decode_event
from app.ingest.steps.keen import (
    build_keen,
    format_timestamp,
    keen_id_for,
    parse_timestamp,
)
from app.ingest.steps.size import check_size
from tests.ingest.steps.pipeline_support import (
    NOW,
    OTHER_PROJECT,
    PROJECT,
    TOPIC,
    MemoryLookup,
    record,
)

# --- size: 900 KB (README) -------------------------------------------------------------------


def test_size_limit_is_900_kb_inclusive() -> None:
    assert check_size(b"x" * 921_600) is None
    too = check_size(b"x" * 921_601)
    assert too == Rejection(
        "event_too_large",
        "decode",
        "The event is 921601 bytes; send at most 900 KB (921600 bytes) per event, for "
        "example by splitting it or dropping large properties.",
        {"bytes": 921_601, "limit": 921_600},
    )


def test_null_and_empty_values() -> None:
    assert check_size(None) == Rejection(
        "empty_value",
        "decode",
        "The record value is null (a tombstone); send one JSON object per record.",
        {"bytes": 0, "null": True},
    )
    assert check_size(b"") == Rejection(
        "empty_value",
        "decode",
        "The record value is empty; send one JSON object per record.",
        {"bytes": 0, "null": False},
    )
    assert check_size(b"{") is None


# --- decode ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (b"[1]", "an array"),
        (b'"s"', "a string"),
        (b"1", "a number"),
        (b"1.5", "a number"),
        (b"true", "a boolean"),
        (b"null", "null"),
    ],
)
def test_not_an_object_names_the_json_type(value: bytes, kind: str) -> None:
    assert decode_event(value) == Rejection(
        "not_an_object",
        "decode",
        f"The event is {kind}; send one JSON object per record, e.g. "
        '{"item": "book", "price": 12}.',
        {"type": kind},
    )


def test_decode_accepts_an_object() -> None:
    assert decode_event(b'{"a": 1, "a": 2}') == {"a": 2}


def test_invalid_utf8_names_the_byte_offset() -> None:
    assert decode_event(b'{"a": "\xff"}') == Rejection(
        "invalid_utf8",
        "decode",
        "The event is not valid UTF-8; encode the JSON text as UTF-8.",
        {"byte_offset": 7},
    )


def test_lone_surrogate_escape_is_invalid_utf8() -> None:
    result = decode_event(b'{"a": "\\ud800"}')
    assert isinstance(result, Rejection)
    assert (result.code, result.stage) == ("invalid_utf8", "decode")
    assert result.message == (
        "The event contains a \\u escape of a lone UTF-16 surrogate, which is not a "
        "character; fix the string (often a truncated emoji) before sending."
    )
    assert result.detail["reason"] == "lone surrogate escape"
    assert isinstance(result.detail["char_offset"], int)


def test_too_deep_for_the_parser() -> None:
    assert decode_event(b"[" * 1100 + b"]" * 1100) == Rejection(
        "too_deeply_nested",
        "validate",
        "The event nests objects or arrays more than 32 levels deep; flatten it to at most "
        "32 levels.",
        {"limit": 32},
    )


def test_invalid_json_carries_the_parsers_reason() -> None:
    result = decode_event(b'{"a": NaN}')
    assert isinstance(result, Rejection)
    assert (result.code, result.stage) == ("invalid_json", "decode")
    try:
        orjson.loads(b'{"a": NaN}')
    except orjson.JSONDecodeError as exc:
        reason, pos = exc.msg, exc.pos
    assert result.detail == {"char_offset": pos, "reason": reason}
    assert result.message == (
        f"The event is not valid JSON ({reason}); send one JSON object per record."
    )


# --- collection ----------------------------------------------------------------------------


def test_collection_of() -> None:
    assert collection_of(TOPIC) == (PROJECT, "purchases")
    assert collection_of("elsewhere") == Rejection(
        "unknown_project",
        "validate",
        "The topic does not belong to a project; produce to a topic of your own project.",
        {"topic": "elsewhere"},
    )
    long = collection_of("x" * 400)
    assert isinstance(long, Rejection) and long.detail == {"topic": "x" * 300}
    bad = collection_of(f"in.{PROJECT}.a b")
    assert bad == Rejection(
        "invalid_collection_name",
        "validate",
        "A collection name uses only letters, digits, '.', '_' and '-' and is not empty; "
        "rename the collection (topic).",
        {"collection": "a b"},
    )


# --- access ----------------------------------------------------------------------------------

KEY = "inbound.key_id"
UNKNOWN_PROJECT = Rejection(
    "unknown_project",
    "validate",
    "The project does not exist or is disabled; check the project id you produce to.",
    {"project_id": "aaaaaaaaaaaaaaaaaaaaaaaa"},
)


def _not_permitted(key_id: str) -> Rejection:
    return Rejection(
        "key_not_permitted",
        "validate",
        "The key that sent this event may not write to this project (revoked, read-only "
        "or another project's); send it with a write or master key of this project.",
        {"key_id": key_id},
    )


def test_access() -> None:
    lookup = MemoryLookup()
    assert check_access("aaaaaaaaaaaaaaaaaaaaaaaa", ((KEY, b"writer"),), lookup) == UNKNOWN_PROJECT
    missing = check_access("bbbbbbbbbbbbbbbbbbbbbbbb", (), lookup)
    assert isinstance(missing, Rejection) and missing.code == "unknown_project"
    assert check_access(PROJECT, (), lookup) is None  # a trusted internal producer
    assert check_access(PROJECT, (("other", b"x"),), lookup) is None
    key = check_access(PROJECT, ((KEY, b"writer"),), lookup)
    assert key is lookup.keys["writer"]
    assert check_access(PROJECT, ((KEY, b"reader"),), lookup) == _not_permitted("reader")
    assert check_access(PROJECT, ((KEY, b"foreign"),), lookup) == _not_permitted("foreign")
    assert check_access(OTHER_PROJECT, ((KEY, b"foreign"),), lookup) is lookup.keys["foreign"]
    assert check_access(PROJECT, ((KEY, b"nobody"),), lookup) == _not_permitted("nobody")
    assert check_access(PROJECT, ((KEY, b""),), lookup) == _not_permitted("")
    assert check_access(PROJECT, ((KEY, b"\xff"),), lookup) == _not_permitted("")
    assert check_access(PROJECT, ((KEY, b"n" * 100),), lookup) == _not_permitted("n" * 64)
    # The last header wins (Kafka allows repeats).
    both = ((KEY, b"reader"), (KEY, b"writer"))
    assert check_access(PROJECT, both, lookup) is lookup.keys["writer"]


# --- autofill --------------------------------------------------------------------------------


def test_autofill_fills_only_what_is_missing_and_copies() -> None:
    autofill = {
        "plan": "pro",
        "app": {"name": "shop", "meta": {"v": 1}, "list": [{"x": 1}, [2]]},
        "tags": ["a", {"b": 1}],
        "keen": {"timestamp": "2001-01-01T00:00:00Z"},
        "mine": 0,
    }
    event = {"app": {"name": "mine"}, "mine": 5, "flat": {"a": 1}}
    apply_autofill(event, autofill)
    assert event == {
        "app": {"name": "mine", "meta": {"v": 1}, "list": [{"x": 1}, [2]]},
        "mine": 5,
        "flat": {"a": 1},
        "plan": "pro",
        "tags": ["a", {"b": 1}],
    }
    # Copies, not the shared autofill's own objects.
    event["app"]["meta"]["v"] = 2
    event["app"]["list"][0]["x"] = 9
    event["app"]["list"][1].append(3)
    event["tags"][1]["b"] = 7
    assert autofill["app"] == {"name": "shop", "meta": {"v": 1}, "list": [{"x": 1}, [2]]}
    assert autofill["tags"] == ["a", {"b": 1}]


def test_autofill_does_not_merge_into_a_non_object() -> None:
    event = {"app": "text", "lst": [1]}
    apply_autofill(event, {"app": {"name": "x"}, "lst": {"a": 1}})
    assert event == {"app": "text", "lst": [1]}


def test_autofill_nested_defaults_are_deep() -> None:
    event: dict = {"a": {"b": {}}}
    apply_autofill(event, {"a": {"b": {"c": {"d": 1}}, "e": []}})
    assert event == {"a": {"b": {"c": {"d": 1}}, "e": []}}


# --- keen ------------------------------------------------------------------------------------


def test_keen_id_is_24_hex_of_the_coordinates() -> None:
    one = keen_id_for(TOPIC, 0, 42)
    assert len(one) == 24 and int(one, 16) >= 0 and one == one.lower()
    assert one == keen_id_for(TOPIC, 0, 42)
    assert one != keen_id_for(TOPIC, 1, 42) != keen_id_for(TOPIC, 0, 43)
    import hashlib

    assert one == hashlib.blake2b(f"{TOPIC}/0/42".encode(), digest_size=12).hexdigest()


def test_format_timestamp() -> None:
    moment = datetime(2026, 11, 24, 19, 7, 46, 123456, tzinfo=UTC)
    assert format_timestamp(moment) == "2026-11-24T19:07:46.123Z"
    plus2 = datetime(2026, 11, 24, 21, 7, 46, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_timestamp(plus2) == "2026-11-24T19:07:46.000Z"
    assert format_timestamp(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00.000Z"


def test_parse_timestamp() -> None:
    assert parse_timestamp("2026-11-24T19:07:46.123Z") == datetime(
        2026, 11, 24, 19, 7, 46, 123000, tzinfo=UTC
    )
    assert parse_timestamp("2026-11-24T21:07:46+02:00") == datetime(
        2026, 11, 24, 19, 7, 46, tzinfo=UTC
    )
    assert parse_timestamp("2026-11-24T19:07:46") == datetime(2026, 11, 24, 19, 7, 46, tzinfo=UTC)
    assert parse_timestamp("2026-11-24T24:00:00Z") == datetime(2026, 11, 25, tzinfo=UTC)
    assert parse_timestamp("yesterday") is None
    assert parse_timestamp("0001-01-01T00:00:00+01:00") is None


def _keen(event: dict, **kwargs: object) -> tuple[dict, object]:
    result = build_keen(event, record(event, **kwargs), NOW)
    return event, result


def test_build_keen_defaults_to_the_record_time() -> None:
    event, fields = _keen({"a": 1})
    assert event["keen"] == {
        "timestamp": "2026-11-20T08:00:00.250Z",
        "created_at": "2026-11-24T19:07:46.123Z",
        "id": keen_id_for(TOPIC, 0, 42),
    }
    assert fields.timestamp == datetime(2026, 11, 20, 8, 0, 0, 250000, tzinfo=UTC)
    assert fields.created_at == datetime(2026, 11, 24, 19, 7, 46, 123000, tzinfo=UTC)
    assert fields.id == keen_id_for(TOPIC, 0, 42)


@pytest.mark.parametrize("timestamp_ms", [None, -1])
def test_no_record_time_means_the_time_of_receipt(timestamp_ms: int | None) -> None:
    event, _ = _keen({"a": 1}, timestamp_ms=timestamp_ms)
    assert event["keen"]["timestamp"] == "2026-11-24T19:07:46.123Z"
    event, _ = _keen({"a": 1}, timestamp_ms=0)
    assert event["keen"]["timestamp"] == "1970-01-01T00:00:00.000Z"
    event, _ = _keen({"a": 1}, timestamp_ms=10**16)
    assert event["keen"]["timestamp"] == "2026-11-24T19:07:46.123Z"


def test_client_timestamp_and_addons() -> None:
    addons = [{"name": "keen:url_parser", "input": {"url": "u"}, "output": "o"}]
    event, fields = _keen({"keen": {"timestamp": "2020-01-02T03:04:05.678999Z", "addons": addons}})
    assert event["keen"]["timestamp"] == "2020-01-02T03:04:05.678Z"
    assert event["keen"]["addons"] == addons
    assert fields.timestamp == datetime(2020, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    event, _ = _keen({"keen": {"timestamp": None, "addons": None}})
    assert "addons" not in event["keen"]
    assert event["keen"]["timestamp"] == "2026-11-20T08:00:00.250Z"


def test_keen_refusals() -> None:
    _, result = _keen({"keen": "x"})
    assert result == Rejection(
        "reserved_property",
        "validate",
        "The property 'keen' is reserved and must be an object holding only 'timestamp' and "
        "'addons'; rename your property.",
        {"path": "keen"},
    )
    _, result = _keen({"keen": None})
    assert isinstance(result, Rejection) and result.detail == {"path": "keen"}
    _, result = _keen({"keen": {"id": "x", "created_at": "y", "timestamp": None}})
    assert result == Rejection(
        "reserved_property",
        "validate",
        "'keen.id' is set by the server; under 'keen' send only 'timestamp' and 'addons', and "
        "move other properties out of 'keen'.",
        {"path": "keen.id", "count": 2},
    )
    _, result = _keen({"keen": {"timestamp": "soon"}})
    assert result == Rejection(
        "invalid_timestamp",
        "validate",
        "keen.timestamp is not an ISO-8601 date-time; send e.g. '2026-11-24T19:07:46.123Z', "
        "or leave it out to use the time of receipt.",
        {"path": "keen.timestamp", "value": "soon"},
    )
    _, result = _keen({"keen": {"timestamp": 12}})
    assert isinstance(result, Rejection) and result.detail == {
        "path": "keen.timestamp",
        "value": "12",
    }


def test_replay_keeps_the_original_id_of_the_same_project() -> None:
    src = f"in.{PROJECT}.purchases/2/7".encode()
    event, fields = _keen({"a": 1}, headers=(("inbound.replay.source", src),))
    assert fields.id == keen_id_for(f"in.{PROJECT}.purchases", 2, 7)
    for bad in (
        f"in.{OTHER_PROJECT}.purchases/2/7".encode(),
        f"in.{PROJECT}.purchases/-1/7".encode(),
        f"in.{PROJECT}.purchases/2/-7".encode(),
        b"\xff",
        b"",
        b"nonsense",
        b"elsewhere/1/2",
    ):
        _, fields = _keen({"a": 1}, headers=(("inbound.replay.source", bad),))
        assert fields.id == keen_id_for(TOPIC, 0, 42), bad


def test_naive_and_zoned_now_are_utc() -> None:
    naive = datetime(2026, 1, 1, 0, 0, 0, 999999)
    event: dict = {}
    build_keen(event, record({}), naive)
    assert event["keen"]["created_at"] == "2026-01-01T00:00:00.999Z"
    zoned = datetime(2026, 1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    event = {}
    build_keen(event, record({}), zoned)
    assert event["keen"]["created_at"] == "2026-01-01T00:00:00.000Z"
