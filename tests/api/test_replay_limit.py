"""The replay rate limiter on a clock the test moves: burst, refill, Retry-After, per project."""

from __future__ import annotations

from app.api.replay_limit import ReplayLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_at_the_rate() -> None:
    clock = Clock()
    bucket = ReplayLimiter(rate=0.5, burst=2, clock=clock).bucket("p")
    assert bucket.available() == 2  # a new bucket starts full
    bucket.take(2)
    assert bucket.available() == 0
    assert bucket.wait_for_one() == 2.0
    clock.now += 1.9
    assert bucket.available() == 0
    clock.now += 0.2
    assert bucket.available() == 1
    clock.now += 3600
    assert bucket.available() == 2  # never more than the burst


def test_projects_have_their_own_buckets() -> None:
    limiter = ReplayLimiter(rate=1.0, burst=1, clock=Clock())
    assert limiter.bucket("a").available() == 1
    limiter.bucket("a").take(1)
    assert limiter.bucket("a").available() == 0
    assert limiter.bucket("b").available() == 1
    assert limiter.bucket("a") is limiter.bucket("a")


def test_no_rate_means_a_minute_to_wait() -> None:
    bucket = ReplayLimiter(rate=0.0, burst=1, clock=Clock()).bucket("p")
    bucket.available()
    bucket.take(1)
    assert bucket.wait_for_one() == 60.0


def test_taking_before_asking_spends_the_full_bucket() -> None:
    # A first take() used to push an unused bucket below zero, which then read as unused
    # and refilled it to full: the burst could be spent twice.
    clock = Clock()
    bucket = ReplayLimiter(rate=0.5, burst=2, clock=clock).bucket("p")
    bucket.take(2)
    assert bucket.available() == 0
