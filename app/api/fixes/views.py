"""Recorded fixes as the API shows them: one, the newest-first pages of them, and a saved
fix to apply again."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
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
        "status": fix.status,
        "saved": fix.saved,
        "saved_fix_id": fix.saved_fix_id,
        "unsaved_at": iso_or_none(fix.unsaved_at),
        "unsaved_by": fix.unsaved_by,
    }


def find_fix(session: Session, fix_id: str, project_id: str | None) -> Fix:
    """The fix, of ``project_id`` when given (None: support staff, any project)."""
    fix = None if "\x00" in fix_id else session.get(Fix, fix_id)
    if fix is None or (project_id is not None and fix.project_id != project_id):
        where = " in this project" if project_id is not None else ""
        raise ApiError(404, "ResourceNotFoundError", f"No such fix{where}.")
    return fix


@dataclass(frozen=True)
class SavedFix:
    """What applying a saved fix again needs, read while its row was at hand."""

    fix_id: str
    project_id: str
    problem_id: str
    operations: list[dict[str, Any]]


def find_saved_fix(session: Session, fix_id: str, project_id: str | None) -> SavedFix:
    """The saved fix (404 as find_fix; 409 FixNotSavedError when it is not, or no longer,
    saved: only a saved fix is applied again)."""
    fix = find_fix(session, fix_id, project_id)
    if not fix.saved or fix.problem_id is None:
        raise ApiError(
            409,
            "FixNotSavedError",
            'This fix is not saved on its problem; save one with "save": true.',
        )
    return SavedFix(fix.id, fix.project_id, fix.problem_id, list(fix.operations))


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
    saved: bool | None = None,
    saved_fix_id: str | None = None,
) -> dict[str, Any]:
    """Newest first; keyset pagination on (created_at, fix_id) so pages never shift.

    ``saved``: only the saved fixes (True) or only the others (False); ``saved_fix_id``:
    only the applications of that saved fix."""
    refuse_nul(project_id=project_id, problem_id=problem_id, saved_fix_id=saved_fix_id)
    where = []
    if project_id is not None:
        where.append(Fix.project_id == project_id)
    if problem_id:
        where.append(Fix.problem_id == problem_id)
    if saved is not None:
        where.append(Fix.saved == saved)
    if saved_fix_id:
        where.append(Fix.saved_fix_id == saved_fix_id)
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
