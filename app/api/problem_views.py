"""Problems as the API shows them: the filtered, sorted, cursor-paginated list (with a 14-day
sparkline per problem), one problem with its hourly counts, keys and newest errors, and a
person's status change.

Shared by the customer routes (one project) and the support-staff routes (any project), so
the filters exist once. A page costs two queries whatever its size: the rows, then the
sparklines of all of them.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from app.api.code_advice import advice_for
from app.api.error_views import customer_dlq, refuse_nul, summary_view
from app.api.problems import ApiError
from app.api.schemas.problems import ProblemStatusChange
from app.api.time_params import parse_time
from app.api.timeframes import iso, iso_or_none
from app.contract.errors import ERROR_CODES
from app.store.models import ApiKey, IngestError, Problem, ProblemHour, ProblemKey
from app.store.problem_lifecycle import STATUSES, change_status

SORTS = ("last_seen", "count", "first_seen")
Q_MAX = 200
DAYS = 14
HOURS = DAYS * 24
KEYS_SHOWN = 100
SAMPLES_SHOWN = 5
_SORT_COLUMNS = {
    "last_seen": Problem.last_seen,
    "count": Problem.count,
    "first_seen": Problem.first_seen,
}
_Q_COLUMNS = (Problem.title, Problem.collection, Problem.code, Problem.location)


def _bad(message: str) -> ApiError:
    return ApiError(400, "InvalidParameterError", message)


def _utc(at: datetime) -> datetime:
    # SQLite returns naive datetimes; every stored time is UTC.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _listed(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v]


def _like_pattern(q: str) -> str:
    """``q`` as a LIKE substring pattern matching its characters literally (escape ``\\``)."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def problem_filters(
    *,
    project_id: str | None,
    status: str | None = None,
    code: str | None = None,
    collection: str | None = None,
    key_id: str | None = None,
    q: str | None = None,
) -> list[ColumnElement]:
    """WHERE clauses of the list; 400 for a value the API does not know."""
    refuse_nul(project_id=project_id, collection=collection, key_id=key_id, q=q)
    where: list[ColumnElement] = []
    if project_id is not None:
        where.append(Problem.project_id == project_id)
    statuses = _listed(status)
    if statuses:
        if set(statuses) - set(STATUSES):
            raise _bad(f"status is one or more of {', '.join(STATUSES)} (comma-separated)")
        where.append(Problem.status.in_(statuses))
    codes = _listed(code)
    if codes:
        unknown = sorted(set(codes) - ERROR_CODES)
        if unknown:
            raise _bad(
                f"unknown code {unknown[0][:64]!r}; code is one or more of "
                f"{', '.join(sorted(ERROR_CODES))} (comma-separated)"
            )
        where.append(Problem.code.in_(codes))
    collections = _listed(collection)
    if collections:
        where.append(Problem.collection.in_(collections))
    if key_id:
        where.append(
            Problem.id.in_(select(ProblemKey.problem_id).where(ProblemKey.key_id == key_id))
        )
    if q:
        if len(q) > Q_MAX:
            raise _bad(f"q is at most {Q_MAX} characters")
        pattern = _like_pattern(q)
        where.append(or_(*(column.ilike(pattern, escape="\\") for column in _Q_COLUMNS)))
    return where


