"""What the problems list and one problem's page show, built on the JSON API's own view
functions (app/api/problem_views.py), so the console's filters, sort and paging are the
API's and nothing is implemented twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.console.charts import bar_chart
from app.api.console.sessions import ConsoleUser
from app.api.problem_views import find_problem, problem_detail, search_problems
from app.api.problems import ApiError
from app.contract.errors import ERROR_CODES
from app.store.models import ApiKey, Project
from app.store.problem_lifecycle import STATUSES

PAGE_SIZE = 50
SORTS = (("last_seen", "Last seen"), ("count", "Count"), ("first_seen", "First seen"))
FILTERS = ("status", "collection", "code", "key_id", "q", "sort")
PROJECTS_LISTED = 500
KEYS_LISTED = 200


def problems_url(project_id: str | None) -> str:
    return f"/console/projects/{project_id}/problems" if project_id else "/console/problems"


def problem_url(project_id: str, problem_id: str) -> str:
    return f"/console/projects/{project_id}/problems/{problem_id}"


def error_url(project_id: str, error_id: str) -> str:
    return f"/console/projects/{project_id}/errors/{error_id}"


def _day_labels(now: datetime, days: int) -> list[str]:
    today = now.astimezone(UTC).date()
    return [(today - timedelta(days=days - 1 - i)).isoformat() for i in range(days)]


def _projects(db: Session) -> list[dict[str, str]]:
    rows = db.execute(
        select(Project.id, Project.name).order_by(Project.name, Project.id).limit(PROJECTS_LISTED)
    )
    return [{"id": pid, "name": name} for pid, name in rows]


def _project_name(db: Session, project_id: str | None) -> str | None:
    project = db.get(Project, project_id) if project_id and "\x00" not in project_id else None
    return project.name if project is not None else None


def _keys(db: Session, project_id: str) -> list[dict[str, str | None]]:
    rows = db.execute(
        select(ApiKey.id, ApiKey.name, ApiKey.kind)
        .where(ApiKey.project_id == project_id)
        .order_by(ApiKey.created_at, ApiKey.id)
        .limit(KEYS_LISTED)
    )
    return [{"id": kid, "name": name, "kind": kind} for kid, name, kind in rows]


def problems_page(
    db: Session,
    user: ConsoleUser,
    project_id: str | None,
    params: dict[str, str],
    now: datetime | None = None,
) -> dict[str, Any]:
    """The list page: one page of problems of ``project_id`` (None: every project, staff
    only) filtered as ``params`` say; a filter the API refuses is shown as its message."""
    now = now or datetime.now(UTC)
    filters = {name: params.get(name, "") for name in FILTERS}
    filters["sort"] = filters["sort"] or "last_seen"
    cursor = params.get("cursor") or None
    page: dict[str, Any] = {"problems": [], "next_cursor": None}
    refused = None
    try:
        page = search_problems(
            db,
            project_id=project_id,
            status=filters["status"] or None,
            code=filters["code"] or None,
            collection=filters["collection"] or None,
            key_id=filters["key_id"] or None,
            q=filters["q"] or None,
            sort=filters["sort"],
            cursor=cursor,
            limit=PAGE_SIZE,
            now=now,
        )
    except ApiError as exc:
        refused = exc.detail["message"]
    labels = _day_labels(now, 14)
    rows = []
    for problem in page["problems"]:
        rows.append(
            {
                **problem,
                "url": problem_url(problem["project_id"], problem["problem_id"]),
                "spark": bar_chart(problem["daily"], labels, width=84, height=20),
            }
        )
    base = problems_url(project_id)
    next_url = None
    if page["next_cursor"]:
        next_url = base + _query({**filters, "cursor": page["next_cursor"]})
    return {
        "title": "Problems",
        "project_id": project_id,
        "project_name": _project_name(db, project_id),
        "problems": rows,
        "filters": filters,
        "refused": refused,
        "paged": bool(cursor),
        "first_url": base + _query(filters),
        "next_url": next_url,
        "action_url": base,
        "statuses": STATUSES,
        "codes": sorted(ERROR_CODES),
        "sorts": SORTS,
        "projects": _projects(db) if user.is_staff else [],
        "keys": _keys(db, project_id) if project_id else [],
    }


def _query(params: dict[str, str]) -> str:
    from app.api.console.templates import query

    return query({k: v for k, v in params.items() if not (k == "sort" and v == "last_seen")})


def _hour_ticks(hourly: list[dict[str, Any]], slot: float) -> list[dict[str, Any]]:
    """A tick at each UTC midnight, labelled every other day (336 hours = 14 days)."""
    ticks = []
    right = len(hourly) * slot
    for i, hour in enumerate(hourly):
        if hour["hour"][11:13] == "00":
            x = round(i * slot, 2)
            # Every other midnight labelled, none too close to the right edge to fit.
            labelled = bool(len(ticks) % 2) and x + 40 < right
            ticks.append({"x": x, "label": hour["hour"][5:10], "labelled": labelled})
    return ticks


def problem_page(
    db: Session, user: ConsoleUser, project_id: str, problem_id: str, now: datetime | None = None
) -> dict[str, Any]:
    """One problem: the API's detail view, its hourly chart, keys, samples and actions."""
    problem = find_problem(db, problem_id, user.scope(project_id))
    if problem.project_id != project_id:  # staff: the URL names the problem's own project
        raise ApiError(404, "ResourceNotFoundError", "No such problem in this project.")
    view = problem_detail(db, problem, now)
    counts = [h["count"] for h in view["hourly"]]
    labels = [h["hour"][:13].replace("T", " ") + ":00 UTC" for h in view["hourly"]]
    chart = bar_chart(counts, labels, width=1008, height=120, gap=0.6)
    slot = chart.width / max(len(counts), 1)
    samples = [{**s, "url": error_url(s["project_id"], s["error_id"])} for s in view["samples"]]
    return {
        "title": f"Problem: {view['title']}",
        "project_id": project_id,
        "problem": view,
        "chart": chart,
        "ticks": _hour_ticks(view["hourly"], slot),
        "samples": samples,
        "url": problem_url(project_id, problem_id),
        "list_url": problems_url(project_id),
    }
