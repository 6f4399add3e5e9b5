"""Building blocks for webhook tests: projects, webhooks, outbox rows, a fake clock."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.store.models import Notification, WebhookAttempt, WebhookDelivery
from app.store.projects import create_project
from app.webhooks.registry import create_webhook


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class NoJitter(random.Random):
    def random(self) -> float:
        return 0.0


def new_project(engine: Engine) -> str:
    with Session(engine) as session, session.begin():
        return create_project(session, "webhook tests")["project_id"]


def new_webhook(
    engine: Engine,
    project_id: str,
    url: str,
    event_types: list[str],
    collections: list[str] | None = None,
) -> tuple[str, str]:
    with Session(engine) as session, session.begin():
        hook, secret = create_webhook(
            # box=None: the secret in clear, as rows written before encryption (still read).
            session,
            project_id,
            url,
            event_types,
            collections,
            datetime.now(UTC),
            box=None,
        )
        return hook.id, secret


def failed_payload(collection: str = "purchases", code: str = "invalid_json") -> dict[str, Any]:
    return {
        "error_id": uuid.uuid4().hex,
        "code": code,
        "stage": "decode",
        "collection": collection,
        "message": f"{code} in {collection}",
        "created_at": datetime.now(UTC).isoformat(),
    }


def add_notifications(
    engine: Engine,
    project_id: str,
    kind: str,
    payloads: list[dict[str, Any]],
    created_at: datetime | None = None,
) -> None:
    """What the ingest worker does for each rejected event (its contract)."""
    with Session(engine) as session, session.begin():
        for payload in payloads:
            session.add(
                Notification(
                    project_id=project_id,
                    type=kind,
                    payload=payload,
                    created_at=created_at or datetime.now(UTC),
                    dispatched_at=None,
                )
            )


def verify_from_spec(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """An independent Standard Webhooks verifier, written from the spec for these tests."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    for item in headers["webhook-signature"].split():
        version, _, signature = item.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


def dispatch_once(dispatcher: Any, passes: int = 1) -> None:
    """Drive ``passes`` full dispatcher passes (outbox, claim, send, record), then close it."""

    async def go() -> None:
        try:
            for _ in range(passes):
                await dispatcher.run_once()
        finally:
            await dispatcher.aclose()

    asyncio.run(go())


def deliveries_of(engine: Engine, webhook_id: str) -> list[WebhookDelivery]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == webhook_id)
                .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
            )
        )


def attempts_for(engine: Engine, delivery_id: str) -> list[WebhookAttempt]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id == delivery_id)
                .order_by(WebhookAttempt.id)
            )
        )
