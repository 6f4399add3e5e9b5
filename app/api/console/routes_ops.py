"""The paths of the streams, webhooks and audit pages (the operations side of the console).
Each parses, calls its page builder (which calls the JSON API's own functions) and renders;
sign-in and CSRF come from ``routes.UserDep`` and ``routes.FormDep`` like every console page."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.api.console.audit_pages import audit_console_page
from app.api.console.problem_pages import PROJECTS_LISTED
from app.api.console.routes import FormDep, UserDep
from app.api.console.sessions import ConsoleUser
from app.api.console.stream_pages import streams_page, streams_url
from app.api.console.templates import query, render
from app.api.console.webhook_pages import (
    redeliver_delivery,
    rotate_webhook_secret,
    send_test,
    webhook_page,
    webhook_url,
    webhooks_page,
    webhooks_url,
)
from app.api.deps import SessionDep, SessionsDep, SettingsDep
from app.api.pauses import resume_pause
from app.api.problems import ApiError
from app.store.models import Project

router = APIRouter(prefix="/console", include_in_schema=False)
MAX_BIGINT = 2**63 - 1
NOTICES = {
    "resumed": "The stream is resumed: the worker picks its partition up again within seconds.",
    "tested": "A webhook.test was sent; its first attempt is at the top of the delivery log.",
    "redelivered": "The delivery is queued again under the same webhook-id.",
}


def _project(db: Session, user: ConsoleUser, project_id: str) -> Project:
    """The project the URL names, if this person may see it; else 404 (another customer's
    project is as absent as one that does not exist)."""
    project = None
    if user.may_see(project_id) and "\x00" not in project_id:
        project = db.get(Project, project_id)
    if project is None:
        raise ApiError(404, "ResourceNotFoundError", "No such project.")
    return project


def _clean_id(value: str, what: str) -> str:
    if "\x00" in value or len(value) > 100:  # PostgreSQL text holds no NUL; ids are short
        raise ApiError(404, "ResourceNotFoundError", f"No such {what} in this project.")
    return value


def _page(
    request: Request, user: ConsoleUser, template: str, context: dict, status_code: int = 200
) -> HTMLResponse:
    notice = NOTICES.get(request.query_params.get("done", ""))
    return render(
        request,
        template,
        {"user": user, "csrf_token": user.csrf_token, "notice": notice, **context},
        status_code,
    )


def _projects(db: Session) -> list[dict[str, str]]:
    rows = db.execute(
        select(Project.id, Project.name).order_by(Project.name, Project.id).limit(PROJECTS_LISTED)
    )
    return [{"id": pid, "name": name} for pid, name in rows]


def _pick(request: Request, db: SessionDep, user: UserDep, what: str, template: str) -> Response:
    """``/console/streams`` or ``/console/webhooks``: a customer's own project's page; staff
    pick a project (``?project=``) or get the picker."""
    to = streams_url if what == "streams" else webhooks_url
    if not user.is_staff:
        return RedirectResponse(to(user.project_id), status_code=303)
    picked = request.query_params.get("project", "")
    if picked:
        rest = {k: v for k, v in request.query_params.items() if k != "project"}
        return RedirectResponse(to(picked) + query(rest), status_code=303)
    context = {"title": what.capitalize(), "project_id": None, "projects": _projects(db)}
    return _page(request, user, template, context)


# --- streams ----------------------------------------------------------------------------


@router.get("/streams", response_class=HTMLResponse)
def pick_streams(request: Request, db: SessionDep, user: UserDep) -> Response:
    return _pick(request, db, user, "streams", "streams.html")


@router.get("/projects/{project_id}/streams", response_class=HTMLResponse)
def streams(request: Request, db: SessionDep, user: UserDep, project_id: str) -> Response:
    project = _project(db, user, project_id)
    context = streams_page(db, project_id, dict(request.query_params))
    context["project_name"] = project.name
    context["projects"] = _projects(db) if user.is_staff else []
    return _page(request, user, "streams.html", context)


@router.post("/projects/{project_id}/streams/pauses/{pause_id}/resume")
def resume(
    db: SessionDep,
    user: UserDep,
    _fields: FormDep,
    project_id: str,
    pause_id: int = Path(ge=1, le=MAX_BIGINT),
) -> Response:
    """What ``POST /admin/projects/{p}/pauses/{id}/resume`` does (the same service: the
    pause, its audit entry and the dlq.resumed notification in one transaction); support
    staff only, as that route is."""
    with db.begin():
        _project(db, user, project_id)
        if not user.is_staff:
            raise ApiError(403, "ForbiddenError", "Only support staff resume a paused stream.")
        resume_pause(db, project_id, pause_id, user.actor)
    return RedirectResponse(f"{streams_url(project_id)}?done=resumed", status_code=303)


# --- webhooks ---------------------------------------------------------------------------


@router.get("/webhooks", response_class=HTMLResponse)
def pick_webhooks(request: Request, db: SessionDep, user: UserDep) -> Response:
    return _pick(request, db, user, "webhooks", "webhooks.html")


@router.get("/projects/{project_id}/webhooks", response_class=HTMLResponse)
def webhooks(request: Request, db: SessionDep, user: UserDep, project_id: str) -> Response:
    project = _project(db, user, project_id)
    context = webhooks_page(db, project_id)
    context["project_name"] = project.name
    context["projects"] = _projects(db) if user.is_staff else []
    return _page(request, user, "webhooks.html", context)


@router.get("/projects/{project_id}/webhooks/{webhook_id}", response_class=HTMLResponse)
def webhook(
    request: Request, db: SessionDep, user: UserDep, project_id: str, webhook_id: str
) -> Response:
    _project(db, user, project_id)
    context = webhook_page(
        db, project_id, _clean_id(webhook_id, "webhook"), dict(request.query_params)
    )
    return _page(request, user, "webhook.html", context)


@router.post("/projects/{project_id}/webhooks/{webhook_id}/test")
async def webhook_test(
    user: UserDep,
    _fields: FormDep,
    sessions: SessionsDep,
    settings: SettingsDep,
    project_id: str,
    webhook_id: str,
) -> Response:
    def check() -> None:
        with sessions() as db:
            _project(db, user, project_id)

    await run_in_threadpool(check)
    await send_test(sessions, settings, project_id, _clean_id(webhook_id, "webhook"), user.actor)
    return RedirectResponse(f"{webhook_url(project_id, webhook_id)}?done=tested", status_code=303)


@router.post(
    "/projects/{project_id}/webhooks/{webhook_id}/rotate-secret", response_class=HTMLResponse
)
def webhook_rotate(
    request: Request,
    db: SessionDep,
    user: UserDep,
    fields: FormDep,
    settings: SettingsDep,
    project_id: str,
    webhook_id: str,
) -> Response:
    """The new secret is in this answer only (no redirect to a page that would show it
    again); every console answer is ``Cache-Control: no-store``."""
    with db.begin():
        _project(db, user, project_id)
        secret = rotate_webhook_secret(
            db,
            settings,
            project_id,
            _clean_id(webhook_id, "webhook"),
            fields.get("previous_valid_seconds", "").strip(),
            user.actor,
        )
    context = webhook_page(db, project_id, webhook_id, {})
    context["new_secret"] = secret
    return _page(request, user, "webhook.html", context)


@router.post("/projects/{project_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
def webhook_redeliver(
    db: SessionDep,
    user: UserDep,
    _fields: FormDep,
    project_id: str,
    webhook_id: str,
    delivery_id: str,
) -> Response:
    with db.begin():
        _project(db, user, project_id)
        redeliver_delivery(
            db,
            project_id,
            _clean_id(webhook_id, "webhook"),
            _clean_id(delivery_id, "delivery"),
            user.actor,
        )
    return RedirectResponse(
        f"{webhook_url(project_id, webhook_id)}?done=redelivered", status_code=303
    )


# --- audit ------------------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
def audit(request: Request, db: SessionDep, user: UserDep) -> Response:
    if not user.is_staff:  # customers: as if there were no such page
        raise ApiError(404, "ResourceNotFoundError", "No such page.")
    context = audit_console_page(db, dict(request.query_params))
    context["projects"] = _projects(db)
    return _page(request, user, "audit.html", context)
