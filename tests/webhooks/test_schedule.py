from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from app.webhooks.schedule import (
    MAX_ATTEMPTS,
    MAX_RETRY_AFTER,
    RETRY_SCHEDULE,
    parse_retry_after,
    retry_delay,
)

# The README's promise, in its own words: "retried after 5 s, 30 s, 2 min, 10 min, 30 min, 1 h,
# 2 h, 4 h, 8 h and 10 h (11 attempts ...) plus up to 10% jitter", "capped at 24 h".
README_SCHEDULE = [5, 30, 2 * 60, 10 * 60, 30 * 60, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 10 * 3600]


def test_schedule_is_the_readme_schedule() -> None:
    rng = random.Random(3)
    for attempt, base in enumerate(README_SCHEDULE, start=1):
        delays = [retry_delay(attempt, rng) for _ in range(200)]
        assert all(d is not None and base <= d <= base * 1.10 for d in delays), attempt
        assert max(delays) > base * 1.05  # the jitter really is there, up to 10%
    assert retry_delay(11, rng) is None  # 11 attempts: the 11th failure is the last
    assert retry_delay(0, rng) is None
    assert parse_retry_after("100000", datetime(2025, 1, 1, tzinfo=UTC)) == 24 * 3600


def test_schedule_spans_about_a_day() -> None:
    total = sum(RETRY_SCHEDULE)
    assert 22 * 3600 <= total <= 30 * 3600
    assert list(RETRY_SCHEDULE) == sorted(RETRY_SCHEDULE)
    assert MAX_ATTEMPTS == len(RETRY_SCHEDULE) + 1


def test_delay_has_bounded_forward_jitter() -> None:
    rng = random.Random(7)
    for n, base in enumerate(RETRY_SCHEDULE, start=1):
        for _ in range(50):
            delay = retry_delay(n, rng)
            assert delay is not None and base <= delay <= base * 1.1
    assert retry_delay(len(RETRY_SCHEDULE) + 1, rng) is None
    assert retry_delay(0, rng) is None


def test_retry_after_forms() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after(format_datetime(now + timedelta(minutes=3), usegmt=True), now) == 180
    assert parse_retry_after("999999999", now) == MAX_RETRY_AFTER
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("0", now) is None
