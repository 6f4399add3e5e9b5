"""Failed-login limiting per client address, without a network: the rule itself."""

from __future__ import annotations

from app.gateway.ratelimit import AuthFailures


def test_logins_in_flight_count_against_the_limit() -> None:
    limit = AuthFailures(per_minute=30)
    for _ in range(30):
        assert not limit.blocked("10.0.0.1")
        limit.begin("10.0.0.1")  # thirty attempts sent at once, none decided yet
    assert limit.blocked("10.0.0.1")
    assert not limit.blocked("10.0.0.2")  # another address is not affected


def test_a_successful_login_frees_its_slot_and_failures_stay() -> None:
    limit = AuthFailures(per_minute=2)
    limit.begin("a")
    limit.finish("a", failed=False)
    assert not limit.blocked("a")
    for _ in range(2):
        limit.begin("a")
        limit.finish("a", failed=True)
    assert limit.blocked("a")


def test_zero_disables_the_limit() -> None:
    limit = AuthFailures(per_minute=0)
    for _ in range(100):
        limit.begin("a")
    assert not limit.blocked("a")
