"""Support staff (`Authorization: Bearer <INBOUND_ADMIN_TOKEN>`): errors and problems across
projects, project overviews, the payload audit log, paused streams, projects and keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query
from sqlalchemy import select

from app.api.audit import audit_page, record_audit
from app.api.auth import require_admin
from app.api.deps import ProducerDep, ReplayLimiterDep, SessionDep, SessionsDep, SettingsDep
from app.api.error_views import audit_payload_read, detail_view, find_error, search_errors
from app.api.fixes.views import find_fix, fix_view, list_fixes
from app.api.key_admin import list_keys, make_key, revoke_key, tell_workers_keys_changed
from app.api.overview import project_overview
from app.api.pauses import list_pauses, resume_pause
from app.api.problem_views import find_problem, problem_detail, search_problems, update_problem
from app.api.problems import error_responses
from app.api.project_views import project_or_404, project_view
from app.api.reconciliation import reconcile
from app.api.routes_fixes import (
    APPLY_DESCRIPTION,
    APPLY_SUMMARY,
    FIX_DESCRIPTION,
    FIX_SUMMARY,
    FIXES_DESCRIPTION,
    LIST_SUMMARY,
    ONE_SUMMARY,
    SAVED_SUMMARY,
    UNSAVE_SUMMARY,
    apply_saved,
    fix_errors,
    saved_fixes,
    unsave,
)
from app.api.routes_problems import (
    CODE_Q,
    COLLECTION_Q,
    CURSOR_Q,
    KEY_Q,
    LIST_DESCRIPTION,
    STATUS_Q,
    TEXT_Q,
    SortParam,
)
from app.api.schemas.admin import (
    AuditPage,
    Overview,
    PauseView,
    ProjectCreate,
    ProjectCreated,
    ProjectView,
)
from app.api.schemas.errors import ErrorDetail, ErrorPage, Reconciliation
from app.api.schemas.fixes import (
    FixPage,
    FixRequest,
    FixResult,
    FixView,
    SavedFixApply,
    SavedFixResult,
)
from app.api.schemas.keys import KeyCreate, KeyCreated, KeyView
from app.api.schemas.problems import ProblemDetail, ProblemItem, ProblemPage, ProblemStatusChange
from app.store.models import Project
from app.store.projects import create_project

router = APIRouter(prefix="/admin", tags=["admin"])
ADMIN_ERRORS = (400, 401, 404, 503)
# Ids are 64-bit in the database; larger numbers are a 400, not a driver overflow.
MAX_BIGINT = 2**63 - 1


@router.get(
    "/errors",
    summary="Search rejected events across projects",
    response_model=ErrorPage,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_errors(
    session: SessionDep,
    project_id: str | None = Query(default=None),
    collection: str | None = Query(default=None),
    code: str | None = Query(default=None, description="Comma-separated codes."),
    status: str | None = Query(default=None, description="Comma-separated statuses."),
    stage: str | None = Query(default=None),
    since: str | None = Query(default=None),
    until: str | None = Query(default=None),
    problem_id: str | None = Query(default=None, description="Only the errors of this problem."),
    cursor: str | None = Query(default=None),
    limit: int = Query(default=50, ge=1, le=500),
    _actor: str = Depends(require_admin),
) -> Any:
    return search_errors(
        session,
        project_id=project_id,
        collection=collection,
        code=code,
        status=status,
        stage=stage,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
        problem_id=problem_id,
    )


@router.get(
    "/errors/{error_id}",
    summary="One rejected event with its payload (audited)",
    response_model=ErrorDetail,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_error(session: SessionDep, error_id: str, actor: str = Depends(require_admin)) -> Any:
    with session.begin():
        row = find_error(session, error_id, None)
        audit_payload_read(session, actor, row)
        return detail_view(row)


@router.get(
    "/problems",
    summary="Search problems across projects",
    description=LIST_DESCRIPTION + " `project_id` narrows to one project.",
    response_model=ProblemPage,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_problems(
    session: SessionDep,
    project_id: str | None = Query(default=None),
    status: str | None = STATUS_Q,
    code: str | None = CODE_Q,
    collection: str | None = COLLECTION_Q,
    key_id: str | None = KEY_Q,
    q: str | None = TEXT_Q,
    sort: SortParam = Query(default="last_seen"),
    cursor: str | None = CURSOR_Q,
    limit: int = Query(default=50, ge=1, le=500),
    _actor: str = Depends(require_admin),
) -> Any:
    return search_problems(
        session,
        project_id=project_id,
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
    "/problems/{problem_id}",
    summary="One problem of any project, with its hourly counts, keys and newest errors",
    response_model=ProblemDetail,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_problem(
    session: SessionDep, problem_id: str, _actor: str = Depends(require_admin)
) -> Any:
    return problem_detail(session, find_problem(session, problem_id, None))


@router.patch(
    "/problems/{problem_id}",
    summary="Resolve, ignore or reopen a problem of any project (audited)",
    response_model=ProblemItem,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_problem_set_status(
    session: SessionDep,
    problem_id: str,
    body: ProblemStatusChange,
    actor: str = Depends(require_admin),
) -> Any:
    with session.begin():
        problem = find_problem(session, problem_id, None, lock=True)
        return update_problem(session, problem, body, actor)


@router.post(
    "/projects/{project_id}/errors/fix",
    summary=FIX_SUMMARY + " (any project, audited)",
    description=FIX_DESCRIPTION,
    response_model=FixResult,
    responses=error_responses(*ADMIN_ERRORS, 429),
)
async def admin_errors_fix(
    project_id: str,
    body: FixRequest,
    settings: SettingsDep,
    sessions: SessionsDep,
    producer: ProducerDep,
    limiter: ReplayLimiterDep,
    actor: str = Depends(require_admin),
) -> Any:
    with sessions() as session:
        project_or_404(session, project_id)
    return await fix_errors(
        body,
        project_id=project_id,
        actor=actor,
        settings=settings,
        sessions=sessions,
        producer=producer,
        limiter=limiter,
    )


@router.get(
    "/fixes",
    summary=LIST_SUMMARY + ", across projects",
    description="`project_id` narrows to one project. " + FIXES_DESCRIPTION,
    response_model=FixPage,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_fixes(
    session: SessionDep,
    project_id: str | None = Query(default=None),
    problem_id: str | None = Query(default=None),
    saved: bool | None = Query(default=None),
    saved_fix_id: str | None = Query(default=None),
    cursor: str | None = Query(default=None),
    limit: int = Query(default=50, ge=1, le=500),
    _actor: str = Depends(require_admin),
) -> Any:
    return list_fixes(
        session,
        project_id=project_id,
        problem_id=problem_id,
        cursor=cursor,
        limit=limit,
        saved=saved,
        saved_fix_id=saved_fix_id,
    )


@router.get(
    "/fixes/{fix_id}",
    summary=ONE_SUMMARY + " (any project)",
    response_model=FixView,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_fix(session: SessionDep, fix_id: str, _actor: str = Depends(require_admin)) -> Any:
    return fix_view(find_fix(session, fix_id, None))


@router.post(
    "/fixes/{fix_id}/apply",
    summary=APPLY_SUMMARY + " (any project, audited)",
    description=APPLY_DESCRIPTION,
    response_model=SavedFixResult,
    responses=error_responses(*ADMIN_ERRORS, 409, 429),
)
async def admin_fix_apply(
    fix_id: str,
    body: SavedFixApply,
    settings: SettingsDep,
    sessions: SessionsDep,
    producer: ProducerDep,
    limiter: ReplayLimiterDep,
    actor: str = Depends(require_admin),
) -> Any:
    return await apply_saved(
        fix_id,
        body,
        project_id=None,
        actor=actor,
        settings=settings,
        sessions=sessions,
        producer=producer,
        limiter=limiter,
    )


@router.delete(
    "/fixes/{fix_id}",
    summary=UNSAVE_SUMMARY + " (any project, audited)",
    response_model=FixView,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_fix_unsave(session: SessionDep, fix_id: str, actor: str = Depends(require_admin)) -> Any:
    return unsave(session, fix_id, None, actor)


@router.get(
    "/problems/{problem_id}/fixes",
    summary=SAVED_SUMMARY + " (any project)",
    response_model=FixPage,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_problem_fixes(
    session: SessionDep,
    problem_id: str,
    cursor: str | None = Query(default=None),
    limit: int = Query(default=50, ge=1, le=500),
    _actor: str = Depends(require_admin),
) -> Any:
    return saved_fixes(session, problem_id, None, cursor, limit)


@router.post(
    "/projects",
    summary="Create a project with its master, write and read keys",
    description="The three secrets are in this response only.",
    status_code=201,
    response_model=ProjectCreated,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_create_project(
    session: SessionDep, body: ProjectCreate, actor: str = Depends(require_admin)
) -> Any:
    with session.begin():
        created = create_project(session, body.name)
        record_audit(
            session,
            actor,
            "project.create",
            project_id=created["project_id"],
            target=created["project_id"],
        )
        return created


@router.get(
    "/projects",
    summary="List projects",
    response_model=list[ProjectView],
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_projects(session: SessionDep, _actor: str = Depends(require_admin)) -> Any:
    projects = session.execute(select(Project).order_by(Project.created_at)).scalars()
    return [project_view(p) for p in projects]


@router.get(
    "/projects/{project_id}/overview",
    summary="A project at a glance: error rate, last error, paused streams",
    response_model=Overview,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_overview(
    session: SessionDep,
    project_id: str,
    hours: int = Query(default=24, ge=1, le=24 * 90),
    _actor: str = Depends(require_admin),
) -> Any:
    return project_overview(session, project_id, hours)


@router.get(
    "/projects/{project_id}/reconciliation",
    summary="A project's reconciliation (as its master key sees it)",
    response_model=Reconciliation,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_reconciliation(
    session: SessionDep,
    project_id: str,
    since: str | None = Query(default=None),
    until: str | None = Query(default=None),
    collection: str | None = Query(default=None),
    _actor: str = Depends(require_admin),
) -> Any:
    return reconcile(session, project_id, since, until, collection)


@router.get(
    "/projects/{project_id}/pauses",
    summary="Paused streams of a project (open ones, or all with include_resumed)",
    response_model=list[PauseView],
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_pauses(
    session: SessionDep,
    project_id: str,
    include_resumed: bool = Query(default=False),
    _actor: str = Depends(require_admin),
) -> Any:
    return list_pauses(session, project_id, include_resumed)


@router.post(
    "/projects/{project_id}/pauses/{pause_id}/resume",
    summary="Resume a paused stream",
    description="Sets resumed_at; the worker resumes the partition within seconds.",
    response_model=PauseView,
    responses=error_responses(*ADMIN_ERRORS, 409),
)
def admin_resume(
    session: SessionDep,
    project_id: str,
    pause_id: int = Path(ge=1, le=MAX_BIGINT),
    actor: str = Depends(require_admin),
) -> Any:
    with session.begin():
        return resume_pause(session, project_id, pause_id, actor)


@router.get(
    "/audit",
    summary="Audit log: who read which payload, replays, resumes, key changes",
    response_model=AuditPage,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_audit(
    session: SessionDep,
    project_id: str | None = Query(default=None),
    actor: str | None = Query(default=None),
    action: str | None = Query(default=None),
    before_id: int | None = Query(default=None, ge=1, le=MAX_BIGINT),
    limit: int = Query(default=100, ge=1, le=1000),
    _actor: str = Depends(require_admin),
) -> Any:
    return audit_page(
        session,
        project_id=project_id,
        actor=actor,
        action=action,
        before_id=before_id,
        limit=limit,
    )


@router.post(
    "/projects/{project_id}/keys",
    summary="Create a key of any kind (master, write, read, access)",
    status_code=201,
    response_model=KeyCreated,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_key_create(
    session: SessionDep, project_id: str, body: KeyCreate, actor: str = Depends(require_admin)
) -> Any:
    with session.begin():
        project_or_404(session, project_id)
        created = make_key(session, project_id, body)
        record_audit(session, actor, "key.create", project_id=project_id, target=created["key_id"])
        return created


@router.get(
    "/projects/{project_id}/keys",
    summary="List a project's keys (never their secrets)",
    response_model=list[KeyView],
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_key_list(
    session: SessionDep, project_id: str, _actor: str = Depends(require_admin)
) -> Any:
    project_or_404(session, project_id)
    return list_keys(session, project_id)


@router.delete(
    "/projects/{project_id}/keys/{key_id}",
    summary="Revoke a key",
    response_model=KeyView,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_key_revoke(
    session: SessionDep,
    project_id: str,
    key_id: str,
    producer: ProducerDep,
    tasks: BackgroundTasks,
    actor: str = Depends(require_admin),
) -> Any:
    with session.begin():
        view = revoke_key(session, project_id, key_id)
        record_audit(session, actor, "key.revoke", project_id=project_id, target=key_id)
    tell_workers_keys_changed(tasks, producer)
    return view
