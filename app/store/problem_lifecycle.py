"""Status changes of a problem made by a person or by the quiet-time rule
(docs/design.md, "Problems").

A change applies to the problem's errors too (resolving a problem resolves its open errors;
ignoring it ignores them; opening it again reopens the resolved and ignored ones; replayed
errors keep their status) and leaves an audit entry naming who made it. The moves a new error
causes (``regressed``) are made where errors are counted, in ``problem_counts``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from app.store.models import AuditEntry, IngestError, Problem, Project

STATUSES = ("open", "resolved", "regressed", "ignored")
# What a person may set; regressed is only ever the store's verdict on a new error.
SETTABLE = ("open", "resolved", "ignored")
QUIET_ACTOR = "inbound (resolve_after_quiet)"
QUIET_OPTION = "resolve_after_quiet_hours"
# 100 years: longer is "never" in practice, and a date can still go back that far.
MAX_QUIET_HOURS = 100 * 365 * 24.0
# Error statuses each problem status moves, and to what.
_ERRORS_MOVE = {
    "resolved": (("open",), "resolved"),
    "ignored": (("open",), "ignored"),
    "open": (("resolved", "ignored"), "open"),
}


def change_status(
    session: Session,
    problem: Problem,
    status: str,
    actor: str,
    *,
    now: datetime | None = None,
    ignore_until: datetime | None = None,
    ignore_count: int | None = None,
) -> Problem:
    """Set ``status`` (one of SETTABLE) on ``problem`` and its errors; the caller commits.

    ``ignore_until`` / ``ignore_count``: an ignore ends at that time, or after that many more
    errors; the next error after its end regresses the problem.
    """
    if status not in SETTABLE:
        raise ValueError(f"status is one of {', '.join(SETTABLE)}")
    now = now or datetime.now(UTC)
    problem.status = status
    problem.status_changed_at = now
    problem.status_changed_by = actor
    problem.updated_at = now
    if status == "resolved":
        problem.resolved_at = now
    if status == "ignored":
        problem.ignore_until = ignore_until
        problem.ignore_until_count = problem.count + ignore_count if ignore_count else None
    else:
        problem.ignore_until = None
        problem.ignore_until_count = None
    before, after = _ERRORS_MOVE[status]
    session.execute(
        update(IngestError)
        .where(IngestError.problem_id == problem.id, IngestError.status.in_(before))
        .values(status=after, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.add(
        AuditEntry(
            at=now,
            actor=actor,
            action=f"problem.{status}",
            project_id=problem.project_id,
            target=problem.id,
        )
    )
    return problem


def quiet_hours(options: object, default: float) -> float:
    """A project's quiet time before auto-resolve, in hours (0: never). A value that is not a
    number takes the default; a huge one is capped, so no project's option can make the time
    arithmetic overflow and stop the rule for every project."""
    # Options of another JSON type (an operator's edit) are no options, not an error.
    value = options.get(QUIET_OPTION) if isinstance(options, dict) else None
    if value is None or type(value) is bool:
        return default
    try:
        hours = float(value)
    except (TypeError, ValueError):
        return default
    if not math.isfinite(hours):
        return default
    return min(max(0.0, hours), MAX_QUIET_HOURS)


def resolve_quiet_problems(
    engine: Engine, default_hours: float, now: datetime | None = None
) -> int:
    """Resolve every open or regressed problem quiet for its project's time; returns how many.

    Safe to run from several workers at once: each problem is re-checked under its row lock.
    """
    now = now or datetime.now(UTC)
    default_hours = quiet_hours({QUIET_OPTION: default_hours}, 0.0)  # the same bounds
    resolved = 0
    with Session(engine) as session, session.begin():
        hours = {
            pid: quiet_hours(options, default_hours)
            for pid, options in session.execute(select(Project.id, Project.options))
        }
        shortest = min((h for h in hours.values() if h > 0), default=0.0)
        if default_hours > 0:
            shortest = min(shortest or default_hours, default_hours)
        if shortest <= 0:
            return 0
        candidates = session.scalars(
            select(Problem)
            .where(
                Problem.status.in_(("open", "regressed")),
                Problem.last_seen < now - timedelta(hours=shortest),
            )
            .with_for_update(skip_locked=True)
        ).all()
        for problem in candidates:
            wait = hours.get(problem.project_id, default_hours)
            last = problem.last_seen
            last = last.replace(tzinfo=UTC) if last.tzinfo is None else last
            if wait > 0 and last < now - timedelta(hours=wait):
                change_status(session, problem, "resolved", QUIET_ACTOR, now=now)
                resolved += 1
    return resolved
