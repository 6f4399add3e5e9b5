"""Keen timeframes, timezones and intervals, resolved to UTC instants.

Relative frames: ``this_N_<units>`` is the current unit plus the N-1 before it (its end is the
end of the current unit); ``previous_N_<units>`` is N complete units before the current one.
Units are cut on the wall clock of the query's timezone. Weeks start on Sunday, as Keen's do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta

UNITS = ("minute", "hour", "day", "week", "month", "year")
_RELATIVE_RE = re.compile(r"^(this|previous)_(?:(\d{1,6})_)?(minute|hour|day|week|month|year)s?$")
_INTERVAL_NAMES = {
    "minutely": "minute",
    "hourly": "hour",
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "yearly": "year",
}
_EVERY_RE = re.compile(r"^every_(\d{1,6})_(minute|hour|day|week|month|year)s?$")


class QueryError(ValueError):
    """A query the caller must fix (400)."""


@dataclass(frozen=True)
class Timeframe:
    start: datetime  # inclusive, UTC
    end: datetime  # exclusive, UTC

    def as_json(self) -> dict[str, str]:
        return {"start": iso(self.start), "end": iso(self.end)}


def iso(at: datetime) -> str:
    """ISO-8601 UTC with milliseconds, the shape of keen.timestamp."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def iso_or_none(at: datetime | None) -> str | None:
    """iso() of a stored time, None for none; a naive time (SQLite's) is UTC."""
    if at is None:
        return None
    return iso(at if at.tzinfo else at.replace(tzinfo=UTC))


def parse_timezone(value: str | int | float | None) -> tzinfo:
    """An IANA name or an offset in seconds (Keen accepts both); UTC when absent."""
    if value is None or value == "":
        return UTC
    if isinstance(value, bool):
        raise QueryError("timezone is an IANA name or an offset in seconds")
    if isinstance(value, int | float) or re.fullmatch(r"[+-]?\d+", str(value)):
        seconds = int(value)
        if abs(seconds) >= 86400:
            raise QueryError("a timezone offset is less than one day in seconds")
        return timezone(timedelta(seconds=seconds))
    try:
        return ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise QueryError(f"unknown timezone {value!r}") from exc


def floor(at: datetime, unit: str) -> datetime:
    """The start of the unit containing ``at``, on ``at``'s own wall clock."""
    if unit == "minute":
        return at.replace(second=0, microsecond=0)
    if unit == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day
    if unit == "week":
        # Python's Monday is 0; Keen's weeks start on Sunday.
        return day - timedelta(days=(day.weekday() + 1) % 7)
    if unit == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def shift(at: datetime, n: int, unit: str) -> datetime:
    """``at`` moved by n units of wall-clock time (months and years by the calendar)."""
    try:
        if unit == "week":
            return at + relativedelta(weeks=n)
        return at + relativedelta(**{f"{unit}s": n})
    except (ValueError, OverflowError) as exc:
        raise QueryError(f"the timeframe reaches outside years 1 to 9999 ({n} {unit}s)") from exc


def _wall_to_utc(at: datetime) -> datetime:
    # A wall time in a DST gap or fold is normalised by the round trip through UTC.
    return at.astimezone(UTC)


def parse_instant(value: object, tz: tzinfo, name: str) -> datetime:
    if not isinstance(value, str):
        raise QueryError(f"timeframe {name} is an ISO-8601 string")
    try:
        at = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError as exc:
        raise QueryError(f"timeframe {name} is not an ISO-8601 timestamp: {value!r}") from exc
    if at.tzinfo is None:
        at = at.replace(tzinfo=tz)
    try:
        return at.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise QueryError(f"timeframe {name} is outside the years 1 to 9999 in UTC") from exc


def resolve_timeframe(
    value: str | dict | None, tz: tzinfo, now: datetime | None = None
) -> Timeframe | None:
    """None for no timeframe (all time)."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        if set(value) - {"start", "end"} or "start" not in value or "end" not in value:
            raise QueryError('an absolute timeframe is {"start": iso, "end": iso}')
        start = parse_instant(value["start"], tz, "start")
        end = parse_instant(value["end"], tz, "end")
        if end <= start:
            raise QueryError("timeframe end must be after its start")
        return Timeframe(start, end)
    if not isinstance(value, str):
        raise QueryError("timeframe is a relative name or {start, end}")
    name = {"today": "this_day", "yesterday": "previous_day"}.get(value, value)
    match = _RELATIVE_RE.fullmatch(name)
    if not match:
        raise QueryError(f"unknown timeframe {value!r} (e.g. this_7_days, previous_24_hours)")
    kind, count, unit = match.group(1), int(match.group(2) or 1), match.group(3)
    if count < 1:
        raise QueryError("a relative timeframe counts at least one unit")
    local_now = (now or datetime.now(UTC)).astimezone(tz)
    current = floor(local_now, unit)
    if kind == "this":
        start, end = shift(current, -(count - 1), unit), shift(current, 1, unit)
    else:
        start, end = shift(current, -count, unit), current
    return Timeframe(_wall_to_utc(start), _wall_to_utc(end))


def parse_interval(value: str) -> tuple[int, str]:
    if value in _INTERVAL_NAMES:
        return 1, _INTERVAL_NAMES[value]
    match = _EVERY_RE.fullmatch(value)
    if not match or int(match.group(1)) < 1:
        raise QueryError(
            f"unknown interval {value!r} (minutely, hourly, daily, weekly, monthly, yearly, "
            "every_N_units)"
        )
    return int(match.group(1)), match.group(2)


def buckets(frame: Timeframe, interval: str, tz: tzinfo, limit: int) -> list[Timeframe]:
    """Consecutive sub-frames from the frame's start, each ``interval`` long, the last clipped."""
    step, unit = parse_interval(interval)
    out: list[Timeframe] = []
    local_start = frame.start.astimezone(tz)
    k = 0
    start = frame.start
    while start < frame.end:
        # Each boundary from the frame's start, so month ends do not drift (Jan 31 + 1 month).
        end = min(_wall_to_utc(shift(local_start, (k + 1) * step, unit)), frame.end)
        if end <= start:
            raise QueryError("interval does not advance in this timezone")
        out.append(Timeframe(start, end))
        if len(out) > limit:
            raise QueryError(f"the interval makes more than {limit} buckets; use a longer one")
        start = end
        k += 1
    return out
