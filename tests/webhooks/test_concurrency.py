"""Two dispatchers at once (SKIP LOCKED on PostgreSQL, conditional claims on SQLite)."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.store.models import Notification, WebhookDelivery
from app.webhooks.dispatcher import Dispatcher
from tests.webhooks.helpers import add_notifications, new_project, new_webhook


def test_two_dispatchers_never_double_send(engine, receiver, hook_settings) -> None:
    project = new_project(engine)
    new_webhook(engine, project, receiver.url(), ["dlq.paused"])
    reasons = [f"r{i}" for i in range(60)]
    for reason in reasons:
        add_notifications(engine, project, "dlq.paused", [{"collection": "c", "reason": reason}])
    settings = hook_settings(webhook_concurrency=8)

    async def scenario() -> None:
        one, two = Dispatcher(settings, engine), Dispatcher(settings, engine)
        for _ in range(40):
            await asyncio.gather(one.run_once(), two.run_once())
            with Session(engine) as session:
                left = session.scalar(
                    select(func.count()).where(WebhookDelivery.status != "delivered")
                ) + session.scalar(select(func.count()).where(Notification.dispatched_at.is_(None)))
            if not left:
                break
        await one.aclose()
        await two.aclose()

    asyncio.run(scenario())
    ids: dict[str, set[str]] = defaultdict(set)
    for got in receiver.requests:
        ids[got.json["data"]["reason"]].add(got.webhook_id)
    assert sorted(ids) == sorted(reasons)
    assert all(len(v) == 1 for v in ids.values())
    assert len(receiver.requests) == len(reasons)  # no delivery attempted twice
