"""The customer's view of rejected events (master key): list, one with payload, summary,
status, replay, and the reconciliation of what was received with where it went."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query

from app.api.audit import record_audit
from app.api.auth import MASTER_KEY, Caller
from app.api.deps import ProducerDep, ReplayLimiterDep, SessionDep, SessionsDep, SettingsDep
from app.api.error_summary import summarize_errors
from app.api.error_views import (
    audit_payload_read,
    detail_view,
    find_error,
    search_errors,
    summary_view,
)
from app.api.problems import KEY_ERRORS, ApiError, error_responses
from app.api.reconciliation import reconcile
from app.api.replay_service import NoSuchError, RateLimited, replay_errors
from app.api.schemas.errors import (
    ErrorDetail,
    ErrorPage,
    ErrorSummary,
    ErrorSummaryItem,
    Reconciliation,
    StatusChange,
)
from app.api.schemas.replay import ReplayRequest, ReplayResult
from app.api.time_params import time_window

router = APIRouter(tags=["errors"])
ERRORS_PATH = "/3.0/projects/{project_id}/errors"


def _q(description: str) -> Any:
    return Query(default=None, description=description)


@router.get(
    ERRORS_PATH,
    summary="List rejected events, newest first",
    description="Filters: `collection`, `code` and `status` (comma-separated lists allowed), "
    "`since`/`until` (ISO-8601, on the rejection time), `problem_id` (the errors of one "
    "problem). Page with `cursor` = `next_cursor`.",
    response_model=ErrorPage,
    responses=error_responses(*KEY_ERRORS),
)
def errors_list(
    session: SessionDep,
    collection: str | None = _q("Only this collection."),
    code: str | None = _q("Error code(s), e.g. invalid_json,invalid_timestamp."),
    status: str | None = _q("open, replayed, resolved, ignored (comma-separated)."),
    stage: str | None = _q("Pipeline stage(s): edge, http, decode, validate, enrich, persist."),
    since: str | None = _q("Rejected at or after (ISO-8601)."),
    until: str | None = _q("Rejected before (ISO-8601)."),
    problem_id: str | None = _q("Only the errors of this problem."),
    cursor: str | None = _q("next_cursor of the previous page."),
    limit: int = Query(default=50, ge=1, le=500),
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    return search_errors(
        session,
        project_id=caller.project_id,
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
    f"{ERRORS_PATH}/summary",
    summary="Rejections counted by code and collection over time buckets",
    description="Defaults: the last 24 hours in hourly buckets.",
    response_model=ErrorSummary,
    responses=error_responses(*KEY_ERRORS),
)
def errors_summary(
    session: SessionDep,
    since: str | None = _q("Start (ISO-8601); default: 24 hours before `until`."),
    until: str | None = _q("End (ISO-8601); default: now."),
    bucket: Literal["hour", "day"] = Query(default="hour"),
    collection: str | None = _q("Only this collection."),
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    start, end = time_window(since, until, timedelta(hours=24))
    return summarize_errors(session, caller.project_id, start, end, bucket, collection)


@router.post(
    f"{ERRORS_PATH}/replay",
    summary="Replay one rejected event or all matching a filter",
    description="Re-produces the original bytes, key and headers into the inbound topic, with "
    "`inbound.replay.count` (refused beyond the cap) and `inbound.replay.source` (so the "
    "original keen.id is kept). Rate limited per project; `dry_run` only counts.",
    response_model=ReplayResult,
    responses=error_responses(*KEY_ERRORS, 404, 429),
)
async def errors_replay(
    body: ReplayRequest,
    settings: SettingsDep,
    sessions: SessionsDep,
    producer: ProducerDep,
    limiter: ReplayLimiterDep,
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    if (body.error_id is None) == (body.filter is None):
        raise ApiError(400, "InvalidParameterError", "give either error_id or filter")
    try:
        return await replay_errors(
            body,
            project_id=caller.project_id,
            actor=caller.actor,
            sessions=sessions,
            producer=producer,
            bucket=limiter.bucket(caller.project_id),
            cap=settings.replay_cap,
        )
    except NoSuchError as exc:
        raise ApiError(404, "ResourceNotFoundError", "No such error in this project.") from exc
    except RateLimited as exc:
        raise ApiError(
            429,
            "RateLimitedError",
            "Replay rate limit reached for this project; retry later.",
            headers={"Retry-After": str(exc.retry_after)},
        ) from exc


@router.get(
    "/3.0/projects/{project_id}/reconciliation",
    summary="Received = accepted + rejected + dropped, per collection and hour",
    description="From the ingest counters: where every received event went. A nonzero "
    "`unaccounted` means events are in flight (or something is wrong).",
    response_model=Reconciliation,
    responses=error_responses(*KEY_ERRORS),
)
def reconciliation(
    session: SessionDep,
    since: str | None = _q("Start (ISO-8601); default: 24 hours before `until`."),
    until: str | None = _q("End (ISO-8601); default: now."),
    collection: str | None = _q("Only this collection."),
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    return reconcile(session, caller.project_id, since, until, collection)


@router.get(
    f"{ERRORS_PATH}/{{error_id}}",
    summary="One rejected event with its payload",
    description="The payload as base64 (always) and as UTF-8 text (when it decodes), the "
    "record key and headers, and the DLQ coordinates. Each call is written to the audit log.",
    response_model=ErrorDetail,
    responses=error_responses(*KEY_ERRORS, 404),
)
def error_get(session: SessionDep, error_id: str, caller: Caller = Depends(MASTER_KEY)) -> Any:
    with session.begin():
        row = find_error(session, error_id, caller.project_id)
        audit_payload_read(session, caller.actor, row)
        return detail_view(row)


@router.patch(
    f"{ERRORS_PATH}/{{error_id}}",
    summary="Mark a rejected event resolved or ignored (or open again)",
    response_model=ErrorSummaryItem,
    responses=error_responses(*KEY_ERRORS, 404),
)
def error_set_status(
    session: SessionDep,
    error_id: str,
    body: StatusChange,
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    with session.begin():
        row = find_error(session, error_id, caller.project_id)
        row.status = body.status
        row.updated_at = datetime.now(UTC)
        record_audit(
            session,
            caller.actor,
            f"error.{body.status}",
            project_id=caller.project_id,
            target=row.id,
            at=row.updated_at,
        )
        session.flush()
        return summary_view(row)
