"""The keen object, deterministic ids, replays, and autofill."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from app.contract.headers import KEY_ID, REPLAY_SOURCE
from app.ingest.pipeline import keen_id_for
from app.ingest.steps.keen import format_timestamp
from tests.ingest.steps.pipeline_support import OTHER_PROJECT, PROJECT, TOPIC, accept, reject

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_keen_object_defaults() -> None:
    result = accept({"a": 1}, offset=7)
    keen = result.body["keen"]
    assert list(keen) == ["timestamp", "created_at", "id"]
    assert keen["id"] == keen_id_for(TOPIC, 0, 7) == result.keen_id
    assert keen["created_at"] == "2026-11-24T19:07:46.123Z"
    assert keen["timestamp"] == "2026-11-20T08:00:00.250Z"  # the Kafka record time
    assert result.keen_timestamp == datetime(2026, 11, 20, 8, 0, 0, 250000, tzinfo=UTC)
    assert result.created_at == datetime(2026, 11, 24, 19, 7, 46, 123000, tzinfo=UTC)


@pytest.mark.parametrize("timestamp_ms", [None, -1, 10**20])
def test_without_a_record_time_the_timestamp_is_created_at(timestamp_ms: int | None) -> None:
    result = accept({"a": 1}, timestamp_ms=timestamp_ms)
    assert result.body["keen"]["timestamp"] == result.body["keen"]["created_at"]
    assert result.keen_timestamp == result.created_at


def test_keen_id_is_deterministic_24_hex_and_coordinate_specific() -> None:
    first = keen_id_for(TOPIC, 0, 1)
    assert re.fullmatch(r"[0-9a-f]{24}", first)
    assert first == keen_id_for(TOPIC, 0, 1)
    others = {keen_id_for(TOPIC, 1, 1), keen_id_for(TOPIC, 0, 2), keen_id_for(TOPIC + "x", 0, 1)}
    assert first not in others and len(others) == 3
    assert accept({"a": 1}, offset=1).keen_id == accept({"b": 2}, offset=1).keen_id


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2026-11-24T19:07:46.123Z", "2026-11-24T19:07:46.123Z"),
        ("2026-11-24T19:07:46.123456789Z", "2026-11-24T19:07:46.123Z"),
        ("2026-11-24T20:07:46+01:00", "2026-11-24T19:07:46.000Z"),
        ("2026-11-24T19:07:46", "2026-11-24T19:07:46.000Z"),
        ("2026-11-24", "2026-11-24T00:00:00.000Z"),
        ("20261124T190746Z", "2026-11-24T19:07:46.000Z"),
        ("2026-11-24T24:00:00Z", "2026-11-25T00:00:00.000Z"),
        ("0999-01-01T00:00:00Z", "0999-01-01T00:00:00.000Z"),
    ],
)
def test_client_timestamps_are_normalised_to_utc_millis(given: str, stored: str) -> None:
    result = accept({"keen": {"timestamp": given}})
    assert result.body["keen"]["timestamp"] == stored
    assert ISO_MS.match(stored)
    assert result.keen_timestamp.tzinfo is not None
    assert result.keen_timestamp.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    "given",
    ["yesterday", "", "2026-13-01", "2026-11-24T19:07:46+25:00", 1764000000, True, [], {}],
)
def test_unparseable_timestamps(given: object) -> None:
    rejection = reject({"keen": {"timestamp": given}}, "invalid_timestamp")
    assert rejection.detail["path"] == "keen.timestamp"
    assert rejection.stage == "validate"


def test_timestamp_pushed_outside_the_calendar_is_invalid() -> None:
    reject({"keen": {"timestamp": "0001-01-01T00:00:00+05:00"}}, "invalid_timestamp")
    reject({"keen": {"timestamp": "9999-12-31T23:59:59-05:00"}}, "invalid_timestamp")


def test_null_timestamp_and_addons_are_absent() -> None:
    keen = accept({"keen": {"timestamp": None, "addons": None}}).body["keen"]
    assert keen["timestamp"] == "2026-11-20T08:00:00.250Z"
    assert "addons" not in keen


def test_addons_are_left_out_of_the_stored_keen_object() -> None:
    keen = accept({"keen": {"addons": []}}).body["keen"]
    assert "addons" not in keen


@pytest.mark.parametrize(
    "keen",
    [None, "x", 1, [], {"id": "mine"}, {"created_at": "x"}, {"timestamp": "2026-01-01", "x": 1}],
)
def test_reserved_keen(keen: object) -> None:
    rejection = reject({"keen": keen}, "reserved_property")
    assert rejection.detail["path"].startswith("keen")


def test_replay_keeps_the_original_id() -> None:
    source = f"{TOPIC}/3/99".encode()
    result = accept({"a": 1}, offset=500, headers=((KEY_ID, b"writer"), (REPLAY_SOURCE, source)))
    assert result.keen_id == keen_id_for(TOPIC, 3, 99)


@pytest.mark.parametrize(
    "source",
    [
        b"garbage",
        b"/1/2",
        f"{TOPIC}/x/1".encode(),
        f"{TOPIC}/-1/1".encode(),
        b"\xff/1/2",
        f"in.{OTHER_PROJECT}.purchases/0/1".encode(),
    ],
)
def test_unusable_replay_sources_fall_back_to_own_coordinates(source: bytes) -> None:
    result = accept({"a": 1}, offset=500, headers=((REPLAY_SOURCE, source),))
    assert result.keen_id == keen_id_for(TOPIC, 0, 500)


def test_autofill_deep_merges_and_the_event_wins() -> None:
    body = accept(
        {"plan": "free", "app": {"name": "mine"}, "tags": "own"},
        headers=((KEY_ID, b"filler"),),
    ).body
    assert body["plan"] == "free"
    assert body["app"] == {"name": "mine", "version": "1.2"}
    assert body["tags"] == "own"
    assert body["keen"]["timestamp"] == "2026-11-20T08:00:00.250Z"  # keen never autofilled


def test_autofill_fills_what_is_missing_and_does_not_share_objects() -> None:
    first = accept({}, headers=((KEY_ID, b"filler"),)).body
    assert first["plan"] == "pro" and first["tags"] == ["a", "b"]
    first["app"]["name"] = "changed"
    first["tags"].append("c")
    second = accept({}, headers=((KEY_ID, b"filler"),)).body
    assert second["app"] == {"name": "shop", "version": "1.2"}
    assert second["tags"] == ["a", "b"]


def test_format_timestamp_converts_to_utc() -> None:
    from datetime import timedelta, timezone

    moment = datetime(2026, 1, 1, 1, 0, 0, 999999, tzinfo=timezone(timedelta(hours=2)))
    assert format_timestamp(moment) == "2025-12-31T23:00:00.999Z"


def test_project_in_result() -> None:
    assert accept({"a": 1}).project_id == PROJECT
