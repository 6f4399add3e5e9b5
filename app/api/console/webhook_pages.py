"""What the webhooks pages show and do, through the webhooks API's own functions
(``app/webhooks/registry``, ``app/api/webhook_lookup``, ``app/api/webhook_ping``): the
project's endpoints with their status, one endpoint's delivery log (newest first, paged
with the API's ``before``) with every attempt, and the redeliver, test and rotate actions.

A remote server's response excerpt and our notification payloads (which carry collection
names a sender chose) are shown as text: the templates escape them like everything else.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.api.audit import record_audit
from app.api.console.templates import query
from app.api.problems import ApiError
from app.api.schemas.webhooks import RotateSecret
from app.api.time_params import parse_time
from app.api.webhook_lookup import delivery_or_404, hook_or_404
from app.api.webhook_ping import ping_webhook
from app.settings import Settings
from app.store.models import WebhookAttempt
from app.store.secret_box import box_for
from app.webhooks import registry

PAGE_SIZE = 25
DELIVERY_STATUSES = ("pending", "delivered", "failed")


def webhooks_url(project_id: str) -> str:
    return f"/console/projects/{project_id}/webhooks"


def webhook_url(project_id: str, webhook_id: str) -> str:
    return f"{webhooks_url(project_id)}/{webhook_id}"


def webhooks_page(db: Session, project_id: str) -> dict[str, Any]:
    hooks = [
        {**registry.webhook_view(h), "page_url": webhook_url(project_id, h.id)}
        for h in registry.list_webhooks(db, project_id)
    ]
    return {
        "title": "Webhooks",
        "project_id": project_id,
        "webhooks": hooks,
        "url": webhooks_url(project_id),
    }


def _attempts(db: Session, delivery_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The attempts of a page of deliveries in one query, each shaped by the API's
    ``attempt_view`` (oldest first, as ``registry.attempts_of`` orders them)."""
    found: dict[str, list[dict[str, Any]]] = {d: [] for d in delivery_ids}
    if not delivery_ids:
        return found
    rows = db.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(delivery_ids))
        .order_by(WebhookAttempt.id)
    )
    for attempt in rows:
        found[attempt.delivery_id].append(registry.attempt_view(attempt))
    return found


def _payload_text(payload: Any) -> str:
    return json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=True)


def webhook_page(
    db: Session, project_id: str, webhook_id: str, params: dict[str, str]
) -> dict[str, Any]:
    """One webhook and a page of its deliveries (``?status=``, ``?before=`` as the API's)."""
    hook = hook_or_404(db, project_id, webhook_id)
    status = params.get("status", "")
    if status and status not in DELIVERY_STATUSES:
        raise ApiError(400, "InvalidParameterError", "status is pending, delivered or failed.")
    before_text = params.get("before", "")
    before = parse_time(before_text, "before")
    rows = registry.list_deliveries(db, webhook_id, status or None, before, PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    attempts = _attempts(db, [d.id for d in rows])
    deliveries = [
        {
            **registry.delivery_view(d),
            "attempt_log": attempts[d.id],
            "payload_text": _payload_text(d.payload),
        }
        for d in rows
    ]
    base = webhook_url(project_id, webhook_id)
    next_url = None
    if more and deliveries:
        next_url = base + query({"status": status, "before": deliveries[-1]["created_at"]})
    return {
        "title": f"Webhook {hook.id}",
        "project_id": project_id,
        "hook": registry.webhook_view(hook),
        "deliveries": deliveries,
        "status": status,
        "statuses": DELIVERY_STATUSES,
        "paged": bool(before_text),
        "first_url": base + query({"status": status}),
        "next_url": next_url,
        "url": base,
        "list_url": webhooks_url(project_id),
        "new_secret": None,
    }


def redeliver_delivery(
    db: Session, project_id: str, webhook_id: str, delivery_id: str, actor: str
) -> None:
    """As ``POST .../deliveries/{id}/redeliver``: queued again under the same webhook-id
    (in the caller's transaction, with its audit entry)."""
    found = delivery_or_404(db, project_id, webhook_id, delivery_id)
    if found.status == "pending":
        raise ApiError(
            409, "DeliveryPendingError", "This delivery is already queued for its next attempt."
        )
    registry.redeliver(found, datetime.now(UTC))
    record_audit(db, actor, "webhook.redeliver", project_id=project_id, target=delivery_id)


def rotate_webhook_secret(
    db: Session,
    settings: Settings,
    project_id: str,
    webhook_id: str,
    previous_valid_seconds: str,
    actor: str,
) -> str:
    """As ``POST .../rotate-secret``: the new secret (to show once); the old one keeps
    signing for ``previous_valid_seconds`` (the API's default and bounds). In the caller's
    transaction, with its audit entry."""
    fields = {"previous_valid_seconds": previous_valid_seconds} if previous_valid_seconds else {}
    try:
        body = RotateSecret.model_validate(fields)
    except ValueError as exc:
        raise ApiError(
            400,
            "InvalidParameterError",
            "The old secret's overlap is a whole number of seconds from 0 to 604800 (7 days).",
        ) from exc
    hook = hook_or_404(db, project_id, webhook_id)
    secret = registry.rotate_secret(
        hook,
        timedelta(seconds=body.previous_valid_seconds),
        datetime.now(UTC),
        box_for(settings),
    )
    record_audit(db, actor, "webhook.rotate_secret", project_id=project_id, target=hook.id)
    return secret


async def send_test(
    sessions: sessionmaker[Session],
    settings: Settings,
    project_id: str,
    webhook_id: str,
    actor: str,
) -> dict[str, Any]:
    """As ``POST .../test``: a signed webhook.test sent now; the delivery with its attempt."""
    delivery = await ping_webhook(sessions, settings, project_id, webhook_id)
    with sessions.begin() as db:
        record_audit(db, actor, "webhook.test", project_id=project_id, target=delivery["id"])
    return delivery
