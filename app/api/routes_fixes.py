"""Fix and replay (master key): preview a fix on rejected events, apply it, the fixes
recorded so far, and saved fixes (kept on a problem, applied again on request). The
support-staff variants in routes_admin call the same functions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Depends, Query
from fastapi.routing import APIRouter
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.api.auth import MASTER_KEY, Caller
from app.api.deps import ProducerDep, ReplayLimiterDep, SessionDep, SessionsDep, SettingsDep
from app.api.fixes.operations import OperationError
from app.api.fixes.service import CannotSave, NoSuchProblem, apply_saved_fix, run_fix, unsave_fix
from app.api.fixes.views import SavedFix, find_fix, find_saved_fix, fix_view, list_fixes
from app.api.problem_views import find_problem
from app.api.problems import KEY_ERRORS, ApiError, error_responses
from app.api.producer import KafkaProducerHolder
from app.api.replay_limit import ReplayLimiter
from app.api.replay_service import NoSuchError, RateLimited
from app.api.schemas.fixes import (
    FixPage,
    FixRequest,
    FixResult,
    FixView,
    SavedFixApply,
    SavedFixResult,
)
from app.settings import Settings

router = APIRouter(tags=["fixes"])
FIXES_PATH = "/3.0/projects/{project_id}/fixes"

FIX_SUMMARY = "Preview a fix on rejected events, or apply it and replay them"
FIX_DESCRIPTION = (
    "Patches each matching error's stored payload with `operations` and runs it through the "
    "worker's own pipeline (validation, keen object, the original key's access and autofill, "
    "add-ons) without storing anything: how many would now be accepted, still be rejected (by "
    "code) or could not be patched (by operation), with samples. With `dry_run: false` the fix "
    "is recorded (`fix_id`) and the would-be-accepted events are replayed through the replay "
    "path (rate limited, capped, keeping the original keen.id, header `inbound.fix.id`); the "
    "others are only reported. A bad operation is a 400 `InvalidFixError` with its `index` "
    "and `reason`. With `save: true` the fix is also kept on its problem (applied or only "
    "previewed) to apply again later with `POST .../fixes/{fix_id}/apply`."
)
LIST_SUMMARY = "Fixes applied or saved, newest first"
FIXES_DESCRIPTION = (
    "`problem_id` narrows to the fixes of one problem, `saved` to the saved fixes (true) or "
    "the others (false), `saved_fix_id` to the applications of one saved fix. Page with "
    "`cursor`."
)
ONE_SUMMARY = "One fix: operations, target, who, when, counts, saved or not"
SAVED_SUMMARY = "A problem's saved fixes, newest first"
APPLY_SUMMARY = "Apply a saved fix again to its problem's errors open now (preview first)"
APPLY_DESCRIPTION = (
    "Runs the saved fix's operations on the errors of its problem that are open now (those "
    "that arrived after it was saved, and any it left): with `dry_run` (the default) a "
    "preview that stores nothing; with `dry_run: false` a new applied fix with its own "
    "`fix_id`, naming the saved one (`saved_fix_id`). Nothing is ever applied without this "
    "call. 409 `FixNotSavedError` for a fix that is not (or no longer) saved."
)
UNSAVE_SUMMARY = "Stop keeping a fix on its problem (its record stays)"


@contextmanager
def _fix_answers() -> Iterator[None]:
    """The fix service's errors mapped to answers (shared by every fix route)."""
    try:
        yield
    except OperationError as exc:
        where = f"operations[{exc.index}]: " if exc.index >= 0 else ""
        raise ApiError(
            400,
            "InvalidFixError",
            f"{where}{exc.reason}",
            extra={"index": exc.index, "reason": exc.reason},
        ) from exc
    except CannotSave as exc:
        raise ApiError(400, "InvalidParameterError", str(exc)) from exc
    except NoSuchError as exc:
        raise ApiError(404, "ResourceNotFoundError", "No such error in this project.") from exc
    except NoSuchProblem as exc:
        raise ApiError(404, "ResourceNotFoundError", "No such problem in this project.") from exc
    except RateLimited as exc:
        raise ApiError(
            429,
            "RateLimitedError",
            "Replay rate limit reached for this project; retry later.",
            headers={"Retry-After": str(exc.retry_after)},
        ) from exc


async def fix_errors(
    body: FixRequest,
    *,
    project_id: str,
    actor: str,
    settings: Settings,
    sessions: sessionmaker[Session],
    producer: KafkaProducerHolder,
    limiter: ReplayLimiter,
) -> Any:
    """The route's work, shared with the /admin variant: errors mapped to answers."""
    if (body.error_id is None) == (body.filter is None):
        raise ApiError(400, "InvalidParameterError", "give either error_id or filter")
    with _fix_answers():
        return await run_fix(
            body,
            project_id=project_id,
            actor=actor,
            sessions=sessions,
            producer=producer,
            bucket=limiter.bucket(project_id),
            cap=settings.replay_cap,
            geoip_database=settings.geoip_database,
        )


def _saved(sessions: sessionmaker[Session], fix_id: str, project_id: str | None) -> SavedFix:
    with sessions() as session:
        return find_saved_fix(session, fix_id, project_id)


