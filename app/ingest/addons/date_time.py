"""keen:date_time_parser: the calendar parts of a date-time, in universal time (UTC).

Output: ``{millisecond, second, minute, hour, day_of_week, day_of_week_string,
day_of_month, week, month, year, timezone_offset}``, Keen's fields plus ``week`` (ours; it
changes no Keen field). The input is converted to UTC before it is split, as Keen describes
the hour as the UTC hour, so every part (the date too) is UTC's. Our choices where Keen
states none: ``day_of_week`` is ISO (1 = Monday ... 7 = Sunday), ``week`` the ISO week
number, ``timezone_offset`` the input's own offset from UTC in seconds (east positive, as
the query ``timezone`` parameter counts), so local time can be rebuilt from the parts; a
date-time without an offset is UTC. Input that is not an ISO-8601 string, or whose UTC time
falls outside years 1..9999, gives all nulls rather than refusing the event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dateutil.parser import isoparse

_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_KEYS = (
    "millisecond",
    "second",
    "minute",
    "hour",
    "day_of_week",
    "day_of_week_string",
    "day_of_month",
    "week",
    "month",
    "year",
    "timezone_offset",
)


def empty_date_time() -> dict[str, Any]:
    return dict.fromkeys(_KEYS)


def parse_date_time(value: Any) -> dict[str, Any]:
    if type(value) is not str or not value or len(value) > 64:
        return empty_date_time()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:
            moment = isoparse(value)
        except (ValueError, OverflowError):
            return empty_date_time()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    offset = moment.utcoffset()
    try:
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):  # the offset pushes it outside years 1..9999
        return empty_date_time()
    weekday = moment.isoweekday()
    return {
        "millisecond": moment.microsecond // 1000,
        "second": moment.second,
        "minute": moment.minute,
        "hour": moment.hour,
        "day_of_week": weekday,
        "day_of_week_string": _DAY_NAMES[weekday - 1],
        "day_of_month": moment.day,
        "week": moment.isocalendar().week,
        "month": moment.month,
        "year": moment.year,
        "timezone_offset": int(offset.total_seconds()) if offset is not None else 0,
    }
