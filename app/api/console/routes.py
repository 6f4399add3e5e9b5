"""The console's paths. Each parses, calls the page builders (which call the JSON API's view
functions) and renders; sign-in state comes from ``UserDep``, posted forms from ``FormDep``
(CSRF checked)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from app.api.audit import record_audit
from app.api.console.error_page import error_page
from app.api.console.fix_pages import editor, error_target, problem_target
from app.api.console.forms import read_form
from app.api.console.problem_pages import problem_page, problem_url, problems_page, problems_url
from app.api.console.security import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    clear_cookie,
    new_login_token,
    set_cookie,
    tokens_match,
)
from app.api.console.sessions import (
    CUSTOMER,
    STAFF,
    ConsoleUser,
    close_session,
    customer_key,
    load_session,
    open_session,
    purge_idle,
    staff_actor,
    staff_token_ok,
)
from app.api.console.templates import render
from app.api.deps import ProducerDep, ReplayLimiterDep, SessionDep, SessionsDep, SettingsDep
from app.api.problem_views import find_problem, update_problem
from app.api.problems import ApiError
from app.api.replay_service import RateLimited, replay_errors
from app.api.schemas.problems import ProblemStatusChange
from app.api.schemas.replay import ReplayFilter, ReplayRequest

router = APIRouter(prefix="/console", include_in_schema=False)
# Replayed per confirm click at most (the replay API's own per-call maximum).
REPLAY_PER_CLICK = 10000
NOTICES = {
    "resolved": "The problem is resolved; a new error will regress it.",
    "ignored": "The problem is ignored.",
    "open": "The problem is open again.",
    "signed_out": "You are signed out.",
    "expired": "Your session has ended; sign in again.",
}


class SignInRequired(Exception):
    """No (live) session: the handler redirects to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRefused(Exception):
    """A state-changing form without this session's CSRF token: the handler answers 403."""


def console_user(request: Request, sessions: SessionsDep, settings: SettingsDep) -> ConsoleUser:
    """The signed-in person, from the session cookie; SignInRequired without one."""
    token = request.cookies.get(SESSION_COOKIE)
    with sessions() as db:
        user = load_session(
            db,
            token,
            idle=timedelta(minutes=settings.console_idle_minutes),
            admin_token=settings.admin_token,
        )
    if user is None:
        raise SignInRequired(request.url.path if request.method == "GET" else "")
    request.state.console_user = user
    return user


UserDep = Annotated[ConsoleUser, Depends(console_user)]


async def posted_form(request: Request, user: UserDep) -> dict[str, str]:
    """The posted fields, once the form's CSRF token is this session's."""
    fields = await read_form(request)
    if not tokens_match(fields.get(CSRF_FIELD), user.csrf_token):
        raise CsrfRefused()
    return fields


FormDep = Annotated[dict[str, str], Depends(posted_form)]


def _see(user: ConsoleUser, project_id: str) -> None:
    """A project not the customer's own is as absent as one that does not exist."""
    if not user.may_see(project_id):
        raise ApiError(404, "ResourceNotFoundError", "No such project.")


def _page(request: Request, user: ConsoleUser, template: str, context: dict) -> HTMLResponse:
    notice = NOTICES.get(request.query_params.get("done", ""))
    return render(
        request,
        template,
        {"user": user, "csrf_token": user.csrf_token, "notice": notice, **context},
    )


def safe_next(path: str | None) -> str:
    """Where to go after sign-in: a console path only (no open redirect)."""
    if (
        path
        and path.startswith("/console/")
        and not path.startswith(("/console/login", "/console/logout"))
        and "//" not in path
        and "\\" not in path
        and path.isprintable()
        and len(path) <= 500
    ):
        return path
    return "/console"


# --- sign-in and sign-out ---------------------------------------------------------------


def _login_page(
    request: Request,
    settings: SettingsDep,
    *,
    message: str | None = None,
    status_code: int = 200,
    project_id: str = "",
    next_path: str = "",
) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_token()
    notice = NOTICES.get(request.query_params.get("done", ""))
    response = render(
        request,
        "login.html",
        {
            "title": "Sign in",
            "csrf_token": token,
            "message": message,
            "notice": notice,
            "project_id": project_id,
            "next": safe_next(next_path or request.query_params.get("next")),
            "staff_enabled": bool(settings.admin_token),
        },
        status_code,
    )
    set_cookie(response, request, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, settings: SettingsDep) -> HTMLResponse:
    return _login_page(request, settings)


