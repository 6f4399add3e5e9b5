"""Recorded fixes as the API shows them: one, and the newest-first pages of them."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.api.error_views import refuse_nul
from app.api.problems import ApiError
from app.api.timeframes import iso_or_none
from app.store.models import Fix

COUNTS = (
    "matched",
    "examined",
    "accepted",
    "rejected",
    "failed",
    "replayed",
    "refused",
    "remaining",
)


def fix_view(fix: Fix) -> dict[str, Any]:
    return {
        "fix_id": fix.id,
        "project_id": fix.project_id,
        "operations": fix.operations,
        "target": fix.target,
        "problem_id": fix.problem_id,
        "actor": fix.actor,
        "created_at": iso_or_none(fix.created_at),
        "counts": {name: getattr(fix, name) for name in COUNTS},
    }


def find_fix(session: Session, fix_id: str, project_id: str | None) -> Fix:
    """The fix, of ``project_id`` when given (None: support staff, any project)."""
    fix = None if "\x00" in fix_id else session.get(Fix, fix_id)
    if fix is None or (project_id is not None and fix.project_id != project_id):
        where = " in this project" if project_id is not None else ""
        raise ApiError(404, "ResourceNotFoundError", f"No such fix{where}.")
    return fix


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _cursor(fix: Fix) -> str:
    raw = orjson.dumps([_utc(fix.created_at).isoformat(), fix.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, fix_id = orjson.loads(raw)
        return datetime.fromisoformat(at).astimezone(UTC), str(fix_id)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise ApiError(400, "InvalidParameterError", "cursor is not one this API gave") from exc


def list_fixes(
    session: Session,
    *,
    project_id: str | None,
    problem_id: str | None,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """Newest first; keyset pagination on (created_at, fix_id) so pages never shift."""
    refuse_nul(project_id=project_id, problem_id=problem_id)
    where = []
    if project_id is not None:
        where.append(Fix.project_id == project_id)
    if problem_id:
        where.append(Fix.problem_id == problem_id)
    if cursor:
        at, fix_id = _after(cursor)
        where.append(or_(Fix.created_at < at, and_(Fix.created_at == at, Fix.id < fix_id)))
    rows = (
        session.execute(
            select(Fix)
            .where(*where)
            .order_by(Fix.created_at.desc(), Fix.id.desc())
            .limit(limit + 1)
        )
        .scalars()
        .all()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "fixes": [fix_view(f) for f in rows],
        "next_cursor": _cursor(rows[-1]) if more and rows else None,
    }
