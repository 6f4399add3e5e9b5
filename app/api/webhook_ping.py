"""A test ping: a signed webhook.test sent now, and its first attempt reported.

The delivery is queued like any other (and retried like any other if this attempt fails);
it is leased to the request while this attempt is made, so no dispatcher sends it meanwhile.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from app.api.webhook_lookup import hook_or_404
from app.settings import Settings
from app.store.models import WebhookDelivery
from app.store.secret_box import box_for
from app.webhooks import registry
from app.webhooks.delivery import (
    Job,
    Limits,
    Policy,
    body_bytes,
    live_secrets,
    record_outcome,
    send,
)
from app.webhooks.url_safety import delivery_transport


def _now() -> datetime:
    return datetime.now(UTC)


async def ping_webhook(
    sessions: sessionmaker[Session], settings: Settings, project_id: str, webhook_id: str
) -> dict[str, Any]:
    """The delivery view after the first attempt (with its attempt log)."""
    limits = Limits(
        settings.webhook_connect_timeout,
        settings.webhook_read_timeout,
        settings.webhook_response_cap,
    )
    policy = Policy(
        settings.webhook_disable_after_failures,
        timedelta(seconds=settings.webhook_disable_after_seconds),
    )

    def enqueue() -> Job:
        now = _now()
        with sessions.begin() as session:
            hook = hook_or_404(session, project_id, webhook_id)
            # Leased to this request, so a dispatcher will not send it at the same time.
            delivery_id = registry.enqueue_test(session, hook, now, now + limits.lease)
            delivery = session.get(WebhookDelivery, delivery_id)
            return Job(
                delivery_id,
                hook.id,
                hook.url,
                live_secrets(hook, now, box_for(settings)),
                body_bytes(delivery.payload),
                0,
            )

    job = await asyncio.to_thread(enqueue)
    async with httpx.AsyncClient(
        transport=delivery_transport(settings.webhook_allow_private), follow_redirects=False
    ) as client:
        outcome = await send(client, job, _now(), limits)

    def record() -> dict[str, Any]:
        with sessions.begin() as session:
            record_outcome(session, job, outcome, _now(), policy)
        with sessions() as session:
            delivery = session.get(WebhookDelivery, job.delivery_id)
            return registry.delivery_view(delivery, registry.attempts_of(session, delivery.id))

    return await asyncio.to_thread(record)
