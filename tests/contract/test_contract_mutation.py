"""The contract's promises, pinned from docs/design.md and README.md (not from the code's own
constants), so a mutant of app/contract that changes what clients see fails here.

Written against mutation testing (tools/mutation.py): each test pins one observable edge.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.contract import headers as h
from app.contract import topics
from app.contract.collections import collection_problem, is_valid_collection
from app.contract.errors import ERROR_CODES, STAGES, Rejection
from app.contract.timestamps import iso_ms

PROJECT = "0123456789abcdef01234567"


# --- topics (docs/design.md, "Topics") ---------------------------------------------------


def test_topic_names_are_the_documented_ones() -> None:
    assert topics.inbound_topic(PROJECT, "purchases") == f"in.{PROJECT}.purchases"
    assert topics.dlq_topic(PROJECT, "purchases") == f"dlq.{PROJECT}.purchases"
    assert topics.customer_dlq_name("purchases") == "purchases-DLQ"


@pytest.mark.parametrize("collection", ["", ".", "..", "bad name", "x" * 250])
def test_a_dlq_name_kafka_cannot_hold_falls_back_to_invalid(collection: str) -> None:
    assert topics.dlq_topic(PROJECT, collection) == f"dlq.{PROJECT}._invalid"


def test_dlq_topic_keeps_names_up_to_kafkas_249_characters() -> None:
    room = 249 - len(f"dlq.{PROJECT}.")
    assert topics.dlq_topic(PROJECT, "a" * room) == f"dlq.{PROJECT}." + "a" * room
    assert topics.dlq_topic(PROJECT, "a" * (room + 1)) == f"dlq.{PROJECT}._invalid"
    # "..." is a legal Kafka name; only "." and ".." themselves are not.
    assert topics.dlq_topic(PROJECT, "...") == f"dlq.{PROJECT}...."


def test_parse_inbound() -> None:
    assert topics.parse_inbound(f"in.{PROJECT}.purchases") == (PROJECT, "purchases")
    assert topics.parse_inbound(f"in.{PROJECT}.a.b") == (PROJECT, "a.b")
    assert topics.parse_inbound(f"in.{PROJECT}.") == (PROJECT, "")
    assert topics.parse_inbound(f"dlq.{PROJECT}.purchases") is None
    assert topics.parse_inbound(f"xin.{PROJECT}.purchases") is None
    assert topics.parse_inbound(f"in.{PROJECT}") is None  # no separator
    assert topics.parse_inbound(f"in.{PROJECT.upper()}.x") is None  # lower-case hex only
    assert topics.parse_inbound(f"in.{PROJECT}0.x") is None  # 24 characters exactly
    assert topics.parse_inbound(f"in.{PROJECT[:-1]}.x") is None


def test_parse_dlq() -> None:
    assert topics.parse_dlq(f"dlq.{PROJECT}.purchases") == (PROJECT, "purchases")
    assert topics.parse_dlq(f"dlq.{PROJECT}._invalid") == (PROJECT, "_invalid")
    assert topics.parse_dlq(f"dlq.{PROJECT}.a.b") == (PROJECT, "a.b")  # split at the first dot
    assert topics.parse_dlq(f"in.{PROJECT}.purchases") is None
    assert topics.parse_dlq(f"dlq.{PROJECT}") is None
    assert topics.parse_dlq(f"dlq.{PROJECT[:-1]}g.x") is None
    assert topics.parse_dlq(f"dlq.{PROJECT}x.x") is None


def test_project_of() -> None:
    assert topics.project_of(f"in.{PROJECT}.purchases") == PROJECT
    assert topics.project_of(f"dlq.{PROJECT}.purchases") == PROJECT
    assert topics.project_of("__consumer_offsets") is None
    assert topics.project_of(f"in.{PROJECT}") is None


def test_record_source_round_trips() -> None:
    # README: inbound.replay.source names the original record as topic/partition/offset.
    assert topics.record_source("in.p.c", 3, 42) == "in.p.c/3/42"
    assert topics.parse_record_source("in.p.c/3/42") == ("in.p.c", 3, 42)
    assert topics.parse_record_source("a/b/c/3/42") == ("a/b/c", 3, 42)
    assert topics.parse_record_source("in.p.c/x/42") is None
    assert topics.parse_record_source("in.p.c/3/y") is None
    assert topics.parse_record_source("42") is None


def test_inbound_pattern_matches_inbound_topics_only() -> None:
    import re

    assert re.match(topics.INBOUND_PATTERN, f"in.{PROJECT}.x")
    assert not re.match(topics.INBOUND_PATTERN, f"dlq.{PROJECT}.x")
    assert not re.match(topics.INBOUND_PATTERN, "inx.y")


# --- collections (docs/design.md, "Collections") -----------------------------------------


def test_collection_rule_messages_and_details() -> None:
    assert collection_problem("purchases") is None
    assert is_valid_collection("a.b_c-D9")
    assert not is_valid_collection("")

    bad = collection_problem("a b")
    assert bad is not None
    assert (bad.code, bad.detail) == ("invalid_collection_name", {"collection": "a b"})
    assert bad.message == (
        "A collection name uses only letters, digits, '.', '_' and '-' and is not empty; "
        "rename the collection (topic)."
    )

    long = collection_problem("x" * 65)
    assert long is not None
    assert long.code == "collection_name_too_long"
    assert long.detail == {"collection": "x" * 65, "length": 65}
    assert long.message == "The collection name has 65 characters; use at most 64."
    assert collection_problem("x" * 64) is None

    dots = collection_problem("..")
    assert dots is not None
    assert (dots.code, dots.detail) == ("invalid_collection_name", {"collection": ".."})
    assert (
        dots.message == "A collection cannot be named '.' or '..'; rename the collection (topic)."
    )

    dlq = collection_problem("orders-DLQ")
    assert dlq is not None
    assert (dlq.code, dlq.detail) == ("invalid_collection_name", {"collection": "orders-DLQ"})
    assert dlq.message == (
        "Names ending in '-DLQ' are reserved for dead-letter topics, which are read-only; "
        "produce to a collection without that suffix."
    )


def test_collection_detail_shows_at_most_300_characters() -> None:
    name = "é" * 400
    problem = collection_problem(name)
    assert problem is not None
    assert problem.detail == {"collection": "é" * 300}
    long = collection_problem("x" * 400)
    assert long is not None and long.detail["collection"] == "x" * 300


def test_collection_problem_detail_defaults_to_a_fresh_dict() -> None:
    from app.contract.collections import CollectionProblem

    one, two = CollectionProblem("c", "m"), CollectionProblem("c", "m")
    assert one.detail == {} and one.detail is not two.detail


# --- errors (README, "Error codes") ------------------------------------------------------


def test_error_codes_and_stages_are_the_documented_ones() -> None:
    assert ERROR_CODES == {
        "event_too_large",
        "empty_value",
        "invalid_utf8",
        "invalid_json",
        "not_an_object",
        "invalid_collection_name",
        "collection_name_too_long",
        "unknown_project",
        "key_not_permitted",
        "invalid_property_name",
        "invalid_property_value",
        "reserved_property",
        "invalid_timestamp",
        "too_deeply_nested",
        "addon_error",
    }
    assert STAGES == {"edge", "http", "decode", "validate", "enrich", "persist"}


def test_rejection_refuses_unknown_codes_and_stages() -> None:
    ok = Rejection("invalid_json", "decode", "m")
    assert ok.detail == {}
    with pytest.raises(ValueError, match="unknown error code 'nope'"):
        Rejection("nope", "decode", "m")
    with pytest.raises(ValueError, match="unknown stage 'nowhere'"):
        Rejection("invalid_json", "nowhere", "m")


# --- headers (docs/design.md, "A dead letter") -------------------------------------------


def test_header_names_are_the_documented_ones() -> None:
    assert h.KEY_ID == "inbound.key_id"
    assert h.REPLAY_SOURCE == "inbound.replay.source"
    assert h.REPLAY_COUNT == "inbound.replay.count"
    assert h.ERROR_CODE == "inbound.error.code"
    assert h.ERROR_STAGE == "inbound.error.stage"
    assert h.ERROR_MESSAGE == "inbound.error.message"
    assert h.ERROR_DETAIL == "inbound.error.detail"
    assert h.ERROR_ID == "inbound.error.id"
    assert h.ORIGINAL_TOPIC == "inbound.original.topic"
    assert h.ORIGINAL_PARTITION == "inbound.original.partition"
    assert h.ORIGINAL_OFFSET == "inbound.original.offset"
    assert h.ORIGINAL_TIMESTAMP == "inbound.original.timestamp"
    assert h.FAILED_AT == "inbound.failed_at"
    assert h.VALUE_OMITTED == "inbound.value.omitted"
    assert h.VALUE_SIZE == "inbound.value.size"
    assert h.VALUE_SHA256 == "inbound.value.sha256"
    assert h.HEADERS_OMITTED == "inbound.headers.omitted"


@pytest.mark.parametrize("name", ["inbound.key_id", "Inbound.Key_Id", "INBOUND.x", "inbound."])
def test_trusted_names_in_any_case(name: str) -> None:
    assert h.is_trusted(name)


@pytest.mark.parametrize("name", ["inbound", "inboundx", "x.inbound.key_id", "", "inboun.d"])
def test_other_names_are_not_trusted(name: str) -> None:
    assert not h.is_trusted(name)


def test_strip_trusted_keeps_customer_headers_in_order() -> None:
    given = [("a", b"1"), ("INBOUND.key_id", b"forged"), ("b", None), ("inbound.x", b"2")]
    assert h.strip_trusted(given) == [("a", b"1"), ("b", None)]


def test_last_header_wins_and_skips_null_values() -> None:
    given = [("k", b"1"), ("other", b"x"), ("k", b"2"), ("k", None), ("K", b"3")]
    assert h.last_header(given, "k") == b"2"
    assert h.last_header(given, "missing") is None
    assert h.last_header([("k", None)], "k") is None
    assert h.last_header_text(given, "k") == "2"
    assert h.last_header_text(given, "missing") is None
    assert h.last_header_text([("k", b"\xff")], "k") == "\ufffd"


# --- timestamps ----------------------------------------------------------------------------


def test_iso_ms_is_utc_with_milliseconds_and_z() -> None:
    moment = datetime(2026, 11, 28, 12, 0, 1, 123999, tzinfo=UTC)
    assert iso_ms(moment) == "2026-11-28T12:00:01.123Z"
    assert iso_ms(datetime(2026, 1, 2, 3, 4, 5, 7000, tzinfo=UTC)) == "2026-01-02T03:04:05.007Z"
    # Another zone is converted to UTC; a naive datetime is taken as UTC already.
    paris = datetime(2026, 11, 28, 13, 0, 1, 123000, tzinfo=timezone(timedelta(hours=1)))
    assert iso_ms(paris) == "2026-11-28T12:00:01.123Z"
    assert iso_ms(datetime(2026, 11, 28, 12, 0, 1)) == "2026-11-28T12:00:01.000Z"
