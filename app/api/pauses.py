"""Paused streams: listing them, and resuming one by hand (the worker picks it up)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.audit import record_audit
from app.api.problems import ApiError
from app.api.project_views import pause_view
from app.store.models import Notification, StreamPause
from app.webhooks.events import DLQ_RESUMED


def list_pauses(session: Session, project_id: str, include_resumed: bool) -> list[dict[str, Any]]:
    where = [StreamPause.project_id == project_id]
    if not include_resumed:
        where.append(StreamPause.resumed_at.is_(None))
    rows = session.execute(select(StreamPause).where(*where).order_by(StreamPause.id)).scalars()
    return [pause_view(p) for p in rows]


def resume_pause(session: Session, project_id: str, pause_id: int, actor: str) -> dict[str, Any]:
    """Resume within the caller's transaction: the pause, its audit entry and the webhook
    notification are written together or not at all."""
    pause = session.scalar(
        select(StreamPause).where(StreamPause.id == pause_id, StreamPause.project_id == project_id)
    )
    if pause is None:
        raise ApiError(404, "ResourceNotFoundError", "No such pause in this project.")
    if pause.resumed_at is not None:
        raise ApiError(409, "ConflictError", "This stream was already resumed.")
    pause.resumed_at = datetime.now(UTC)
    pause.resumed_by = actor
    record_audit(
        session,
        actor,
        "stream.resume",
        project_id=project_id,
        target=f"{pause.topic}/{pause.partition}",
        at=pause.resumed_at,
    )
    # Webhooks get dlq.resumed, as for `inbound dlq resume` (same payload shape).
    session.add(
        Notification(
            project_id=project_id,
            type=DLQ_RESUMED,
            created_at=pause.resumed_at,
            payload={
                "collection": pause.collection,
                "topic": pause.collection,
                "partitions": [pause.partition],
                "resumed_by": actor,
            },
        )
    )
    session.flush()
    return pause_view(pause)
