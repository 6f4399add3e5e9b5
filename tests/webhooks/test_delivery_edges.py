"""README "Retries" promises at the edges, through the real dispatcher and real sockets:
Retry-After capped at 24 h, redirects not followed, the connect timeout and its retry.

Durations are the README's literals, not the code's constants.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy.orm import Session

from app.settings import Settings
from app.store.models import Webhook
from app.webhooks.dispatcher import Dispatcher
from app.webhooks.events import as_utc
from tests.support.ports import free_port
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
from tests.webhooks.receiver import Receiver, Reply

# README: "retried after 5 s, 30 s, 2 min, ..."; "A longer `Retry-After` is honoured (capped at
# 24 h)".
FIRST_RETRY = 5
SECOND_RETRY = 30
RETRY_AFTER_CAP = 24 * 3600


# -- 1. Retry-After: honoured when longer than the schedule, capped at 24 h ---------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("172800", RETRY_AFTER_CAP),  # 48 h asked for, seconds form
        ("86401", RETRY_AFTER_CAP),  # just over the cap
        ("86400", RETRY_AFTER_CAP),  # exactly the cap
        ("7200", 7200),  # longer than 5 s, under the cap: honoured as asked
        ("2", FIRST_RETRY),  # shorter than the schedule: the schedule wins
        ("http-date+3d", RETRY_AFTER_CAP),  # HTTP-date form, three days ahead
    ],
)
def test_retry_after_is_capped_at_24_hours(
    engine, receiver, hook_settings, header: str, expected: int
) -> None:
    clock = FakeClock()
    if header == "http-date+3d":
        header = format_datetime(clock.now + timedelta(days=3), usegmt=True)
    receiver.plan = lambda _r: Reply(503, b"busy", {"Retry-After": header})
    project = new_project(engine)
    hook, _ = new_webhook(engine, project, receiver.url(), ["dlq.paused"])
    add_notifications(engine, project, "dlq.paused", [{"collection": "c"}])
    dispatcher = Dispatcher(hook_settings(), engine, clock=clock, rng=NoJitter())
    start = clock.now

    async def scenario() -> None:
        assert (await dispatcher.run_once()).attempts == 1
        (delivery,) = deliveries_of(engine, hook)
        assert delivery.status == "pending" and delivery.attempts == 1
        assert as_utc(delivery.next_attempt_at) == start + timedelta(seconds=expected)
        # Not retried a second early, retried when due.
        clock.advance(expected - 1)
        assert (await dispatcher.run_once()).attempts == 0
        clock.advance(1)
        assert (await dispatcher.run_once()).attempts == 1
        await dispatcher.aclose()

    asyncio.run(scenario())
    assert len(receiver.requests) == 2


# -- 2. Redirects are not followed --------------------------------------------------------------


@pytest.fixture
def elsewhere() -> Iterator[Receiver]:
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_not_followed(
    engine, receiver, elsewhere, hook_settings, status: int
) -> None:
    clock = FakeClock()
    target = elsewhere.url("/stolen")
    receiver.plan = lambda _r: Reply(status, b"moved", {"Location": target})
    project = new_project(engine)
    hook, _ = new_webhook(engine, project, receiver.url("/moved"), ["dlq.paused"])
    add_notifications(engine, project, "dlq.paused", [{"collection": "c"}])

    dispatch_once(Dispatcher(hook_settings(), engine, clock=clock, rng=NoJitter()))

    assert len(receiver.to("/moved")) == 1
    assert elsewhere.requests == []  # the other URL got nothing
    (delivery,) = deliveries_of(engine, hook)
    # A failed delivery: kept for a retry per the schedule, counted as a failure.
    assert delivery.status == "pending" and delivery.attempts == 1
    assert as_utc(delivery.next_attempt_at) == clock.now + timedelta(seconds=FIRST_RETRY)
    (attempt,) = attempts_for(engine, delivery.id)
    assert attempt.status_code == status and attempt.error is None
    with Session(engine) as session:
        assert session.get(Webhook, hook).consecutive_failures == 1


# -- 3. Connect timeout -------------------------------------------------------------------------


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A loopback port whose SYNs are never answered: a listener with a full accept queue.

    With a backlog of 0 the kernel queues one connection; it is taken by a filler that is never
    accepted, so every later SYN is dropped, exactly like a blackholed address.
    """
    port = free_port()
    listener = socket.socket()
    listener.bind(("127.0.0.1", port))
    listener.listen(0)
    fillers: list[socket.socket] = []
    try:
        for _ in range(2):
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(filler)
        # Check the trap holds: a fresh connect gets no answer.
        probe = socket.socket()
        probe.settimeout(0.3)
        try:
            with pytest.raises(TimeoutError):
                probe.connect(("127.0.0.1", port))
        finally:
            probe.close()
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_connect_timeout_setting_is_the_documented_one(
    engine, make_settings, db_url, monkeypatch
) -> None:
    # README settings table: INBOUND_WEBHOOK_CONNECT_TIMEOUT, default 5.0 seconds.
    monkeypatch.delenv("INBOUND_WEBHOOK_CONNECT_TIMEOUT", raising=False)
    assert make_settings(db_url).webhook_connect_timeout == 5.0
    monkeypatch.setenv("INBOUND_WEBHOOK_CONNECT_TIMEOUT", "0.75")
    settings = Settings()
    assert settings.webhook_connect_timeout == 0.75
    assert Dispatcher(settings, engine).limits.connect_timeout == 0.75


def test_unanswered_connect_fails_as_connect_timeout_and_is_retried(
    engine, hook_settings, unanswered_port: int
) -> None:
    clock = FakeClock()
    project = new_project(engine)
    hook, _ = new_webhook(
        engine, project, f"http://127.0.0.1:{unanswered_port}/hook", ["dlq.paused"]
    )
    add_notifications(engine, project, "dlq.paused", [{"collection": "c"}])
    # The read timeout is long: only the connect timeout can end these attempts as they end.
    settings = hook_settings(webhook_connect_timeout=0.5, webhook_read_timeout=30.0)
    dispatcher = Dispatcher(settings, engine, clock=clock, rng=NoJitter())
    start = clock.now

    async def scenario() -> None:
        assert (await dispatcher.run_once()).attempts == 1
        (delivery,) = deliveries_of(engine, hook)
        assert delivery.status == "pending" and delivery.attempts == 1
        assert as_utc(delivery.next_attempt_at) == start + timedelta(seconds=FIRST_RETRY)
        clock.advance(FIRST_RETRY)
        assert (await dispatcher.run_once()).attempts == 1
        (delivery,) = deliveries_of(engine, hook)
        assert delivery.status == "pending" and delivery.attempts == 2
        assert as_utc(delivery.next_attempt_at) == start + timedelta(
            seconds=FIRST_RETRY + SECOND_RETRY
        )
        await dispatcher.aclose()

    asyncio.run(scenario())
    (delivery,) = deliveries_of(engine, hook)
    attempts = attempts_for(engine, delivery.id)
    assert [(a.status_code, a.error) for a in attempts] == [(None, "connect timeout")] * 2
    assert [as_utc(a.attempted_at) for a in attempts] == [
        start,
        start + timedelta(seconds=FIRST_RETRY),
    ]
    with Session(engine) as session:
        row = session.get(Webhook, hook)
        assert row.is_active and row.consecutive_failures == 2
