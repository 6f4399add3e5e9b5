"""Fix and replay (master key): preview a fix on rejected events, apply it, and the fixes
applied so far. The support-staff variants in routes_admin call the same functions."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Query
from fastapi.routing import APIRouter
from sqlalchemy.orm import Session, sessionmaker

from app.api.auth import MASTER_KEY, Caller
from app.api.deps import ProducerDep, ReplayLimiterDep, SessionDep, SessionsDep, SettingsDep
from app.api.problems import KEY_ERRORS, ApiError, error_responses
from app.api.producer import KafkaProducerHolder
from app.api.replay_limit import ReplayLimiter
from app.api.replay_service import NoSuchError, RateLimited
from app.api.schemas.fixes import FixPage, FixRequest, FixResult, FixView
from app.fixes.operations import OperationError
from app.fixes.service import run_fix
from app.fixes.views import find_fix, fix_view, list_fixes
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
    "and `reason`."
)
LIST_SUMMARY = "Fixes applied, newest first"
ONE_SUMMARY = "One applied fix: operations, target, who, when, counts"


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
    try:
        return await run_fix(
            body,
            project_id=project_id,
            actor=actor,
            sessions=sessions,
            producer=producer,
            bucket=limiter.bucket(project_id),
            cap=settings.replay_cap,
            bootstrap=settings.kafka_bootstrap,
            geoip_database=settings.geoip_database,
        )
    except OperationError as exc:
        where = f"operations[{exc.index}]: " if exc.index >= 0 else ""
        raise ApiError(
            400,
            "InvalidFixError",
            f"{where}{exc.reason}",
            extra={"index": exc.index, "reason": exc.reason},
        ) from exc
    except NoSuchError as exc:
        raise ApiError(404, "ResourceNotFoundError", "No such error in this project.") from exc
    except RateLimited as exc:
        raise ApiError(
            429,
            "RateLimitedError",
            "Replay rate limit reached for this project; retry later.",
            headers={"Retry-After": str(exc.retry_after)},
        ) from exc


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
    description="`problem_id` narrows to the fixes of one problem. Page with `cursor`.",
    response_model=FixPage,
    responses=error_responses(*KEY_ERRORS),
)
def fixes_list(
    session: SessionDep,
    problem_id: str | None = Query(default=None, description="Only fixes of this problem."),
    cursor: str | None = Query(default=None, description="next_cursor of the previous page."),
    limit: int = Query(default=50, ge=1, le=500),
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    return list_fixes(
        session, project_id=caller.project_id, problem_id=problem_id, cursor=cursor, limit=limit
    )


@router.get(
    f"{FIXES_PATH}/{{fix_id}}",
    summary=ONE_SUMMARY,
    response_model=FixView,
    responses=error_responses(*KEY_ERRORS, 404),
)
def fix_get(session: SessionDep, fix_id: str, caller: Caller = Depends(MASTER_KEY)) -> Any:
    return fix_view(find_fix(session, fix_id, caller.project_id))
