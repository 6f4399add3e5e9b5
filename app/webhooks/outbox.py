"""Outbox → deliveries, atomically: the heart of "nothing lost, nothing sent under two ids".

Notifications the worker committed are turned into ``webhook_deliveries`` rows and marked
dispatched in one transaction. A crash before the commit leaves both undone (the next pass
starts over, no delivery id was ever sent); after it, the deliveries exist with their final
``webhook-id`` and the notifications are never looked at again.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.store.models import Notification, Webhook, WebhookDelivery
from app.webhooks.events import (
    INGEST_FAILED,
    PROBLEM_TYPES,
    WEBHOOK_DISABLED,
    as_utc,
    envelope,
    ingest_failed_data,
    problem_event_data,
    single_event_data,
)

# Most outbox rows taken per pass: bounds one transaction; a backlog drains over passes.
OUTBOX_BATCH = 5000


class OutboxRace(RuntimeError):
    """Another dispatcher marked some of these notifications first (SQLite has no SKIP LOCKED)."""


def new_delivery_id() -> str:
    # "msg_" as Standard Webhooks examples do; 128 random bits.
    return "msg_" + secrets.token_hex(16)


def wants(webhook: Webhook, event_type: str, collection: str | None) -> bool:
    if event_type not in (webhook.event_types or []):
        return False
    if webhook.collections and collection is not None:
        return collection in webhook.collections
    return True


@dataclass
class BatchWindows:
    """When this dispatcher first saw a project's pending ingest.failed rows.

    The window normally runs from the rows' created_at; this guards against a worker clock
    ahead of ours holding a batch back for longer than the window.
    """

    first_seen: dict[str, datetime] = field(default_factory=dict)

    def ready(self, project_id: str, oldest: datetime, now: datetime, window: timedelta) -> bool:
        seen = self.first_seen.setdefault(project_id, now)
        if now - oldest >= window or now - seen >= window:
            self.first_seen.pop(project_id, None)
            return True
        return False


def add_delivery(
    session: Session,
    webhook_id: str,
    event_type: str,
    body: dict[str, Any],
    now: datetime,
    next_attempt_at: datetime | None = None,
) -> WebhookDelivery:
    delivery = WebhookDelivery(
        id=new_delivery_id(),
        webhook_id=webhook_id,
        event_type=event_type,
        payload=body,
        status="pending",
        attempts=0,
        next_attempt_at=next_attempt_at or now,
        created_at=now,
        updated_at=now,
    )
    session.add(delivery)
    return delivery


def dispatch_outbox(
    session: Session,
    now: datetime,
    window: timedelta,
    windows: BatchWindows,
    sample_size: int,
    link_base: str | None,
) -> int:
    """One pass over undispatched notifications; returns the deliveries created.

    The caller commits. Runs with row locks (SKIP LOCKED) on PostgreSQL so two dispatchers
    take disjoint rows.
    """
    rows = list(
        session.scalars(
            select(Notification)
            .where(Notification.dispatched_at.is_(None))
            .order_by(Notification.id)
            .limit(OUTBOX_BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    if not rows:
        return 0
    by_project: dict[str, list[Notification]] = defaultdict(list)
    for row in rows:
        by_project[row.project_id].append(row)
    hooks: dict[str, list[Webhook]] = defaultdict(list)
    for hook in session.scalars(
        select(Webhook)
        .where(Webhook.project_id.in_(list(by_project)), Webhook.is_active.is_(True))
        .order_by(Webhook.id)
    ):
        hooks[hook.project_id].append(hook)

    done: list[int] = []
    created = 0
    for project_id, notes in by_project.items():
        failed = [n for n in notes if n.type == INGEST_FAILED]
        others = [n for n in notes if n.type != INGEST_FAILED]
        if failed and not windows.ready(
            project_id, min(as_utc(n.created_at) for n in failed), now, window
        ):
            failed = []  # still inside the batching window: left for a later pass
        for hook in hooks.get(project_id, []):
            matched = [
                (as_utc(n.created_at), n.payload)
                for n in failed
                if wants(hook, INGEST_FAILED, n.payload.get("collection"))
            ]
            if matched:
                data = ingest_failed_data(project_id, matched, sample_size, link_base)
                add_delivery(
                    session, hook.id, INGEST_FAILED, envelope(INGEST_FAILED, now, data), now
                )
                created += 1
            for note in others:
                if not wants(hook, note.type, note.payload.get("collection")):
                    continue
                if note.type == WEBHOOK_DISABLED and note.payload.get("webhook_id") == hook.id:
                    continue
                data = (
                    problem_event_data(project_id, note.payload, link_base)
                    if note.type in PROBLEM_TYPES
                    else single_event_data(project_id, note.payload)
                )
                add_delivery(
                    session,
                    hook.id,
                    note.type,
                    envelope(note.type, as_utc(note.created_at), data),
                    now,
                )
                created += 1
        # Rows no webhook wants are marked too: there is nobody to tell, now or later.
        done.extend(n.id for n in failed)
        done.extend(n.id for n in others)
    if done:
        result = session.execute(
            update(Notification)
            .where(Notification.id.in_(done), Notification.dispatched_at.is_(None))
            .values(dispatched_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != len(done):
            raise OutboxRace(f"{len(done) - result.rowcount} notifications taken meanwhile")
    return created
