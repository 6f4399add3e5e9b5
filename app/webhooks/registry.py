"""Webhook registrations and their delivery log, as the API reads and changes them."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.models import Webhook, WebhookAttempt, WebhookDelivery
from app.store.secret_box import SecretBox
from app.webhooks.events import WEBHOOK_TEST, envelope, iso
from app.webhooks.outbox import add_delivery
from app.webhooks.signing import generate_secret

# How long the old secret keeps signing after a rotation, unless asked otherwise.
DEFAULT_ROTATION_OVERLAP = timedelta(hours=24)


def new_webhook_id() -> str:
    return "wh_" + secrets.token_hex(12)


def webhook_view(hook: Webhook, secret: str | None = None) -> dict[str, Any]:
    """The public shape of a webhook; the secret only when just created or rotated."""
    view: dict[str, Any] = {
        "id": hook.id,
        "project_id": hook.project_id,
        "url": hook.url,
        "event_types": list(hook.event_types or []),
        "collections": list(hook.collections) if hook.collections else None,
        "is_active": hook.is_active,
        "disabled_reason": hook.disabled_reason,
        "consecutive_failures": hook.consecutive_failures,
        "failing_since": iso(hook.failing_since) if hook.failing_since else None,
        "previous_secret_expires_at": iso(hook.previous_secret_expires_at)
        if hook.previous_secret_expires_at
        else None,
        "created_at": iso(hook.created_at),
        "updated_at": iso(hook.updated_at),
    }
    if secret is not None:
        view["secret"] = secret
    return view


def attempt_view(attempt: WebhookAttempt) -> dict[str, Any]:
    return {
        "attempted_at": iso(attempt.attempted_at),
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "response_excerpt": attempt.response_excerpt,
        "error": attempt.error,
    }


def delivery_view(
    delivery: WebhookDelivery, attempts: list[WebhookAttempt] | None = None
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": iso(delivery.next_attempt_at) if delivery.next_attempt_at else None,
        "created_at": iso(delivery.created_at),
        "updated_at": iso(delivery.updated_at),
        "payload": delivery.payload,
    }
    if attempts is not None:
        view["attempt_log"] = [attempt_view(a) for a in attempts]
    return view


def create_webhook(
    session: Session,
    project_id: str,
    url: str,
    event_types: list[str],
    collections: list[str] | None,
    now: datetime,
    box: SecretBox | None,
) -> tuple[Webhook, str]:
    """A new webhook and its secret (in clear, to show once); the row holds it sealed by
    ``box`` (None stores it in clear, as rows written before encryption: tests only)."""
    secret = generate_secret()
    hook = Webhook(
        id=new_webhook_id(),
        project_id=project_id,
        url=url,
        event_types=sorted(set(event_types)),
        collections=sorted(set(collections)) if collections else None,
        secret=box.seal(secret) if box is not None else secret,
        is_active=True,
        disabled_reason=None,
        consecutive_failures=0,
        created_at=now,
        updated_at=now,
    )
    session.add(hook)
    session.flush()
    return hook, secret


def get_webhook(session: Session, project_id: str, webhook_id: str) -> Webhook | None:
    hook = session.get(Webhook, webhook_id)
    # Another project's webhook is reported exactly like a missing one.
    return hook if hook is not None and hook.project_id == project_id else None


def list_webhooks(session: Session, project_id: str) -> list[Webhook]:
    return list(
        session.scalars(
            select(Webhook).where(Webhook.project_id == project_id).order_by(Webhook.created_at)
        )
    )


def enable(hook: Webhook, now: datetime) -> None:
    hook.is_active = True
    hook.disabled_reason = None
    hook.consecutive_failures = 0
    hook.failing_since = None
    hook.updated_at = now


def rotate_secret(hook: Webhook, overlap: timedelta, now: datetime, box: SecretBox) -> str:
    secret = generate_secret()
    if overlap > timedelta(0):
        # Sealed too if it was a plaintext row from before encryption.
        hook.previous_secret = box.seal(box.open(hook.secret))
        hook.previous_secret_expires_at = now + overlap
    else:
        hook.previous_secret = None
        hook.previous_secret_expires_at = None
    hook.secret = box.seal(secret)
    hook.updated_at = now
    return secret


def enqueue_test(session: Session, hook: Webhook, now: datetime, hold_until: datetime) -> str:
    """A webhook.test delivery, leased to the caller (it sends the first attempt itself)."""
    body = envelope(
        WEBHOOK_TEST,
        now,
        {
            "project_id": hook.project_id,
            "webhook_id": hook.id,
            "message": "Test notification from Inbound; verify its signature and answer 2xx.",
        },
    )
    delivery = add_delivery(session, hook.id, WEBHOOK_TEST, body, now, next_attempt_at=hold_until)
    session.flush()
    return delivery.id


def list_deliveries(
    session: Session,
    webhook_id: str,
    status: str | None,
    before: datetime | None,
    limit: int,
) -> list[WebhookDelivery]:
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    if before is not None:
        query = query.where(WebhookDelivery.created_at < before)
    query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id).limit(limit)
    return list(session.scalars(query))


def attempts_of(session: Session, delivery_id: str) -> list[WebhookAttempt]:
    return list(
        session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.id)
        )
    )


def redeliver(delivery: WebhookDelivery, now: datetime) -> None:
    """Queue again under the same webhook-id, with a fresh retry schedule."""
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.updated_at = now
