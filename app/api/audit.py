"""The audit log: its one way in (who did what to which target, when), and reading it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.timeframes import iso_or_none
from app.store.models import AuditEntry


def record_audit(
    session: Session,
    actor: str,
    action: str,
    *,
    project_id: str | None,
    target: str | None,
    at: datetime | None = None,
) -> None:
    session.add(
        AuditEntry(
            at=at or datetime.now(UTC),
            actor=actor,
            action=action,
            project_id=project_id,
            target=target,
        )
    )


def audit_page(
    session: Session,
    *,
    project_id: str | None,
    actor: str | None,
    action: str | None,
    before_id: int | None,
    limit: int,
) -> dict[str, Any]:
    """Newest first; ``next_cursor`` is the ``before_id`` of the next (older) page."""
    where = []
    if project_id:
        where.append(AuditEntry.project_id == project_id)
    if actor:
        where.append(AuditEntry.actor == actor)
    if action:
        where.append(AuditEntry.action == action)
    if before_id:
        where.append(AuditEntry.id < before_id)
    rows = (
        session.execute(
            select(AuditEntry).where(*where).order_by(AuditEntry.id.desc()).limit(limit + 1)
        )
        .scalars()
        .all()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "entries": [
            {
                "id": r.id,
                "at": iso_or_none(r.at),
                "actor": r.actor,
                "action": r.action,
                "project_id": r.project_id,
                "target": r.target,
            }
            for r in rows
        ],
        "next_cursor": rows[-1].id if more and rows else None,
    }
