"""A project at a glance for support staff: traffic, error rate, last error, paused streams."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.api.error_views import summary_view
from app.api.project_views import pause_view, project_or_404, project_view
from app.store.models import IngestCounter, IngestError, StreamPause


def project_overview(session: Session, project_id: str, hours: int) -> dict[str, Any]:
    since = datetime.now(UTC) - timedelta(hours=hours)
    project = project_or_404(session, project_id)
    received, rejected = session.execute(
        select(
            func.coalesce(func.sum(IngestCounter.received), 0),
            func.coalesce(func.sum(IngestCounter.rejected), 0),
        ).where(
            IngestCounter.project_id == project_id,
            IngestCounter.bucket >= since.replace(minute=0, second=0, microsecond=0),
        )
    ).one()
    by_code = dict(
        session.execute(
            select(IngestError.code, func.count())
            .where(IngestError.project_id == project_id, IngestError.created_at >= since)
            .group_by(IngestError.code)
        ).all()
    )
    open_errors = session.scalar(
        select(func.count())
        .select_from(IngestError)
        .where(IngestError.project_id == project_id, IngestError.status == "open")
    )
    last = session.scalar(
        select(IngestError)
        .where(IngestError.project_id == project_id)
        .order_by(IngestError.created_at.desc(), IngestError.id.desc())
        .limit(1)
    )
    pauses = session.execute(
        select(StreamPause)
        .where(StreamPause.project_id == project_id, StreamPause.resumed_at.is_(None))
        .order_by(StreamPause.paused_at)
    ).scalars()
    return {
        "project": project_view(project),
        "window_hours": hours,
        "received": int(received),
        "rejected": int(rejected),
        "error_rate": (int(rejected) / int(received)) if received else 0.0,
        "errors_by_code": {k: int(v) for k, v in by_code.items()},
        "open_errors": int(open_errors or 0),
        "last_error": summary_view(last) if last else None,
        "paused_streams": [pause_view(p) for p in pauses],
    }
