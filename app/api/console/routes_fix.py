"""The fix editor's paths: the operations posted from a problem's page (its open errors) or an
error's page (that one error) are previewed, or applied, by the fix service of the JSON API's
POST /errors/fix (``routes_fixes.fix_errors``, with this person as the actor), and the
preview or result is rendered; "keep this fix" sends ``save`` with it. A problem's saved
fixes are previewed and applied again to its errors open now by the function of the JSON
API's POST /fixes/{id}/apply (``routes_fixes.apply_saved``), and un-saved by that of DELETE
/fixes/{id} (``routes_fixes.unsave``). Forms are CSRF-checked like every console form; they
may be larger than the others' (replace_payload carries a whole payload)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
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
    saved_fix_of,
)
from app.api.console.forms import read_form
from app.api.console.routes import REPLAY_PER_CLICK, CsrfRefused, UserDep
from app.api.console.security import CSRF_FIELD, tokens_match
from app.api.console.sessions import ConsoleUser
from app.api.console.templates import render
from app.api.deps import ProducerDep, ReplayLimiterDep, SessionsDep, SettingsDep
from app.api.problems import ApiError
from app.api.routes_fixes import apply_saved, fix_errors, unsave
from app.api.schemas.fixes import FixRequest, SavedFixApply
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


def _request(target: FixTarget, operations: Any, apply: bool, save: bool) -> FixRequest:
    if target.error_id is not None:
        return FixRequest(
            error_id=target.error_id, operations=operations, dry_run=not apply, limit=1
        )
    return FixRequest(
        filter=ReplayFilter(problem_id=target.problem_id, status="open"),
        operations=operations,
        dry_run=not apply,
        limit=FIX_PER_CLICK,
        save=save,
    )


def _saved_urls(target: FixTarget, fix_id: str) -> dict[str, str]:
    return {"fix_id": fix_id, "apply_url": f"{target.back_url}/fixes/{fix_id}/apply"}


async def _render(
    request: Request,
    user: ConsoleUser,
    target: FixTarget,
    run: Callable[[], Awaitable[tuple[Any, Any]]],
    *,
    apply: bool,
    text: str,
    save: bool,
    saved_fix: dict[str, str] | None = None,
) -> Response:
    """``run`` (the service, giving its result and the operations it ran) rendered as the
    preview page, its refusals as the editor shows them."""
    what = "Saved fix" if saved_fix else "Fix"
    context: dict[str, Any] = {
        "user": user,
        "csrf_token": user.csrf_token,
        "title": f"{what} applied" if apply else f"{what} preview",
        "project_id": target.project_id,
        "target": target,
        "result": None,
        "refused": None,
        "saved_fix": saved_fix,
    }
    status_code = 200
    headers: dict[str, str] = {}
    error = None
    try:
        result, operations = await run()
        context["result"] = result_view(result, operations, target)
        if saved_fix is None and result["dry_run"] and result["fix_id"]:
            # A saved preview: its Apply applies that saved fix, not a second copy of it.
            context["saved_fix"] = _saved_urls(target, result["fix_id"])
            save = False
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
        else:  # no Kafka, broker down, a fix no longer saved, a target the service refuses
            context["refused"] = exc.message
    if error is not None:
        context["title"] = "Fix: the operations need a change"
    context["fix"] = editor(target, text, error, save=save)
    response = render(request, "fix_preview.html", context, status_code)
    response.headers.update(headers)
    return response


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
    save = not target.single and fields.get("save") == "true"

    async def run() -> tuple[Any, Any]:
        operations = read_operations(text)
        result = await fix_errors(
            _request(target, operations, apply, save),
            project_id=target.project_id,
            actor=user.actor,
            settings=settings,
            sessions=sessions,
            producer=producer,
            limiter=limiter,
        )
        return result, operations

    return await _render(request, user, target, run, apply=apply, text=text, save=save)


def _saved_target(
    sessions: sessionmaker[Session],
    user: ConsoleUser,
    project_id: str,
    problem_id: str,
    fix_id: str,
) -> tuple[FixTarget, list[dict[str, Any]]]:
    target = _target(sessions, problem_target, user, project_id, problem_id)
    with sessions() as db:
        return target, saved_fix_of(db, target, fix_id)


async def _saved_fix(
    request: Request,
    user: ConsoleUser,
    project_id: str,
    problem_id: str,
    fix_id: str,
    *,
    apply: bool,
    settings: SettingsDep,
    sessions: SessionsDep,
    producer: ProducerDep,
    limiter: ReplayLimiterDep,
) -> Response:
    target, operations = await run_in_threadpool(
        _saved_target, sessions, user, project_id, problem_id, fix_id
    )

    async def run() -> tuple[Any, Any]:
        result = await apply_saved(
            fix_id,
            SavedFixApply(dry_run=not apply, limit=FIX_PER_CLICK),
            project_id=target.project_id,
            actor=user.actor,
            settings=settings,
            sessions=sessions,
            producer=producer,
            limiter=limiter,
        )
        return result, operations

    text = json.dumps(operations, ensure_ascii=False)
    return await _render(
        request,
        user,
        target,
        run,
        apply=apply,
        text=text,
        save=False,
        saved_fix=_saved_urls(target, fix_id),
    )


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


SAVED_PATH = "/projects/{project_id}/problems/{problem_id}/fixes/{fix_id}"


@router.post(f"{SAVED_PATH}/preview", response_class=HTMLResponse)
async def saved_fix_preview(
    request: Request,
    user: UserDep,
    _fields: FixFormDep,
    settings: SettingsDep,
    sessions: SessionsDep,
    producer: ProducerDep,
    limiter: ReplayLimiterDep,
    project_id: str,
    problem_id: str,
    fix_id: str,
) -> Response:
    """Preview a saved fix of this problem on its errors open now."""
    return await _saved_fix(
        request,
        user,
        project_id,
        problem_id,
        fix_id,
        apply=False,
        settings=settings,
        sessions=sessions,
        producer=producer,
        limiter=limiter,
    )


@router.post(f"{SAVED_PATH}/apply", response_class=HTMLResponse)
async def saved_fix_apply(
    request: Request,
    user: UserDep,
    _fields: FixFormDep,
    settings: SettingsDep,
    sessions: SessionsDep,
    producer: ProducerDep,
    limiter: ReplayLimiterDep,
    project_id: str,
    problem_id: str,
    fix_id: str,
) -> Response:
    """Apply a saved fix of this problem to its errors open now (a new fix naming it)."""
    return await _saved_fix(
        request,
        user,
        project_id,
        problem_id,
        fix_id,
        apply=True,
        settings=settings,
        sessions=sessions,
        producer=producer,
        limiter=limiter,
    )


def _unsave(
    sessions: sessionmaker[Session],
    user: ConsoleUser,
    project_id: str,
    problem_id: str,
    fix_id: str,
) -> str:
    target, _operations = _saved_target(sessions, user, project_id, problem_id, fix_id)
    with sessions() as db:
        unsave(db, fix_id, target.project_id, user.actor)
    return target.back_url


@router.post(f"{SAVED_PATH}/unsave")
async def saved_fix_unsave(
    user: UserDep,
    _fields: FixFormDep,
    sessions: SessionsDep,
    project_id: str,
    problem_id: str,
    fix_id: str,
) -> Response:
    """Stop keeping a fix on this problem (its record stays); back to the problem's page."""
    back = await run_in_threadpool(_unsave, sessions, user, project_id, problem_id, fix_id)
    return RedirectResponse(f"{back}#saved-fixes", status_code=303)
