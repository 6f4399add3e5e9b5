"""The DLQ circuit breaker's arithmetic."""

from __future__ import annotations

from app.ingest.breaker import CircuitBreaker


def test_trips_only_over_a_full_window_above_the_ratio() -> None:
    breaker = CircuitBreaker(ratio=0.5, min_events=10)
    tp = ("in.p.c", 0)
    # 6 rejected of 10: above half, trips on the tenth event.
    results = [breaker.record(tp, i < 6) for i in range(10)]
    assert results == [False] * 9 + [True]


def test_a_healthy_window_resets_and_does_not_trip() -> None:
    breaker = CircuitBreaker(ratio=0.5, min_events=10)
    tp = ("in.p.c", 0)
    assert not any(breaker.record(tp, i % 2 == 0 and i < 4) for i in range(10))
    # A fresh window: earlier rejections do not count again.
    assert not any(breaker.record(tp, i < 5) for i in range(10))


def test_partitions_and_project_limits_are_separate() -> None:
    breaker = CircuitBreaker(ratio=0.5, min_events=4)
    a, b = ("in.p.c", 0), ("in.p.c", 1)
    assert [breaker.record(a, True) for _ in range(4)][-1] is True
    assert [breaker.record(b, True, ratio=1.0) for _ in range(4)][-1] is False
    breaker.reset(a)
    assert breaker.record(a, True) is False
