"""The fix editor's paths: the operations posted from a problem's page (its open errors) or an
error's page (that one error) are previewed, or applied, by the fix service of the JSON API's
POST /errors/fix (``routes_fixes.fix_errors``, with this person as the actor), and the
preview or result is rendered. Forms are CSRF-checked like every console form; they may be
larger than the others' (replace_payload carries a whole payload)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.api.console.fix_pages import (
    FixTarget,
    TextRefused,
    editor,
    error_target,
    operation_error,
    problem_target,
    read_operations,
    result_view,
)
from app.api.console.forms import read_form
from app.api.console.routes import REPLAY_PER_CLICK, CsrfRefused, UserDep
from app.api.console.security import CSRF_FIELD, tokens_match
from app.api.console.sessions import ConsoleUser
from app.api.console.templates import render
from app.api.deps import ProducerDep, ReplayLimiterDep, SessionsDep, SettingsDep
from app.api.problems import ApiError
from app.api.routes_fixes import fix_errors
from app.api.schemas.fixes import FixRequest
from app.api.schemas.replay import ReplayFilter

router = APIRouter(prefix="/console", include_in_schema=False)
# Room for a replace_payload of a 64 KiB payload, urlencoded (each quote becomes %5C%22).
FIX_FORM_BYTES = 512 * 1024
# Errors patched per click, preview or apply (as many as the replay button replays).
FIX_PER_CLICK = REPLAY_PER_CLICK


async def fix_form(request: Request, user: UserDep) -> dict[str, str]:
    """The posted fix form, once its CSRF token is this session's."""
    fields = await read_form(request, max_bytes=FIX_FORM_BYTES)
    if not tokens_match(fields.get(CSRF_FIELD), user.csrf_token):
        raise CsrfRefused()
    return fields


FixFormDep = Annotated[dict[str, str], Depends(fix_form)]


def _target(
    sessions: sessionmaker[Session],
    find: Callable[[Session, ConsoleUser, str, str], FixTarget],
    user: ConsoleUser,
    project_id: str,
    item_id: str,
) -> FixTarget:
    if not user.may_see(project_id):
        raise ApiError(404, "ResourceNotFoundError", "No such project.")
    with sessions() as db:
        return find(db, user, project_id, item_id)


def _request(target: FixTarget, operations: Any, apply: bool) -> FixRequest:
    if target.error_id is not None:
        return FixRequest(
            error_id=target.error_id, operations=operations, dry_run=not apply, limit=1
        )
    return FixRequest(
        filter=ReplayFilter(problem_id=target.problem_id, status="open"),
        operations=operations,
        dry_run=not apply,
        limit=FIX_PER_CLICK,
    )


async def _fix(
    request: Request,
    user: ConsoleUser,
    fields: dict[str, str],
    target: FixTarget,
    *,
    settings: SettingsDep,
    sessions: SessionsDep,
    producer: ProducerDep,
    limiter: ReplayLimiterDep,
) -> Response:
    text = fields.get("operations", "")
    apply = fields.get("action") == "apply"
    context: dict[str, Any] = {
        "user": user,
        "csrf_token": user.csrf_token,
        "title": "Fix applied" if apply else "Fix preview",
        "project_id": target.project_id,
        "target": target,
        "result": None,
        "refused": None,
    }
    status_code = 200
    headers: dict[str, str] = {}
    error = None
    try:
        operations = read_operations(text)
        result = await fix_errors(
            _request(target, operations, apply),
            project_id=target.project_id,
            actor=user.actor,
            settings=settings,
            sessions=sessions,
            producer=producer,
            limiter=limiter,
        )
        context["result"] = result_view(result, operations, target)
    except TextRefused as exc:
        error, status_code = {"index": None, "reason": exc.message}, 400
    except ApiError as exc:
        if exc.status_code == 404:
            raise
        status_code = exc.status_code
        if exc.error_code == "InvalidFixError":
            error = operation_error(exc.detail)
        elif exc.status_code == 429:
            retry = (exc.headers or {}).get("Retry-After", "1")
            headers["Retry-After"] = retry
            context["refused"] = (
                f"The replay rate limit is reached for this project: nothing was applied. "
                f"Try again in {retry} s."
            )
            context["retry_after"] = retry
        else:  # no Kafka configured, broker down, a target the service refuses
            context["refused"] = exc.message
    if error is not None:
        context["title"] = "Fix: the operations need a change"
    context["fix"] = editor(target, text, error)
    response = render(request, "fix_preview.html", context, status_code)
    response.headers.update(headers)
    return response


@router.post("/projects/{project_id}/problems/{problem_id}/fix", response_class=HTMLResponse)
async def problem_fix(
    request: Request,
    user: UserDep,
    fields: FixFormDep,
    settings: SettingsDep,
    sessions: SessionsDep,
    producer: ProducerDep,
    limiter: ReplayLimiterDep,
    project_id: str,
    problem_id: str,
) -> Response:
    """Preview (or, with action=apply, apply) a fix on the problem's open errors."""
    target = await run_in_threadpool(
        _target, sessions, problem_target, user, project_id, problem_id
    )
    return await _fix(
        request,
        user,
        fields,
        target,
        settings=settings,
        sessions=sessions,
        producer=producer,
        limiter=limiter,
    )


@router.post("/projects/{project_id}/errors/{error_id}/fix", response_class=HTMLResponse)
async def error_fix(
    request: Request,
    user: UserDep,
    fields: FixFormDep,
    settings: SettingsDep,
    sessions: SessionsDep,
    producer: ProducerDep,
    limiter: ReplayLimiterDep,
    project_id: str,
    error_id: str,
) -> Response:
    """Preview (or, with action=apply, apply) a fix on this one error."""
    target = await run_in_threadpool(_target, sessions, error_target, user, project_id, error_id)
    return await _fix(
        request,
        user,
        fields,
        target,
        settings=settings,
        sessions=sessions,
        producer=producer,
        limiter=limiter,
    )
