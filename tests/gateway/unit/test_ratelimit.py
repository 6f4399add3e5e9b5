"""Produce quotas and the failed-login limit, on an injected clock."""

from __future__ import annotations

from app.gateway.ratelimit import AuthFailures, ProduceQuota


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_quota_lets_one_second_of_burst_through_then_throttles() -> None:
    clock = Clock()
    quota = ProduceQuota(1000, clock=clock)
    assert quota.charge("p", 1000) == 0
    # 500 bytes over: half a second at 1000 B/s, rounded up by a millisecond.
    assert quota.charge("p", 500) == 501


def test_quota_refills_with_time_up_to_one_second() -> None:
    clock = Clock()
    quota = ProduceQuota(1000, clock=clock)
    quota.charge("p", 1000)
    clock.now += 0.25
    assert quota.charge("p", 250) == 0
    clock.now += 3600
    # Never more than one second's worth banked.
    assert quota.charge("p", 1000) == 0
    assert quota.charge("p", 1) == 2


def test_quota_is_per_project_and_zero_means_none() -> None:
    clock = Clock()
    quota = ProduceQuota(100, clock=clock)
    assert quota.charge("a", 100) == 0
    assert quota.charge("b", 100) == 0
    assert quota.charge("a", 100) == 1001
    unlimited = ProduceQuota(0, clock=clock)
    assert unlimited.charge("a", 10**12) == 0


def test_failed_logins_block_for_a_sliding_minute() -> None:
    clock = Clock()
    failures = AuthFailures(3, clock=clock)
    for _ in range(3):
        assert not failures.blocked("1.2.3.4")
        failures.record("1.2.3.4")
        clock.now += 1
    assert failures.blocked("1.2.3.4")
    assert not failures.blocked("5.6.7.8")
    # The first failure (at t=1000) leaves the 60 s window at t=1060.
    clock.now = 1059.9
    assert failures.blocked("1.2.3.4")
    clock.now = 1060.0
    assert not failures.blocked("1.2.3.4")


def test_logins_in_flight_count_until_they_succeed() -> None:
    clock = Clock()
    failures = AuthFailures(2, clock=clock)
    failures.begin("a")
    failures.begin("a")
    assert failures.blocked("a")
    failures.finish("a", failed=False)
    assert not failures.blocked("a")
    failures.finish("a", failed=True)
    failures.begin("a")
    assert failures.blocked("a")
    failures.finish("a", failed=False)
    assert not failures.blocked("a")


def test_no_limit_when_zero() -> None:
    failures = AuthFailures(0, clock=Clock())
    for _ in range(100):
        failures.record("a")
    assert not failures.blocked("a")