async def apply_saved(
    fix_id: str,
    body: SavedFixApply,
    *,
    project_id: str | None,
    actor: str,
    settings: Settings,
    sessions: sessionmaker[Session],
    producer: KafkaProducerHolder,
    limiter: ReplayLimiter,
) -> Any:
    """Apply a saved fix of ``project_id`` (None: support staff, any project's)."""
    saved = await run_in_threadpool(_saved, sessions, fix_id, project_id)
    with _fix_answers():
        return await apply_saved_fix(
            saved,
            body,
            actor=actor,
            sessions=sessions,
            producer=producer,
            bucket=limiter.bucket(saved.project_id),
            cap=settings.replay_cap,
            geoip_database=settings.geoip_database,
        )


def unsave(session: Session, fix_id: str, project_id: str | None, actor: str) -> dict[str, Any]:
    """Un-save a fix of ``project_id`` (None: any project's); its view afterwards."""
    with session.begin():
        fix = find_fix(session, fix_id, project_id)
        return fix_view(unsave_fix(session, fix, actor))


def saved_fixes(
    session: Session,
    problem_id: str,
    project_id: str | None,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """The saved fixes of a problem of ``project_id`` (None: any project's); 404 for
    another project's problem."""
    problem = find_problem(session, problem_id, project_id)
    return list_fixes(
        session,
        project_id=problem.project_id,
        problem_id=problem.id,
        cursor=cursor,
        limit=limit,
        saved=True,
    )


@router.post(
    "/3.0/projects/{project_id}/errors/fix",
    summary=FIX_SUMMARY,
    description=FIX_DESCRIPTION,
    response_model=FixResult,
    responses=error_responses(*KEY_ERRORS, 404, 429),
)
async def errors_fix(
    body: FixRequest,
    settings: SettingsDep,
    sessions: SessionsDep,
    producer: ProducerDep,
    limiter: ReplayLimiterDep,
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    return await fix_errors(
        body,
        project_id=caller.project_id,
        actor=caller.actor,
        settings=settings,
        sessions=sessions,
        producer=producer,
        limiter=limiter,
    )


@router.get(
    FIXES_PATH,
    summary=LIST_SUMMARY,
    description=FIXES_DESCRIPTION,
    response_model=FixPage,
    responses=error_responses(*KEY_ERRORS),
)
def fixes_list(
    session: SessionDep,
    problem_id: str | None = Query(default=None, description="Only fixes of this problem."),
    saved: bool | None = Query(default=None, description="Only saved fixes, or only others."),
    saved_fix_id: str | None = Query(
        default=None, description="Only the applications of this saved fix."
    ),
    cursor: str | None = Query(default=None, description="next_cursor of the previous page."),
    limit: int = Query(default=50, ge=1, le=500),
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    return list_fixes(
        session,
        project_id=caller.project_id,
        problem_id=problem_id,
        cursor=cursor,
        limit=limit,
        saved=saved,
        saved_fix_id=saved_fix_id,
    )


@router.get(
    f"{FIXES_PATH}/{{fix_id}}",
    summary=ONE_SUMMARY,
    response_model=FixView,
    responses=error_responses(*KEY_ERRORS, 404),
)
def fix_get(session: SessionDep, fix_id: str, caller: Caller = Depends(MASTER_KEY)) -> Any:
    return fix_view(find_fix(session, fix_id, caller.project_id))


@router.post(
    f"{FIXES_PATH}/{{fix_id}}/apply",
    summary=APPLY_SUMMARY,
    description=APPLY_DESCRIPTION,
    response_model=SavedFixResult,
    responses=error_responses(*KEY_ERRORS, 404, 409, 429),
)
async def fix_apply(
    fix_id: str,
    body: SavedFixApply,
    settings: SettingsDep,
    sessions: SessionsDep,
    producer: ProducerDep,
    limiter: ReplayLimiterDep,
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    return await apply_saved(
        fix_id,
        body,
        project_id=caller.project_id,
        actor=caller.actor,
        settings=settings,
        sessions=sessions,
        producer=producer,
        limiter=limiter,
    )


@router.delete(
    f"{FIXES_PATH}/{{fix_id}}",
    summary=UNSAVE_SUMMARY,
    description="The fix stays in the list with `saved: false` (audited `fix.unsaved`); "
    "un-saving a fix that is not saved changes nothing.",
    response_model=FixView,
    responses=error_responses(*KEY_ERRORS, 404),
)
def fix_unsave(session: SessionDep, fix_id: str, caller: Caller = Depends(MASTER_KEY)) -> Any:
    return unsave(session, fix_id, caller.project_id, caller.actor)


@router.get(
    "/3.0/projects/{project_id}/problems/{problem_id}/fixes",
    summary=SAVED_SUMMARY,
    description="The fixes kept on this problem, to apply again to its later errors. Page "
    "with `cursor`.",
    response_model=FixPage,
    responses=error_responses(*KEY_ERRORS, 404),
)
def problem_fixes(
    session: SessionDep,
    problem_id: str,
    cursor: str | None = Query(default=None, description="next_cursor of the previous page."),
    limit: int = Query(default=50, ge=1, le=500),
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    return saved_fixes(session, problem_id, caller.project_id, cursor, limit)
