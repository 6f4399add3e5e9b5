"""When a failed delivery is tried again: a fixed schedule over about a day, with jitter."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Seconds to wait after attempt n (1-based) fails; 11 attempts spanning ~25.7 hours, so an
# endpoint that is down for most of a day still gets everything once it is back.
RETRY_SCHEDULE: tuple[int, ...] = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 36000)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
# Up to +10%: spreads retries of many deliveries that failed together (one outage) so they
# do not all return at once; only later, never earlier than the documented schedule.
JITTER = 0.10
# A receiver may ask for a later retry, but not to be left alone for longer than this.
MAX_RETRY_AFTER = 86400


def retry_delay(attempts_made: int, rng: random.Random | None = None) -> float | None:
    """Seconds until the next attempt after ``attempts_made`` failures; None when exhausted."""
    if attempts_made < 1 or attempts_made > len(RETRY_SCHEDULE):
        return None
    base = RETRY_SCHEDULE[attempts_made - 1]
    jitter = (rng or random).random() * JITTER * base
    return base + jitter


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or HTTP-date), capped."""
    if not value:
        return None
    value = value.strip()
    seconds: float | None
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if seconds is None or seconds <= 0:
        return None
    return min(seconds, MAX_RETRY_AFTER)