def _sign_in(
    sessions: SessionsDep, settings: SettingsDep, fields: dict[str, str]
) -> tuple[str, ConsoleUser] | None:
    idle = timedelta(minutes=settings.console_idle_minutes)
    with sessions() as db, db.begin():
        if fields.get("as") == STAFF:
            if not staff_token_ok(settings.admin_token, fields.get("admin_token", "")):
                return None
            opened = open_session(
                db,
                kind=STAFF,
                actor=staff_actor(fields.get("name", "")),
                admin_token=settings.admin_token,
            )
        else:
            project_id = fields.get("project_id", "").strip()
            key = customer_key(db, project_id, fields.get("master_key", "").strip())
            if key is None:
                return None
            opened = open_session(
                db, kind=CUSTOMER, actor=f"key:{key.id}", project_id=project_id, key_id=key.id
            )
        purge_idle(db, idle)
        record_audit(
            db,
            opened[1].actor,
            "console.sign_in",
            project_id=opened[1].project_id,
            target=opened[1].kind,
        )
        return opened


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, settings: SettingsDep, sessions: SessionsDep) -> Response:
    fields = await read_form(request)
    if not tokens_match(fields.get(CSRF_FIELD), request.cookies.get(LOGIN_CSRF_COOKIE)):
        raise CsrfRefused()
    limiter = request.app.state.console_login_failures
    address = request.client.host if request.client else "unknown"
    staff = fields.get("as") == STAFF
    project_id = "" if staff else fields.get("project_id", "").strip()[:64]
    if limiter.blocked(address):
        return _login_page(
            request,
            settings,
            message="Too many failed sign-ins from your address: wait a minute, then try again.",
            status_code=429,
            project_id=project_id,
            next_path=fields.get("next", ""),
        )
    limiter.begin(address)
    opened = None
    try:
        opened = await run_in_threadpool(_sign_in, sessions, settings, fields)
    finally:
        limiter.finish(address, failed=opened is None)
    if opened is None:
        wrong = (
            "That admin token is not the right one."
            if staff
            else "That project id and master key do not match an active project's master key."
        )
        return _login_page(
            request,
            settings,
            message=wrong,
            status_code=401,
            project_id=project_id,
            next_path=fields.get("next", ""),
        )
    token, _user = opened
    response = RedirectResponse(safe_next(fields.get("next")), status_code=303)
    set_cookie(response, request, SESSION_COOKIE, token)
    clear_cookie(response, request, LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, sessions: SessionsDep, _fields: FormDep) -> Response:
    with sessions() as db, db.begin():
        close_session(db, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/console/login?done=signed_out", status_code=303)
    clear_cookie(response, request, SESSION_COOKIE)
    return response


# --- problems ---------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def home(user: UserDep) -> Response:
    target = "/console/problems" if user.is_staff else problems_url(user.project_id)
    return RedirectResponse(target, status_code=303)


@router.get("/problems", response_class=HTMLResponse)
def all_problems(request: Request, db: SessionDep, user: UserDep) -> Response:
    """Support staff: every project's problems (or one project's, picked)."""
    if not user.is_staff:
        return RedirectResponse(problems_url(user.project_id), status_code=303)
    picked = request.query_params.get("project", "")
    if picked:
        rest = {k: v for k, v in request.query_params.items() if k != "project"}
        from app.api.console.templates import query

        return RedirectResponse(problems_url(picked) + query(rest), status_code=303)
    context = problems_page(db, user, None, dict(request.query_params))
    return _page(request, user, "problems.html", context)


@router.get("/projects/{project_id}/problems", response_class=HTMLResponse)
def project_problems(request: Request, db: SessionDep, user: UserDep, project_id: str) -> Response:
    _see(user, project_id)
    context = problems_page(db, user, project_id, dict(request.query_params))
    return _page(request, user, "problems.html", context)


@router.get("/projects/{project_id}/problems/{problem_id}", response_class=HTMLResponse)
def problem(
    request: Request,
    db: SessionDep,
    user: UserDep,
    settings: SettingsDep,
    limiter: ReplayLimiterDep,
    project_id: str,
    problem_id: str,
) -> Response:
    _see(user, project_id)
    context = problem_page(db, user, project_id, problem_id)
    context["replay"] = _replay_terms(settings, limiter, project_id)
    context["fix"] = editor(problem_target(db, user, project_id, problem_id))
    return _page(request, user, "problem.html", context)


def _replay_terms(settings: SettingsDep, limiter: ReplayLimiterDep, project_id: str) -> dict:
    return {
        "rate": settings.replay_rate_per_second,
        "burst": settings.replay_burst,
        "available": int(limiter.bucket(project_id).available()),
        "cap": settings.replay_cap,
    }


@router.post("/projects/{project_id}/problems/{problem_id}/status")
def problem_status(
    db: SessionDep, user: UserDep, fields: FormDep, project_id: str, problem_id: str
) -> Response:
    _see(user, project_id)
    status = fields.get("status", "")
    change = {"status": status}
    if status == "ignored":
        until = fields.get("ignore_until", "").strip()
        count = fields.get("ignore_count", "").strip()
        if until:
            # <input type=datetime-local> sends no zone: the page says the time is UTC.
            change["ignore_until"] = until if until.endswith("Z") else f"{until}Z"
        if count:
            change["ignore_count"] = count
    try:
        body = ProblemStatusChange.model_validate(change)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise ApiError(400, "InvalidParameterError", f"{where}: {first['msg']}") from exc
    with db.begin():
        problem_row = find_problem(db, problem_id, user.scope(project_id), lock=True)
        if problem_row.project_id != project_id:
            raise ApiError(404, "ResourceNotFoundError", "No such problem in this project.")
        update_problem(db, problem_row, body, user.actor)
    return RedirectResponse(
        f"{problem_url(project_id, problem_id)}?done={body.status}", status_code=303
    )


@router.post("/projects/{project_id}/problems/{problem_id}/replay", response_class=HTMLResponse)
async def problem_replay(
    request: Request,
    user: UserDep,
    fields: FormDep,
    settings: SettingsDep,
    sessions: SessionsDep,
    producer: ProducerDep,
    limiter: ReplayLimiterDep,
    project_id: str,
    problem_id: str,
) -> Response:
    """The problem's open errors replayed: a dry run first (how many, at what rate), then,
    from its confirm button, the replay itself through the replay API's service."""
    _see(user, project_id)
    confirm = fields.get("confirm") == "1"

    def _context() -> dict:
        with sessions() as db:
            page = problem_page(db, user, project_id, problem_id)
            page["fix"] = editor(problem_target(db, user, project_id, problem_id))
            return page

    context = await run_in_threadpool(_context)
    real_project = context["problem"]["project_id"]
    body = ReplayRequest(
        filter=ReplayFilter(problem_id=problem_id, status="open"),
        dry_run=not confirm,
        limit=REPLAY_PER_CLICK,
    )
    result: dict | None = None
    refused: str | None = None
    try:
        result = await replay_errors(
            body,
            project_id=real_project,
            actor=user.actor,
            sessions=sessions,
            producer=producer,
            bucket=limiter.bucket(real_project),
            cap=settings.replay_cap,
        )
    except RateLimited as exc:
        refused = (
            f"The replay rate limit is reached for this project; try again in {exc.retry_after} s."
        )
    except ApiError as exc:  # no Kafka, broker down
        refused = exc.detail["message"]
    if confirm and result is not None:
        context = await run_in_threadpool(_context)  # statuses moved to replayed
    context["replay"] = _replay_terms(settings, limiter, real_project)
    context["replay_result"] = result
    context["replay_refused"] = refused
    return _page(request, user, "problem.html", context)


# --- errors -----------------------------------------------------------------------------


@router.get("/projects/{project_id}/errors/{error_id}", response_class=HTMLResponse)
def error(
    request: Request,
    db: SessionDep,
    user: UserDep,
    settings: SettingsDep,
    project_id: str,
    error_id: str,
) -> Response:
    _see(user, project_id)
    context = error_page(db, settings, user, project_id, error_id)
    context["fix"] = editor(error_target(db, user, project_id, error_id))
    return _page(request, user, "error.html", context)
