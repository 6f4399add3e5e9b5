"""The customer's problems (master key): rejected events grouped by fingerprint, listed,
shown one at a time, resolved or ignored; and the project's problems settings."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query

from app.api.audit import record_audit
from app.api.auth import MASTER_KEY, Caller
from app.api.deps import SessionDep, SettingsDep
from app.api.problem_views import (
    Q_MAX,
    find_problem,
    problem_detail,
    search_problems,
    update_problem,
)
from app.api.problems import KEY_ERRORS, error_responses
from app.api.project_views import project_or_404
from app.api.schemas.problems import (
    ProblemDetail,
    ProblemItem,
    ProblemPage,
    ProblemSettings,
    ProblemSettingsView,
    ProblemStatusChange,
)
from app.store.models import Project
from app.store.problem_lifecycle import QUIET_OPTION, quiet_hours

router = APIRouter(tags=["problems"])
PROBLEMS_PATH = "/3.0/projects/{project_id}/problems"
SETTINGS_PATH = "/3.0/projects/{project_id}/settings/problems"
LIST_DESCRIPTION = (
    "A problem is one kind of failure in one collection: its errors share a fingerprint "
    "(code and normalized property path). Filters: `status`, `code`, `collection` "
    "(comma-separated lists allowed), `key_id` (problems that key sent), `q` (case-insensitive "
    f"text in title, collection, code or location, at most {Q_MAX} characters). Sorted by "
    "`sort` descending; page with `cursor` = `next_cursor`."
)
SortParam = Literal["last_seen", "count", "first_seen"]


def _q(description: str) -> Any:
    return Query(default=None, description=description)


# The list's filters, one declaration for the customer's and the support staff's route.
STATUS_Q = _q("open, resolved, regressed, ignored (comma-separated).")
CODE_Q = _q("Error code(s), e.g. invalid_json,invalid_property_name.")
COLLECTION_Q = _q("Collection(s), comma-separated.")
KEY_Q = _q("Only problems this key id sent errors of.")
TEXT_Q = _q(f"Text in title, collection, code or location (at most {Q_MAX} characters).")
CURSOR_Q = _q("next_cursor of the previous page (with the same sort).")


@router.get(
    PROBLEMS_PATH,
    summary="List problems (rejected events grouped by kind), most recent first",
    description=LIST_DESCRIPTION,
    response_model=ProblemPage,
    responses=error_responses(*KEY_ERRORS),
)
def problems_list(
    session: SessionDep,
    status: str | None = STATUS_Q,
    code: str | None = CODE_Q,
    collection: str | None = COLLECTION_Q,
    key_id: str | None = KEY_Q,
    q: str | None = TEXT_Q,
    sort: SortParam = Query(default="last_seen"),
    cursor: str | None = CURSOR_Q,
    limit: int = Query(default=50, ge=1, le=500),
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    return search_problems(
        session,
        project_id=caller.project_id,
        status=status,
        code=code,
        collection=collection,
        key_id=key_id,
        q=q,
        sort=sort,
        cursor=cursor,
        limit=limit,
    )


@router.get(
    f"{PROBLEMS_PATH}/{{problem_id}}",
    summary="One problem with its hourly counts, sending keys, newest errors and advice",
    response_model=ProblemDetail,
    responses=error_responses(*KEY_ERRORS, 404),
)
def problem_get(session: SessionDep, problem_id: str, caller: Caller = Depends(MASTER_KEY)) -> Any:
    return problem_detail(session, find_problem(session, problem_id, caller.project_id))


@router.patch(
    f"{PROBLEMS_PATH}/{{problem_id}}",
    summary="Resolve, ignore or reopen a problem (and its errors)",
    description="`resolved`: its open errors become resolved, and a new error regresses it. "
    "`ignored`: muted (no notifications), for good, until `ignore_until`, or for "
    "`ignore_count` more errors. `open`: its resolved and ignored errors reopen. Audited.",
    response_model=ProblemItem,
    responses=error_responses(*KEY_ERRORS, 404),
)
def problem_set_status(
    session: SessionDep,
    problem_id: str,
    body: ProblemStatusChange,
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    with session.begin():
        problem = find_problem(session, problem_id, caller.project_id, lock=True)
        return update_problem(session, problem, body, caller.actor)


def _options(project: Project) -> dict[str, Any]:
    # A JSON column: options of another type (an operator's edit) are none, not a 500.
    return dict(project.options) if isinstance(project.options, dict) else {}


def _settings_view(project: Project, default_hours: float) -> dict[str, Any]:
    options = _options(project)
    stored = options.get(QUIET_OPTION)
    # Only a number is a setting (the worker ignores anything else stored there too).
    number = isinstance(stored, int | float) and not isinstance(stored, bool)
    return {
        "resolve_after_quiet_hours": stored if number else None,
        "effective_resolve_after_quiet_hours": quiet_hours(options, default_hours),
    }


@router.get(
    SETTINGS_PATH,
    summary="The project's problems settings (quiet time before auto-resolve)",
    response_model=ProblemSettingsView,
    responses=error_responses(*KEY_ERRORS),
)
def problem_settings_get(
    session: SessionDep, settings: SettingsDep, caller: Caller = Depends(MASTER_KEY)
) -> Any:
    project = project_or_404(session, caller.project_id)
    return _settings_view(project, settings.problem_resolve_after_quiet_hours)


@router.patch(
    SETTINGS_PATH,
    summary="Set the quiet time after which problems resolve by themselves",
    description="`resolve_after_quiet_hours`: hours without a new error before an open or "
    "regressed problem is resolved; null falls back to the server's default. Audited.",
    response_model=ProblemSettingsView,
    responses=error_responses(*KEY_ERRORS),
)
def problem_settings_set(
    session: SessionDep,
    settings: SettingsDep,
    body: ProblemSettings,
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    with session.begin():
        project = project_or_404(session, caller.project_id)
        options = _options(project)
        if body.resolve_after_quiet_hours is None:
            options.pop(QUIET_OPTION, None)
        else:
            options[QUIET_OPTION] = body.resolve_after_quiet_hours
        project.options = options  # a new dict: the JSON column sees the change
        record_audit(
            session,
            caller.actor,
            "project.settings.problems",
            project_id=project.id,
            target=project.id,
        )
        session.flush()
        return _settings_view(project, settings.problem_resolve_after_quiet_hours)
