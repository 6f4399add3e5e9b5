"""README: URLs resolving to private, loopback or link-local addresses are refused "at
registration and again at every connection (no DNS rebinding)".

A stand-in DNS (the resolver seam of app/webhooks/url_safety.py) answers a public address
while the URL is checked at registration, then re-points the name at loopback, where a real
receiver listens. The dispatcher must ask again and refuse; the receiver must get nothing.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from app.webhooks.dispatcher import Dispatcher
from app.webhooks.events import as_utc
from app.webhooks.url_safety import UnsafeDestination, check_destination
from tests.webhooks.helpers import (
    FakeClock,
    NoJitter,
    add_notifications,
    attempts_for,
    deliveries_of,
    dispatch_once,
    new_project,
    new_webhook,
)

PUBLIC = "93.184.215.14"


class RebindingDns:
    """Answers ``answer`` for every name, and remembers who asked."""

    def __init__(self, answer: list[str]) -> None:
        self.answer = answer
        self.asked: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def __call__(self, host: str, port: int) -> list[str]:
        with self._lock:
            self.asked.append((host, port))
            return list(self.answer)


@pytest.mark.parametrize("later", [["127.0.0.1"], ["::ffff:127.0.0.1"], ["10.0.0.7"]])
def test_name_rebound_to_private_after_registration_is_refused_at_delivery(
    engine, receiver, hook_settings, later: list[str]
) -> None:
    # "localhost" so that the system resolver would really reach the receiver: only the
    # guard stands between the rebound name and it (the control below proves the URL works).
    url = f"http://localhost:{receiver.port}/hook"
    dns = RebindingDns([PUBLIC])
    check_destination(url, allow_private=False, resolver=dns)  # registration: accepted
    assert dns.asked == [("localhost", receiver.port)]
    project = new_project(engine)
    hook, _ = new_webhook(engine, project, url, ["dlq.paused"])
    add_notifications(engine, project, "dlq.paused", [{"collection": "c"}])

    dns.answer = later  # the name now points inside
    with pytest.raises(UnsafeDestination):
        check_destination(url, allow_private=False, resolver=dns)  # what a PATCH would say
    asked_before_delivery = len(dns.asked)
    clock = FakeClock()
    settings = hook_settings(webhook_allow_private=False)
    dispatch_once(Dispatcher(settings, engine, clock=clock, rng=NoJitter(), resolver=dns))

    assert ("localhost", receiver.port) in dns.asked[asked_before_delivery:]  # asked again
    assert receiver.requests == []
    (delivery,) = deliveries_of(engine, hook)
    (attempt,) = attempts_for(engine, delivery.id)
    assert attempt.status_code is None
    assert "private, loopback or link-local" in attempt.error
    # A failed attempt like any other: retried on schedule (README: first retry after 5 s).
    assert delivery.status == "pending" and delivery.attempts == 1
    assert as_utc(delivery.next_attempt_at) == clock.now + timedelta(seconds=5)


def test_control_the_same_url_is_delivered_when_private_is_allowed(
    engine, receiver, hook_settings
) -> None:
    project = new_project(engine)
    hook, _ = new_webhook(engine, project, f"http://localhost:{receiver.port}/hook", ["dlq.paused"])
    add_notifications(engine, project, "dlq.paused", [{"collection": "c"}])
    dispatch_once(Dispatcher(hook_settings(webhook_allow_private=True), engine))
    (got,) = receiver.wait_for(1)
    assert got.json["type"] == "dlq.paused"
    assert [d.status for d in deliveries_of(engine, hook)] == ["delivered"]
