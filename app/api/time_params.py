"""Instants and windows given as query parameters (ISO-8601), answered 400 when malformed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.api.problems import ApiError
from app.api.timeframes import QueryError, parse_instant


def parse_time(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return parse_instant(value, UTC, name)
    except QueryError as exc:
        raise ApiError(400, "InvalidParameterError", str(exc)) from exc


def time_window(
    since: str | None, until: str | None, default: timedelta
) -> tuple[datetime, datetime]:
    """[since, until): until defaults to now, since to ``default`` before until."""
    end = parse_time(until, "until") or datetime.now(UTC)
    start = parse_time(since, "since") or end - default
    if end <= start:
        raise ApiError(400, "InvalidParameterError", "until must be after since")
    return start, end