def _encode_cursor(sort: str, row: Problem) -> str:
    value: Any = row.count if sort == "count" else _utc(getattr(row, sort)).isoformat()
    raw = orjson.dumps([sort, value, row.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# A cursor is client input: only what a stored row can hold gets to the query (a count beyond
# a 64-bit column cannot even be bound on SQLite; PostgreSQL cannot compare a string holding NUL).
_COUNT_RANGE = range(-(2**63), 2**63)


def _decode_cursor(cursor: str, sort: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        given_sort, value, problem_id = orjson.loads(raw)
        if given_sort != sort:
            raise ValueError("another sort")
        if type(problem_id) is not str or "\x00" in problem_id:
            raise TypeError("the id is a string without NUL")
        if sort == "count":
            if type(value) is not int or value not in _COUNT_RANGE:
                raise TypeError("count is a 64-bit integer")
            return value, problem_id
        at = datetime.fromisoformat(value)
        # Naive is UTC (not the server's zone); astimezone overflows for a time near the ends
        # of the calendar in another offset.
        return (at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)), problem_id
    except (ValueError, TypeError, OverflowError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise _bad("cursor is not one this API gave for this sort") from exc


def daily_counts(session: Session, ids: list[str], now: datetime) -> dict[str, list[int]]:
    """Errors per UTC day for the last 14 days (today last), for all ``ids`` in one query."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    edges = [today - timedelta(days=DAYS - 1 - i) for i in range(DAYS + 1)]
    out = {problem_id: [0] * DAYS for problem_id in ids}
    if not ids:
        return out
    bucket = ProblemHour.bucket
    sums = [
        func.sum(
            case((and_(bucket >= edges[i], bucket < edges[i + 1]), ProblemHour.count), else_=0)
        )
        for i in range(DAYS)
    ]
    rows = session.execute(
        select(ProblemHour.problem_id, *sums)
        .where(ProblemHour.problem_id.in_(ids), bucket >= edges[0], bucket < edges[-1])
        .group_by(ProblemHour.problem_id)
    )
    for problem_id, *days in rows:
        out[problem_id] = [int(d or 0) for d in days]
    return out


def problem_view(p: Problem, daily: list[int]) -> dict[str, Any]:
    sample = None
    if p.sample_error_id:
        sample = {
            "error_id": p.sample_error_id,
            "dlq": {
                "topic": customer_dlq(p.sample_dlq_topic),
                "backend_topic": p.sample_dlq_topic,
                "partition": p.sample_dlq_partition,
                "offset": p.sample_dlq_offset,
            },
        }
    return {
        "problem_id": p.id,
        "project_id": p.project_id,
        "title": p.title,
        "code": p.code,
        "stage": p.stage,
        "collection": p.collection,
        "location": p.location,
        "status": p.status,
        "count": p.count,
        "first_seen": iso_or_none(p.first_seen),
        "last_seen": iso_or_none(p.last_seen),
        "first_error_id": p.first_error_id,
        "last_error_id": p.last_error_id,
        "sample": sample,
        "status_changed_at": iso_or_none(p.status_changed_at),
        "status_changed_by": p.status_changed_by,
        "resolved_at": iso_or_none(p.resolved_at),
        "regressed_at": iso_or_none(p.regressed_at),
        "ignore_until": iso_or_none(p.ignore_until),
        "ignore_until_count": p.ignore_until_count,
        "daily": daily,
    }


def search_problems(
    session: Session,
    *,
    project_id: str | None,
    status: str | None = None,
    code: str | None = None,
    collection: str | None = None,
    key_id: str | None = None,
    q: str | None = None,
    sort: str = "last_seen",
    cursor: str | None = None,
    limit: int = 50,
    now: datetime | None = None,
) -> dict[str, Any]:
    """One page, the chosen column descending; keyset pagination on (that column, id) so a
    problem counted meanwhile never shifts the pages (it may leave them, never repeat)."""
    if sort not in _SORT_COLUMNS:
        raise _bad(f"sort is one of {', '.join(SORTS)}")
    column = _SORT_COLUMNS[sort]
    where = problem_filters(
        project_id=project_id,
        status=status,
        code=code,
        collection=collection,
        key_id=key_id,
        q=q,
    )
    if cursor:
        value, after_id = _decode_cursor(cursor, sort)
        where.append(or_(column < value, and_(column == value, Problem.id < after_id)))
    rows = (
        session.execute(
            select(Problem)
            .where(*where)
            .order_by(column.desc(), Problem.id.desc())
            .limit(limit + 1)
        )
        .scalars()
        .all()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    daily = daily_counts(session, [r.id for r in rows], now or datetime.now(UTC))
    return {
        "problems": [problem_view(r, daily[r.id]) for r in rows],
        "next_cursor": _encode_cursor(sort, rows[-1]) if more and rows else None,
    }


def find_problem(
    session: Session, problem_id: str, project_id: str | None, *, lock: bool = False
) -> Problem:
    """The problem, of ``project_id`` when given (None: support staff, any project).

    ``lock``: held until commit (PostgreSQL), so a batch counted meanwhile waits for a change.
    """
    problem = None
    if "\x00" not in problem_id:  # PostgreSQL refuses to compare a string holding NUL
        problem = session.get(Problem, problem_id, with_for_update=lock or None)
    if problem is None or (project_id is not None and problem.project_id != project_id):
        where = " in this project" if project_id is not None else ""
        raise ApiError(404, "ResourceNotFoundError", f"No such problem{where}.")
    return problem


def problem_item(session: Session, problem: Problem, now: datetime | None = None) -> dict:
    """One problem as the list shows it."""
    daily = daily_counts(session, [problem.id], now or datetime.now(UTC))
    return problem_view(problem, daily[problem.id])


def _hourly(session: Session, problem_id: str, now: datetime) -> list[dict[str, Any]]:
    this_hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = [this_hour - timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]
    counted = {
        _utc(bucket): int(count)
        for bucket, count in session.execute(
            select(ProblemHour.bucket, ProblemHour.count).where(
                ProblemHour.problem_id == problem_id,
                ProblemHour.bucket >= hours[0],
                ProblemHour.bucket <= this_hour,
            )
        )
    }
    return [{"hour": iso(h), "count": counted.get(h, 0)} for h in hours]


def _keys(session: Session, problem: Problem) -> list[dict[str, Any]]:
    rows = session.execute(
        select(ProblemKey.key_id, ApiKey.name, ProblemKey.count, ProblemKey.last_seen)
        # Only this project's keys lend their name: an error can name another project's key.
        .outerjoin(
            ApiKey, and_(ApiKey.id == ProblemKey.key_id, ApiKey.project_id == problem.project_id)
        )
        .where(ProblemKey.problem_id == problem.id)
        .order_by(ProblemKey.count.desc(), ProblemKey.key_id)
        .limit(KEYS_SHOWN)
    )
    return [
        {"key_id": key_id, "name": name, "count": int(count), "last_seen": iso_or_none(seen)}
        for key_id, name, count, seen in rows
    ]


def _samples(session: Session, problem_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(IngestError)
        .where(IngestError.problem_id == problem_id)
        .order_by(IngestError.created_at.desc(), IngestError.id.desc())
        .limit(SAMPLES_SHOWN)
    )
    return [summary_view(r) for r in rows]


def problem_detail(session: Session, problem: Problem, now: datetime | None = None) -> dict:
    """One problem with its hourly counts, its keys, its newest errors and what to do."""
    now = now or datetime.now(UTC)
    view = problem_item(session, problem, now)
    view["hourly"] = _hourly(session, problem.id, now)
    view["keys"] = _keys(session, problem)
    view["samples"] = _samples(session, problem.id)
    view["explanation"] = advice_for(problem.code)
    return view


def update_problem(
    session: Session,
    problem: Problem,
    change: ProblemStatusChange,
    actor: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A person's status change (applied to the problem's errors, audited); the new view."""
    now = now or datetime.now(UTC)
    ignoring = change.status == "ignored"
    if not ignoring and (change.ignore_until is not None or change.ignore_count is not None):
        raise _bad("ignore_until and ignore_count go only with status ignored")
    try:
        until = parse_time(change.ignore_until, "ignore_until")
    except OverflowError as exc:  # a time near the ends of the calendar, in another offset
        raise _bad("ignore_until is out of range") from exc
    if until is not None and until <= now:
        raise _bad("ignore_until must be in the future")
    change_status(
        session,
        problem,
        change.status,
        actor,
        now=now,
        ignore_until=until,
        ignore_count=change.ignore_count,
    )
    session.flush()
    return problem_item(session, problem, now)
