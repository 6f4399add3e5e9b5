"""Support staff (`Authorization: Bearer <INBOUND_ADMIN_TOKEN>`): errors across projects,
project overviews, the payload audit log, paused streams, projects and keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from app.api.auth import require_admin
from app.api.error_views import (
    ErrorDetail,
    ErrorPage,
    ErrorSummaryItem,
    audit_payload_read,
    detail_view,
    error_filters,
    list_errors,
    parse_time,
    summary_view,
)
from app.api.key_admin import KeyCreate, KeyCreated, KeyView, list_keys, make_key, revoke_key
from app.api.problems import ApiError, error_responses
from app.api.routes_errors import Reconciliation, reconcile
from app.api.timeframes import iso
from app.store.models import (
    AuditEntry,
    IngestCounter,
    IngestError,
    Notification,
    Project,
    StreamPause,
)
from app.store.projects import create_project
from app.webhooks.events import DLQ_RESUMED

router = APIRouter(prefix="/admin", tags=["admin"])
ADMIN_ERRORS = (400, 401, 404, 503)
# Ids are 64-bit in the database; larger numbers are a 400, not a driver overflow.
MAX_BIGINT = 2**63 - 1


def _iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    return iso(at if at.tzinfo else at.replace(tzinfo=UTC))


def _project_or_404(session: Any, project_id: str) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise ApiError(404, "ResourceNotFoundError", "No such project.")
    return project


@router.get(
    "/errors",
    summary="Search rejected events across projects",
    response_model=ErrorPage,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_errors(
    request: Request,
    project_id: str | None = Query(default=None),
    collection: str | None = Query(default=None),
    code: str | None = Query(default=None, description="Comma-separated codes."),
    status: str | None = Query(default=None, description="Comma-separated statuses."),
    stage: str | None = Query(default=None),
    since: str | None = Query(default=None),
    until: str | None = Query(default=None),
    cursor: str | None = Query(default=None),
    limit: int = Query(default=50, ge=1, le=500),
    _actor: str = Depends(require_admin),
) -> Any:
    where = error_filters(
        project_id=project_id,
        collection=collection,
        code=code,
        status=status,
        stage=stage,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
    )
    with request.app.state.session_factory() as session:
        return list_errors(session, where, cursor=cursor, limit=limit)


@router.get(
    "/errors/{error_id}",
    summary="One rejected event with its payload (audited)",
    response_model=ErrorDetail,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_error(request: Request, error_id: str, actor: str = Depends(require_admin)) -> Any:
    with request.app.state.session_factory() as session, session.begin():
        row = session.get(IngestError, error_id)
        if row is None:
            raise ApiError(404, "ResourceNotFoundError", "No such error.")
        audit_payload_read(session, actor, row)
        return detail_view(row)


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a 400, never ignored

    name: str = Field(min_length=1, max_length=200, examples=["shop"])


class ProjectCreated(BaseModel):
    project_id: str
    name: str
    master_key: str
    write_key: str
    read_key: str


class ProjectView(BaseModel):
    project_id: str
    name: str
    is_active: bool
    created_at: str


@router.post(
    "/projects",
    summary="Create a project with its master, write and read keys",
    description="The three secrets are in this response only.",
    status_code=201,
    response_model=ProjectCreated,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_create_project(
    request: Request, body: ProjectCreate, actor: str = Depends(require_admin)
) -> Any:
    with request.app.state.session_factory() as session, session.begin():
        created = create_project(session, body.name)
        session.add(
            AuditEntry(
                at=datetime.now(UTC),
                actor=actor,
                action="project.create",
                project_id=created["project_id"],
                target=created["project_id"],
            )
        )
        return created


@router.get(
    "/projects",
    summary="List projects",
    response_model=list[ProjectView],
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_projects(request: Request, _actor: str = Depends(require_admin)) -> Any:
    with request.app.state.session_factory() as session:
        projects = session.execute(select(Project).order_by(Project.created_at)).scalars()
        return [
            {
                "project_id": p.id,
                "name": p.name,
                "is_active": p.is_active,
                "created_at": _iso(p.created_at),
            }
            for p in projects
        ]


class PauseView(BaseModel):
    pause_id: int
    collection: str
    topic: str
    partition: int
    reason: str
    paused_at: str
    resumed_at: str | None
    resumed_by: str | None


def _pause_view(p: StreamPause) -> dict[str, Any]:
    return {
        "pause_id": p.id,
        "collection": p.collection,
        "topic": p.topic,
        "partition": p.partition,
        "reason": p.reason,
        "paused_at": _iso(p.paused_at),
        "resumed_at": _iso(p.resumed_at),
        "resumed_by": p.resumed_by,
    }


class Overview(BaseModel):
    project: ProjectView
    window_hours: int
    received: int
    rejected: int
    error_rate: float = Field(description="rejected / received over the window (0 when none).")
    errors_by_code: dict[str, int]
    open_errors: int
    last_error: ErrorSummaryItem | None
    paused_streams: list[PauseView]


@router.get(
    "/projects/{project_id}/overview",
    summary="A project at a glance: error rate, last error, paused streams",
    response_model=Overview,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_overview(
    request: Request,
    project_id: str,
    hours: int = Query(default=24, ge=1, le=24 * 90),
    _actor: str = Depends(require_admin),
) -> Any:
    since = datetime.now(UTC) - timedelta(hours=hours)
    with request.app.state.session_factory() as session:
        project = _project_or_404(session, project_id)
        received, rejected = session.execute(
            select(
                func.coalesce(func.sum(IngestCounter.received), 0),
                func.coalesce(func.sum(IngestCounter.rejected), 0),
            ).where(
                IngestCounter.project_id == project_id,
                IngestCounter.bucket >= since.replace(minute=0, second=0, microsecond=0),
            )
        ).one()
        by_code = dict(
            session.execute(
                select(IngestError.code, func.count())
                .where(IngestError.project_id == project_id, IngestError.created_at >= since)
                .group_by(IngestError.code)
            ).all()
        )
        open_errors = session.scalar(
            select(func.count())
            .select_from(IngestError)
            .where(IngestError.project_id == project_id, IngestError.status == "open")
        )
        last = session.scalar(
            select(IngestError)
            .where(IngestError.project_id == project_id)
            .order_by(IngestError.created_at.desc(), IngestError.id.desc())
            .limit(1)
        )
        pauses = session.execute(
            select(StreamPause)
            .where(StreamPause.project_id == project_id, StreamPause.resumed_at.is_(None))
            .order_by(StreamPause.paused_at)
        ).scalars()
        return {
            "project": {
                "project_id": project.id,
                "name": project.name,
                "is_active": project.is_active,
                "created_at": _iso(project.created_at),
            },
            "window_hours": hours,
            "received": int(received),
            "rejected": int(rejected),
            "error_rate": (int(rejected) / int(received)) if received else 0.0,
            "errors_by_code": {k: int(v) for k, v in by_code.items()},
            "open_errors": int(open_errors or 0),
            "last_error": summary_view(last) if last else None,
            "paused_streams": [_pause_view(p) for p in pauses],
        }


@router.get(
    "/projects/{project_id}/reconciliation",
    summary="A project's reconciliation (as its master key sees it)",
    response_model=Reconciliation,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_reconciliation(
    request: Request,
    project_id: str,
    since: str | None = Query(default=None),
    until: str | None = Query(default=None),
    collection: str | None = Query(default=None),
    _actor: str = Depends(require_admin),
) -> Any:
    return reconcile(request, project_id, since, until, collection)


@router.get(
    "/projects/{project_id}/pauses",
    summary="Paused streams of a project (open ones, or all with include_resumed)",
    response_model=list[PauseView],
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_pauses(
    request: Request,
    project_id: str,
    include_resumed: bool = Query(default=False),
    _actor: str = Depends(require_admin),
) -> Any:
    where = [StreamPause.project_id == project_id]
    if not include_resumed:
        where.append(StreamPause.resumed_at.is_(None))
    with request.app.state.session_factory() as session:
        rows = session.execute(select(StreamPause).where(*where).order_by(StreamPause.id)).scalars()
        return [_pause_view(p) for p in rows]


@router.post(
    "/projects/{project_id}/pauses/{pause_id}/resume",
    summary="Resume a paused stream",
    description="Sets resumed_at; the worker resumes the partition within seconds.",
    response_model=PauseView,
    responses=error_responses(*ADMIN_ERRORS, 409),
)
def admin_resume(
    request: Request,
    project_id: str,
    pause_id: int = Path(ge=1, le=MAX_BIGINT),
    actor: str = Depends(require_admin),
) -> Any:
    with request.app.state.session_factory() as session, session.begin():
        pause = session.scalar(
            select(StreamPause).where(
                StreamPause.id == pause_id, StreamPause.project_id == project_id
            )
        )
        if pause is None:
            raise ApiError(404, "ResourceNotFoundError", "No such pause in this project.")
        if pause.resumed_at is not None:
            raise ApiError(409, "ConflictError", "This stream was already resumed.")
        pause.resumed_at = datetime.now(UTC)
        pause.resumed_by = actor
        session.add(
            AuditEntry(
                at=pause.resumed_at,
                actor=actor,
                action="stream.resume",
                project_id=project_id,
                target=f"{pause.topic}/{pause.partition}",
            )
        )
        # Webhooks get dlq.resumed, as for `inbound dlq resume` (same payload shape).
        session.add(
            Notification(
                project_id=project_id,
                type=DLQ_RESUMED,
                created_at=pause.resumed_at,
                payload={
                    "collection": pause.collection,
                    "topic": pause.collection,
                    "partitions": [pause.partition],
                    "resumed_by": actor,
                },
            )
        )
        session.flush()
        return _pause_view(pause)


class AuditView(BaseModel):
    id: int
    at: str
    actor: str
    action: str = Field(examples=["error.payload.read"])
    project_id: str | None
    target: str | None


class AuditPage(BaseModel):
    entries: list[AuditView]
    next_cursor: int | None = Field(description="Pass as `before_id` for older entries.")


@router.get(
    "/audit",
    summary="Audit log: who read which payload, replays, resumes, key changes",
    response_model=AuditPage,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_audit(
    request: Request,
    project_id: str | None = Query(default=None),
    actor: str | None = Query(default=None),
    action: str | None = Query(default=None),
    before_id: int | None = Query(default=None, ge=1, le=MAX_BIGINT),
    limit: int = Query(default=100, ge=1, le=1000),
    _actor: str = Depends(require_admin),
) -> Any:
    where = []
    if project_id:
        where.append(AuditEntry.project_id == project_id)
    if actor:
        where.append(AuditEntry.actor == actor)
    if action:
        where.append(AuditEntry.action == action)
    if before_id:
        where.append(AuditEntry.id < before_id)
    with request.app.state.session_factory() as session:
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
                "at": _iso(r.at),
                "actor": r.actor,
                "action": r.action,
                "project_id": r.project_id,
                "target": r.target,
            }
            for r in rows
        ],
        "next_cursor": rows[-1].id if more and rows else None,
    }


@router.post(
    "/projects/{project_id}/keys",
    summary="Create a key of any kind (master, write, read, access)",
    status_code=201,
    response_model=KeyCreated,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_key_create(
    request: Request, project_id: str, body: KeyCreate, actor: str = Depends(require_admin)
) -> Any:
    with request.app.state.session_factory() as session, session.begin():
        _project_or_404(session, project_id)
        created = make_key(session, project_id, body)
        session.add(
            AuditEntry(
                at=datetime.now(UTC),
                actor=actor,
                action="key.create",
                project_id=project_id,
                target=created["key_id"],
            )
        )
        return created


@router.get(
    "/projects/{project_id}/keys",
    summary="List a project's keys (never their secrets)",
    response_model=list[KeyView],
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_key_list(request: Request, project_id: str, _actor: str = Depends(require_admin)) -> Any:
    with request.app.state.session_factory() as session:
        _project_or_404(session, project_id)
        return list_keys(session, project_id)


@router.delete(
    "/projects/{project_id}/keys/{key_id}",
    summary="Revoke a key",
    response_model=KeyView,
    responses=error_responses(*ADMIN_ERRORS),
)
def admin_key_revoke(
    request: Request, project_id: str, key_id: str, actor: str = Depends(require_admin)
) -> Any:
    with request.app.state.session_factory() as session, session.begin():
        view = revoke_key(session, project_id, key_id)
        session.add(
            AuditEntry(
                at=datetime.now(UTC),
                actor=actor,
                action="key.revoke",
                project_id=project_id,
                target=key_id,
            )
        )
        return view
