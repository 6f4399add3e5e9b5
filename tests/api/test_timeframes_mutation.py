"""Timeframes and intervals as the README states them (weeks start on Sunday, this_N_units
runs to the end of the current unit), without a database: edges written for mutation
testing (tools/mutation.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from app.api.timeframes import (
    QueryError,
    Timeframe,
    buckets,
    floor,
    iso,
    iso_or_none,
    parse_instant,
    parse_interval,
    parse_timezone,
    resolve_timeframe,
    shift,
)

# A Wednesday.
NOW = datetime(2026, 11, 25, 15, 42, 17, 345678, tzinfo=UTC)


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_iso() -> None:
    assert iso(NOW) == "2026-11-25T15:42:17.345Z"
    plus1 = datetime(2026, 1, 1, 1, 0, 0, 5000, tzinfo=timezone(timedelta(hours=1)))
    assert iso(plus1) == "2026-01-01T00:00:00.005Z"
    assert iso_or_none(None) is None
    assert iso_or_none(datetime(2026, 1, 1)) == "2026-01-01T00:00:00.000Z"
    assert iso_or_none(plus1) == "2026-01-01T00:00:00.005Z"
    assert Timeframe(_utc(2026, 1, 1), _utc(2026, 1, 2)).as_json() == {
        "start": "2026-01-01T00:00:00.000Z",
        "end": "2026-01-02T00:00:00.000Z",
    }


def test_parse_timezone() -> None:
    assert parse_timezone(None) is UTC
    assert parse_timezone("") is UTC
    assert parse_timezone(3600) == timezone(timedelta(hours=1))
    assert parse_timezone(-7200.0) == timezone(timedelta(hours=-2))
    assert parse_timezone("+3600") == timezone(timedelta(hours=1))
    assert parse_timezone("-60") == timezone(timedelta(minutes=-1))
    assert parse_timezone(86399) == timezone(timedelta(seconds=86399))
    assert parse_timezone("Europe/Paris") == ZoneInfo("Europe/Paris")
    with pytest.raises(QueryError, match="less than one day"):
        parse_timezone(86400)
    with pytest.raises(QueryError, match="less than one day"):
        parse_timezone(-86400)
    with pytest.raises(QueryError, match="an IANA name or an offset in seconds"):
        parse_timezone(True)
    with pytest.raises(QueryError, match="unknown timezone 'Mars/Base'"):
        parse_timezone("Mars/Base")


def test_floor_each_unit_weeks_from_sunday() -> None:
    assert floor(NOW, "minute") == _utc(2026, 11, 25, 15, 42)
    assert floor(NOW, "hour") == _utc(2026, 11, 25, 15)
    assert floor(NOW, "day") == _utc(2026, 11, 25)
    assert floor(NOW, "week") == _utc(2026, 11, 22)  # the Sunday before
    assert floor(_utc(2026, 11, 22, 5), "week") == _utc(2026, 11, 22)  # a Sunday itself
    assert floor(_utc(2026, 11, 28, 23), "week") == _utc(2026, 11, 22)  # Saturday
    assert floor(NOW, "month") == _utc(2026, 11, 1)
    assert floor(NOW, "year") == _utc(2026, 1, 1)


def test_shift() -> None:
    assert shift(_utc(2026, 1, 31), 1, "month") == _utc(2026, 2, 28)
    assert shift(_utc(2026, 1, 1), 2, "week") == _utc(2026, 1, 15)
    assert shift(_utc(2026, 1, 1), -1, "year") == _utc(2025, 1, 1)
    assert shift(_utc(2026, 1, 1), 3, "hour") == _utc(2026, 1, 1, 3)
    with pytest.raises(QueryError, match=r"outside years 1 to 9999 \(9000 years\)"):
        shift(_utc(2026, 1, 1), 9000, "year")


def test_parse_instant() -> None:
    assert parse_instant("2026-01-01T00:00:00z", UTC, "start") == _utc(2026, 1, 1)
    assert parse_instant(" 2026-01-01T01:00:00+01:00 ", UTC, "start") == _utc(2026, 1, 1)
    paris = ZoneInfo("Europe/Paris")
    assert parse_instant("2026-01-01T01:00:00", paris, "end") == _utc(2026, 1, 1)
    with pytest.raises(QueryError, match="timeframe end is an ISO-8601 string"):
        parse_instant(5, UTC, "end")
    with pytest.raises(QueryError, match="timeframe start is not an ISO-8601 timestamp: 'x'"):
        parse_instant("x", UTC, "start")


def test_absolute_timeframes() -> None:
    got = resolve_timeframe({"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}, UTC)
    assert got == Timeframe(_utc(2026, 1, 1), _utc(2026, 1, 2))
    assert resolve_timeframe(None, UTC) is None
    assert resolve_timeframe("", UTC) is None
    for bad in ({"start": "2026-01-01T00:00:00Z"}, {"end": "x"}, {"start": 1, "end": 2, "x": 3}):
        with pytest.raises(QueryError, match="an absolute timeframe is"):
            resolve_timeframe(bad, UTC)
    with pytest.raises(QueryError, match="end must be after its start"):
        resolve_timeframe({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, UTC)
    with pytest.raises(QueryError, match="a relative name or"):
        resolve_timeframe(7, UTC)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("this_day", _utc(2026, 11, 25), _utc(2026, 11, 26)),
        ("today", _utc(2026, 11, 25), _utc(2026, 11, 26)),
        ("yesterday", _utc(2026, 11, 24), _utc(2026, 11, 25)),
        ("previous_day", _utc(2026, 11, 24), _utc(2026, 11, 25)),
        ("this_7_days", _utc(2026, 11, 19), _utc(2026, 11, 26)),
        ("previous_24_hours", _utc(2026, 11, 24, 15), _utc(2026, 11, 25, 15)),
        ("this_1_hour", _utc(2026, 11, 25, 15), _utc(2026, 11, 25, 16)),
        ("this_week", _utc(2026, 11, 22), _utc(2026, 11, 29)),
        ("previous_2_weeks", _utc(2026, 11, 8), _utc(2026, 11, 22)),
        ("this_month", _utc(2026, 11, 1), _utc(2026, 12, 1)),
        ("previous_year", _utc(2025, 1, 1), _utc(2026, 1, 1)),
        ("this_2_minutes", _utc(2026, 11, 25, 15, 41), _utc(2026, 11, 25, 15, 43)),
    ],
)
def test_relative_timeframes(name: str, start: datetime, end: datetime) -> None:
    assert resolve_timeframe(name, UTC, NOW) == Timeframe(start, end)


def test_relative_timeframe_in_a_timezone() -> None:
    plus2 = timezone(timedelta(hours=2))
    # 17:42 at +02:00: the day there started at 22:00 UTC the day before.
    assert resolve_timeframe("this_day", plus2, NOW) == Timeframe(
        _utc(2026, 11, 24, 22), _utc(2026, 11, 25, 22)
    )


@pytest.mark.parametrize("name", ["this_0_days", "last_day", "this_days\n", "this_1234567_days"])
def test_unknown_relative_names(name: str) -> None:
    with pytest.raises(QueryError):
        resolve_timeframe(name, UTC, NOW)


def test_relative_messages() -> None:
    with pytest.raises(QueryError, match="counts at least one unit"):
        resolve_timeframe("this_0_days", UTC, NOW)
    with pytest.raises(QueryError, match=r"unknown timeframe 'nope' \(e\.g\. this_7_days"):
        resolve_timeframe("nope", UTC, NOW)


def test_relative_without_now_is_around_now() -> None:
    frame = resolve_timeframe("this_day", UTC)
    assert frame is not None
    assert frame.start <= datetime.now(UTC) < frame.end


def test_parse_interval() -> None:
    assert parse_interval("minutely") == (1, "minute")
    assert parse_interval("hourly") == (1, "hour")
    assert parse_interval("daily") == (1, "day")
    assert parse_interval("weekly") == (1, "week")
    assert parse_interval("monthly") == (1, "month")
    assert parse_interval("yearly") == (1, "year")
    assert parse_interval("every_3_hours") == (3, "hour")
    assert parse_interval("every_1_day") == (1, "day")
    for bad in ("every_0_days", "fortnightly", "every_3_hours\n"):
        with pytest.raises(QueryError, match=re.escape(f"unknown interval {bad!r} (minutely")):
            parse_interval(bad)


def test_buckets() -> None:
    frame = Timeframe(_utc(2026, 1, 1), _utc(2026, 1, 1, 5))
    got = buckets(frame, "every_2_hours", UTC, 10)
    assert got == [
        Timeframe(_utc(2026, 1, 1, 0), _utc(2026, 1, 1, 2)),
        Timeframe(_utc(2026, 1, 1, 2), _utc(2026, 1, 1, 4)),
        Timeframe(_utc(2026, 1, 1, 4), _utc(2026, 1, 1, 5)),
    ]
    assert len(buckets(frame, "hourly", UTC, 5)) == 5
    with pytest.raises(QueryError, match="more than 4 buckets; use a longer one"):
        buckets(frame, "hourly", UTC, 4)
    months = buckets(Timeframe(_utc(2026, 1, 31), _utc(2026, 4, 1)), "monthly", UTC, 10)
    assert [b.end for b in months] == [_utc(2026, 2, 28), _utc(2026, 3, 31), _utc(2026, 4, 1)]
    assert buckets(Timeframe(_utc(2026, 1, 1), _utc(2026, 1, 1)), "daily", UTC, 1) == []
