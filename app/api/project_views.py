"""Projects and paused streams as the support-staff API shows them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.api.problems import ApiError
from app.api.timeframes import iso_or_none
from app.store.models import Project, StreamPause


def project_or_404(session: Session, project_id: str) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise ApiError(404, "ResourceNotFoundError", "No such project.")
    return project


def project_view(p: Project) -> dict[str, Any]:
    return {
        "project_id": p.id,
        "name": p.name,
        "is_active": p.is_active,
        "created_at": iso_or_none(p.created_at),
    }


def pause_view(p: StreamPause) -> dict[str, Any]:
    return {
        "pause_id": p.id,
        "collection": p.collection,
        "topic": p.topic,
        "partition": p.partition,
        "reason": p.reason,
        "paused_at": iso_or_none(p.paused_at),
        "resumed_at": iso_or_none(p.resumed_at),
        "resumed_by": p.resumed_by,
    }
