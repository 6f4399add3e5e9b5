"""The dispatcher against a real loopback receiver, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook as StandardVerifier

from app.store.models import Notification, Webhook, WebhookAttempt, WebhookDelivery
from app.webhooks.dispatcher import Dispatcher
from app.webhooks.events import as_utc
from app.webhooks.schedule import RETRY_SCHEDULE
from tests.webhooks.helpers import (
    FakeClock,
    NoJitter,
    add_notifications,
    failed_payload,
    new_project,
    new_webhook,
    verify_from_spec,
)
from tests.webhooks.receiver import Reply


def run(dispatcher: Dispatcher) -> None:
    async def go() -> None:
        try:
            await dispatcher.run_once()
        finally:
            await dispatcher.aclose()

    asyncio.run(go())


def deliveries(engine, webhook_id: str) -> list[WebhookDelivery]:  # noqa: ANN001
    with Session(engine) as session:
        return list(
            session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == webhook_id)
                .order_by(WebhookDelivery.created_at)
            )
        )


def test_ingest_failed_batched_signed_and_linked(engine, receiver, hook_settings) -> None:
    project = new_project(engine)
    hook_id, secret = new_webhook(engine, project, receiver.url(), ["ingest.failed"])
    payloads = [failed_payload("purchases", "invalid_json") for _ in range(5)]
    payloads += [failed_payload("clicks", "event_too_large") for _ in range(2)]
    add_notifications(engine, project, "ingest.failed", payloads)

    run(Dispatcher(hook_settings(webhook_link_base="https://in.example.com"), engine))

    (got,) = receiver.wait_for(1)
    # Two independent verifiers of the Standard Webhooks scheme.
    body = StandardVerifier(secret).verify(got.body, got.headers)
    assert verify_from_spec(secret, got.headers, got.body)
    assert got.headers["content-type"] == "application/json"
    assert body["type"] == "ingest.failed"
    data = body["data"]
    assert data["total"] == 7
    assert data["by_code"] == {"event_too_large": 2, "invalid_json": 5}
    assert data["counts"] == [
        {"code": "invalid_json", "collection": "purchases", "count": 5},
        {"code": "event_too_large", "collection": "clicks", "count": 2},
    ]
    assert len(data["samples"]) == 5
    first = data["samples"][0]
    assert first["error_id"] == payloads[0]["error_id"]
    assert (
        first["url"] == f"https://in.example.com/3.0/projects/{project}/errors/{first['error_id']}"
    )
    (delivery,) = deliveries(engine, hook_id)
    assert delivery.id == got.webhook_id and delivery.status == "delivered"
    with Session(engine) as session:
        assert session.scalar(select(func.count()).where(Notification.dispatched_at.is_(None))) == 0
        (attempt,) = session.scalars(select(WebhookAttempt))
        assert attempt.status_code == 200 and attempt.response_excerpt == "ok"
        assert attempt.latency_ms is not None


def test_batching_window_holds_then_flushes(engine, receiver, hook_settings) -> None:
    clock = FakeClock()
    project = new_project(engine)
    new_webhook(engine, project, receiver.url(), ["ingest.failed"])
    add_notifications(engine, project, "ingest.failed", [failed_payload()], created_at=clock.now)
    dispatcher = Dispatcher(hook_settings(webhook_batch_window_ms=1000), engine, clock=clock)

    async def scenario() -> None:
        clock.advance(0.5)
        assert (await dispatcher.run_once()).deliveries_created == 0
        add_notifications(
            engine, project, "ingest.failed", [failed_payload()], created_at=clock.now
        )
        clock.advance(0.5)
        result = await dispatcher.run_once()
        assert result.deliveries_created == 1 and result.attempts == 1
        await dispatcher.aclose()

    asyncio.run(scenario())
    (got,) = receiver.wait_for(1)
    assert got.json["data"]["total"] == 2


def test_filters_and_single_events(engine, receiver, hook_settings) -> None:
    project = new_project(engine)
    other_project = new_project(engine)
    only_a, _ = new_webhook(engine, project, receiver.url("/a"), ["ingest.failed"], ["a"])
    dlq, _ = new_webhook(engine, project, receiver.url("/dlq"), ["dlq.paused", "dlq.resumed"])
    stranger, _ = new_webhook(engine, other_project, receiver.url("/other"), ["ingest.failed"])
    add_notifications(engine, project, "ingest.failed", [failed_payload("a"), failed_payload("b")])
    pause = {"collection": "a", "topic": "in.x.a", "partition": 0, "reason": "ratio 0.95"}
    add_notifications(engine, project, "dlq.paused", [pause])
    add_notifications(engine, project, "dlq.resumed", [{**pause, "reason": "by api"}])

    run(Dispatcher(hook_settings(), engine))

    (a,) = receiver.wait_for(1, "/a")
    assert a.json["data"]["total"] == 1 and a.json["data"]["counts"][0]["collection"] == "a"
    got = receiver.wait_for(2, "/dlq")
    assert sorted(r.json["type"] for r in got) == ["dlq.paused", "dlq.resumed"]
    paused = next(r.json for r in got if r.json["type"] == "dlq.paused")
    assert paused["data"] == {"project_id": project, **pause}
    assert receiver.to("/other") == []  # project isolation
    assert deliveries(engine, stranger) == []


def test_retries_follow_the_schedule_then_disable(engine, receiver, hook_settings) -> None:
    clock = FakeClock()
    receiver.plan = lambda r: Reply(500, b"boom") if r.path == "/down" else Reply()
    project = new_project(engine)
    down, _ = new_webhook(engine, project, receiver.url("/down"), ["dlq.paused"])
    watcher, watcher_secret = new_webhook(
        engine, project, receiver.url("/ops"), ["webhook.disabled"]
    )
    add_notifications(engine, project, "dlq.paused", [{"collection": "c", "reason": "r"}])
    dispatcher = Dispatcher(hook_settings(), engine, clock=clock, rng=NoJitter())
    start = clock.now

    async def scenario() -> None:
        assert (await dispatcher.run_once()).attempts == 1
        for n, delay in enumerate(RETRY_SCHEDULE, start=1):
            (delivery,) = deliveries(engine, down)
            assert delivery.attempts == n and delivery.status == "pending"
            assert as_utc(delivery.next_attempt_at) == clock.now + timedelta(seconds=delay)
            clock.advance(delay - 1)
            assert (await dispatcher.run_once()).attempts == 0, f"early retry {n}"
            clock.advance(1)
            assert (await dispatcher.run_once()).attempts == 1, f"retry {n} not made"
        # The webhook.disabled notification goes out on the next pass.
        await dispatcher.run_once()
        await dispatcher.aclose()

    asyncio.run(scenario())
    got = receiver.to("/down")
    assert len(got) == len(RETRY_SCHEDULE) + 1
    assert len({r.webhook_id for r in got}) == 1  # one webhook-id across all retries
    (delivery,) = deliveries(engine, down)
    assert delivery.status == "failed" and delivery.next_attempt_at is None
    with Session(engine) as session:
        hook = session.get(Webhook, down)
        assert not hook.is_active
        assert "consecutive failed attempts" in hook.disabled_reason
        assert hook.consecutive_failures == len(RETRY_SCHEDULE) + 1
        attempts = session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery.id)
            .order_by(WebhookAttempt.id)
        ).all()
        assert [a.status_code for a in attempts] == [500] * (len(RETRY_SCHEDULE) + 1)
        assert as_utc(attempts[-1].attempted_at) == start + timedelta(seconds=sum(RETRY_SCHEDULE))
    (ops,) = receiver.wait_for(1, "/ops")
    assert ops.json["type"] == "webhook.disabled"
    assert ops.json["data"]["webhook_id"] == down
    assert verify_from_spec(watcher_secret, ops.headers, ops.body)


def test_retry_after_is_honoured(engine, receiver, hook_settings) -> None:
    clock = FakeClock()
    receiver.plan = lambda _r: Reply(503, b"busy", {"Retry-After": "600"})
    project = new_project(engine)
    hook, _ = new_webhook(engine, project, receiver.url(), ["dlq.paused"])
    add_notifications(engine, project, "dlq.paused", [{"collection": "c"}])
    run(Dispatcher(hook_settings(), engine, clock=clock, rng=NoJitter()))
    (delivery,) = deliveries(engine, hook)
    assert as_utc(delivery.next_attempt_at) == clock.now + timedelta(seconds=600)


def test_gone_disables_at_once(engine, receiver, hook_settings) -> None:
    receiver.plan = lambda _r: Reply(410, b"gone")
    project = new_project(engine)
    hook, _ = new_webhook(engine, project, receiver.url(), ["dlq.paused"])
    add_notifications(engine, project, "dlq.paused", [{"collection": "c"}, {"collection": "d"}])
    run(Dispatcher(hook_settings(), engine))
    receiver.wait_for(2)
    with Session(engine) as session:
        row = session.get(Webhook, hook)
        assert not row.is_active and "410" in row.disabled_reason
        assert [d.status for d in session.scalars(select(WebhookDelivery))] == ["failed"] * 2
        disabled = session.scalars(
            select(Notification).where(Notification.type == "webhook.disabled")
        ).all()
        assert len(disabled) == 1 and disabled[0].payload["webhook_id"] == hook
    # Disabled: later notifications create no deliveries.
    add_notifications(engine, project, "dlq.paused", [{"collection": "e"}])
    run(Dispatcher(hook_settings(), engine))
    assert len(deliveries(engine, hook)) == 2


def test_sustained_failure_threshold(engine, receiver, hook_settings) -> None:
    clock = FakeClock()
    receiver.plan = lambda _r: Reply(500)
    project = new_project(engine)
    hook, _ = new_webhook(engine, project, receiver.url(), ["dlq.paused"])
    add_notifications(engine, project, "dlq.paused", [{"collection": str(i)} for i in range(3)])
    settings = hook_settings(webhook_disable_after_failures=3, webhook_disable_after_seconds=60)
    dispatcher = Dispatcher(settings, engine, clock=clock, rng=NoJitter())

    async def scenario() -> None:
        await dispatcher.run_once()  # 3 failures at once, but not yet for 60 s: still active
        with Session(engine) as session:
            assert session.get(Webhook, hook).is_active
        clock.advance(60)
        await dispatcher.run_once()
        await dispatcher.aclose()

    asyncio.run(scenario())
    with Session(engine) as session:
        row = session.get(Webhook, hook)
        assert not row.is_active and row.consecutive_failures == 6


def test_timeouts_and_response_cap(engine, receiver, hook_settings) -> None:
    receiver.plan = lambda r: Reply(200, b"x" * 100_000) if r.path == "/big" else Reply(delay=3)
    project = new_project(engine)
    slow, _ = new_webhook(engine, project, receiver.url("/slow"), ["dlq.paused"])
    big, _ = new_webhook(engine, project, receiver.url("/big"), ["dlq.paused"])
    add_notifications(engine, project, "dlq.paused", [{"collection": "c"}])
    settings = hook_settings(webhook_read_timeout=0.5, webhook_response_cap=1000)
    run(Dispatcher(settings, engine))
    with Session(engine) as session:
        by_hook = {
            d.webhook_id: session.scalars(
                select(WebhookAttempt).where(WebhookAttempt.delivery_id == d.id)
            ).one()
            for d in session.scalars(select(WebhookDelivery))
        }
    assert by_hook[slow].status_code is None and by_hook[slow].error == "read timeout"
    assert by_hook[big].status_code == 200 and len(by_hook[big].response_excerpt) == 1000


def test_private_destinations_refused_at_connect(engine, receiver, hook_settings) -> None:
    project = new_project(engine)
    # Registered while allowed (or pointed at by DNS later): the connect-time guard still holds.
    hook, _ = new_webhook(engine, project, receiver.url(), ["dlq.paused"])
    add_notifications(engine, project, "dlq.paused", [{"collection": "c"}])
    run(Dispatcher(hook_settings(webhook_allow_private=False), engine))
    assert receiver.requests == []
    with Session(engine) as session:
        attempt = session.scalars(select(WebhookAttempt)).one()
        assert attempt.status_code is None and "private" in attempt.error
