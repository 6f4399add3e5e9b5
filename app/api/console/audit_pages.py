"""What the audit page shows (support staff only): who did what to which target, when, newest
first, filtered by project, actor and action and paged through the audit log's one way in
(``app/api/audit.audit_page``, which ``GET /admin/audit`` answers with)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.api.audit import audit_page
from app.api.console.problem_pages import error_url, problem_url
from app.api.console.templates import query
from app.api.problems import ApiError

PAGE_SIZE = 100
FILTERS = ("project_id", "actor", "action")
AUDIT_URL = "/console/audit"
MAX_BIGINT = 2**63 - 1
FILTER_MAX = 300


def _before_id(text: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_BIGINT:
        raise ApiError(400, "InvalidParameterError", "before_id is an audit entry id.")
    return int(text)


def _target_url(entry: dict[str, Any]) -> str | None:
    """A link to what the entry is about, when the console has a page for it."""
    project, target, action = entry["project_id"], entry["target"], entry["action"]
    if not project or not target:
        return None
    if action.startswith("error."):
        return error_url(project, target)
    if action.startswith("problem."):
        return problem_url(project, target)
    return None


def audit_console_page(db: Session, params: dict[str, str]) -> dict[str, Any]:
    filters = {name: params.get(name, "").strip()[:FILTER_MAX] for name in FILTERS}
    if any("\x00" in value for value in filters.values()):  # PostgreSQL text cannot hold NUL
        raise ApiError(400, "InvalidParameterError", "A filter holds a NUL character.")
    before_text = params.get("before_id", "")
    page = audit_page(
        db,
        project_id=filters["project_id"] or None,
        actor=filters["actor"] or None,
        action=filters["action"] or None,
        before_id=_before_id(before_text),
        limit=PAGE_SIZE,
    )
    entries = [{**e, "target_url": _target_url(e)} for e in page["entries"]]
    next_url = None
    if page["next_cursor"]:
        next_url = AUDIT_URL + query({**filters, "before_id": page["next_cursor"]})
    return {
        "title": "Audit log",
        "entries": entries,
        "filters": filters,
        "paged": bool(before_text),
        "first_url": AUDIT_URL + query(filters),
        "next_url": next_url,
        "url": AUDIT_URL,
    }
