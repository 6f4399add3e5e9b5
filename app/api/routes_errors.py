"""The customer's view of rejected events (master key): list, one with payload, summary,
status, replay, and the reconciliation of what was received with where it went."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import DateTime, Integer, and_, column, func, select, update, values
from starlette.concurrency import run_in_threadpool

from app.api.auth import MASTER_KEY, Caller
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
from app.api.metrics import REPLAYED
from app.api.problems import KEY_ERRORS, ApiError, error_responses
from app.api.replay import Refusal, TokenBucket, mark_replayed, prepare
from app.api.timeframes import iso
from app.store.models import AuditEntry, IngestCounter, IngestError

router = APIRouter(tags=["errors"])
ERRORS_PATH = "/3.0/projects/{project_id}/errors"
_MAX_SUMMARY_BUCKETS = 1000


def _q(description: str) -> Any:
    return Query(default=None, description=description)


@router.get(
    ERRORS_PATH,
    summary="List rejected events, newest first",
    description="Filters: `collection`, `code` and `status` (comma-separated lists allowed), "
    "`since`/`until` (ISO-8601, on the rejection time). Page with `cursor` = `next_cursor`.",
    response_model=ErrorPage,
    responses=error_responses(*KEY_ERRORS),
)
def errors_list(
    request: Request,
    collection: str | None = _q("Only this collection."),
    code: str | None = _q("Error code(s), e.g. invalid_json,invalid_timestamp."),
    status: str | None = _q("open, replayed, resolved, ignored (comma-separated)."),
    stage: str | None = _q("Pipeline stage(s): edge, http, decode, validate, enrich, persist."),
    since: str | None = _q("Rejected at or after (ISO-8601)."),
    until: str | None = _q("Rejected before (ISO-8601)."),
    cursor: str | None = _q("next_cursor of the previous page."),
    limit: int = Query(default=50, ge=1, le=500),
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    where = error_filters(
        project_id=caller.project_id,
        collection=collection,
        code=code,
        status=status,
        stage=stage,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
    )
    with request.app.state.session_factory() as session:
        return list_errors(session, where, cursor=cursor, limit=limit)


class SummaryCounts(BaseModel):
    total: int
    by_code: dict[str, int]
    by_collection: dict[str, int]


class SummaryBucket(SummaryCounts):
    start: str
    end: str


class ErrorSummary(BaseModel):
    start: str
    end: str
    bucket: str
    totals: SummaryCounts
    buckets: list[SummaryBucket]


def _frame(since: str | None, until: str | None, default: timedelta) -> tuple[datetime, datetime]:
    end = parse_time(until, "until") or datetime.now(UTC)
    start = parse_time(since, "since") or end - default
    if end <= start:
        raise ApiError(400, "InvalidParameterError", "until must be after since")
    return start, end


@router.get(
    f"{ERRORS_PATH}/summary",
    summary="Rejections counted by code and collection over time buckets",
    description="Defaults: the last 24 hours in hourly buckets.",
    response_model=ErrorSummary,
    responses=error_responses(*KEY_ERRORS),
)
def errors_summary(
    request: Request,
    since: str | None = _q("Start (ISO-8601); default: 24 hours before `until`."),
    until: str | None = _q("End (ISO-8601); default: now."),
    bucket: Literal["hour", "day"] = Query(default="hour"),
    collection: str | None = _q("Only this collection."),
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    start, end = _frame(since, until, timedelta(hours=24))
    width = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    floor = start.replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        floor = floor.replace(hour=0)
    edges = []
    at = floor
    while at < end:
        edges.append((at, at + width))
        at += width
        if len(edges) > _MAX_SUMMARY_BUCKETS:
            raise ApiError(400, "InvalidParameterError", "too many buckets; use bucket=day")
    table = (
        values(
            column("idx", Integer),
            column("b_start", DateTime(timezone=True)),
            column("b_end", DateTime(timezone=True)),
            name="buckets",
        )
        .data([(i, s, e) for i, (s, e) in enumerate(edges)])
        .cte("buckets")
    )
    where = error_filters(
        project_id=caller.project_id, collection=collection, since=start, until=end
    )
    stmt = (
        select(table.c.idx, IngestError.code, IngestError.collection, func.count())
        .select_from(IngestError)
        .join(
            table,
            and_(IngestError.created_at >= table.c.b_start, IngestError.created_at < table.c.b_end),
        )
        .where(*where)
        .group_by(table.c.idx, IngestError.code, IngestError.collection)
    )
    out = [
        {"start": iso(s), "end": iso(e), "total": 0, "by_code": {}, "by_collection": {}}
        for s, e in edges
    ]
    totals: dict[str, Any] = {"total": 0, "by_code": {}, "by_collection": {}}
    with request.app.state.session_factory() as session:
        rows = session.execute(stmt).all() if edges else []
    for idx, code, coll, n in rows:
        for target in (out[idx], totals):
            target["total"] += n
            target["by_code"][code] = target["by_code"].get(code, 0) + n
            target["by_collection"][coll] = target["by_collection"].get(coll, 0) + n
    return {
        "start": iso(start),
        "end": iso(end),
        "bucket": bucket,
        "totals": totals,
        "buckets": out,
    }


class ReplayFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a 400, never ignored

    collection: str | None = None
    code: str | None = Field(default=None, examples=["invalid_timestamp"])
    status: str = Field(default="open", description="Statuses to replay (comma-separated).")
    since: str | None = None
    until: str | None = None


class ReplayRequest(BaseModel):
    error_id: str | None = Field(default=None, description="Replay this one error ...")
    filter: ReplayFilter | None = Field(default=None, description="... or all matching this.")
    dry_run: bool = Field(default=False, description="Only count what would be replayed.")
    limit: int = Field(default=100, ge=1, le=10000, description="Most errors per call.")

    model_config = {
        "extra": "forbid",  # {"filter": {"error_ids": ...}} must not match everything
        "json_schema_extra": {
            "examples": [
                {"error_id": "9f3c2a7b5d1e4c6a8b0f2e4d6c8a0b1c"},
                {
                    "filter": {"collection": "purchases", "code": "invalid_timestamp"},
                    "dry_run": True,
                },
            ]
        },
    }


class Replayed(BaseModel):
    error_id: str
    topic: str
    partition: int
    offset: int
    replay_count: int


class ReplayRefused(BaseModel):
    error_id: str
    reason: str = Field(examples=["replay_cap_reached"])


class ReplayResult(BaseModel):
    dry_run: bool
    matched: int = Field(description="Errors matching the request.")
    replayed: list[Replayed]
    refused: list[ReplayRefused]
    remaining: int = Field(description="Matching errors left for a later call (limit, rate).")


def _bucket_for(request: Request, project_id: str) -> TokenBucket:
    settings = request.app.state.settings
    buckets: dict[str, TokenBucket] = request.app.state.replay_buckets
    if project_id not in buckets:
        buckets[project_id] = TokenBucket(
            rate=settings.replay_rate_per_second, capacity=float(settings.replay_burst)
        )
    return buckets[project_id]


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
    request: Request, body: ReplayRequest, caller: Caller = Depends(MASTER_KEY)
) -> Any:
    if (body.error_id is None) == (body.filter is None):
        raise ApiError(400, "InvalidParameterError", "give either error_id or filter")
    settings = request.app.state.settings
    sessions = request.app.state.session_factory
    if body.error_id is not None:
        where = [IngestError.project_id == caller.project_id, IngestError.id == body.error_id]
    else:
        f = body.filter
        assert f is not None
        where = error_filters(
            project_id=caller.project_id,
            collection=f.collection,
            code=f.code,
            status=f.status,
            since=parse_time(f.since, "since"),
            until=parse_time(f.until, "until"),
        )

    def _load() -> tuple[int, list[IngestError]]:
        with sessions() as session:
            matched = session.scalar(select(func.count()).select_from(IngestError).where(*where))
            rows = (
                session.execute(
                    select(IngestError)
                    .where(*where)
                    .order_by(IngestError.created_at, IngestError.id)
                    .limit(body.limit)
                )
                .scalars()
                .all()
            )
            return int(matched or 0), list(rows)

    matched, rows = await run_in_threadpool(_load)
    if body.error_id is not None and not rows:
        raise ApiError(404, "ResourceNotFoundError", "No such error in this project.")
    if body.dry_run:
        return {
            "dry_run": True,
            "matched": matched,
            "replayed": [],
            "refused": [],
            "remaining": matched,
        }

    bucket = _bucket_for(request, caller.project_id)
    allowed = bucket.available()
    if allowed < 1:
        raise ApiError(
            429,
            "RateLimitedError",
            "Replay rate limit reached for this project; retry later.",
            headers={"Retry-After": str(max(1, int(bucket.wait_for_one() + 0.999)))},
        )
    rows = rows[:allowed]
    replayed: list[dict[str, Any]] = []
    refused: list[dict[str, str]] = []
    producer = request.app.state.producer
    for row in rows:
        try:
            prepared = await prepare(
                row, cap=settings.replay_cap, bootstrap=settings.kafka_bootstrap
            )
        except Refusal as refusal:
            refused.append({"error_id": row.id, "reason": refusal.reason})
            REPLAYED.labels("refused").inc()
            continue
        meta = await producer.send(
            prepared.topic, prepared.value, key=prepared.key, headers=prepared.headers
        )
        bucket.take(1)

        def _record(row: IngestError = row, prepared: Any = prepared, meta: Any = meta) -> None:
            with sessions() as session, session.begin():
                # Write first, read second: the no-op UPDATE takes the row (PostgreSQL) or the
                # database (SQLite) write lock, so a worker outcome committed meanwhile is seen
                # and merged instead of being overwritten by "pending".
                session.execute(
                    update(IngestError)
                    .where(IngestError.id == row.id)
                    .values(updated_at=IngestError.updated_at)
                )
                fresh = session.get(IngestError, row.id)
                if fresh is None:
                    return
                mark_replayed(fresh, prepared, meta, caller.actor)
                session.add(
                    AuditEntry(
                        at=datetime.now(UTC),
                        actor=caller.actor,
                        action="error.replay",
                        project_id=caller.project_id,
                        target=row.id,
                    )
                )

        await run_in_threadpool(_record)
        REPLAYED.labels("produced").inc()
        replayed.append(
            {
                "error_id": row.id,
                "topic": prepared.topic,
                "partition": meta.partition,
                "offset": meta.offset,
                "replay_count": prepared.count,
            }
        )
    done = len(replayed) + len(refused)
    return {
        "dry_run": False,
        "matched": matched,
        "replayed": replayed,
        "refused": refused,
        "remaining": max(0, matched - done) if body.filter is not None else 0,
    }


class ReconciliationRow(BaseModel):
    collection: str
    bucket_start: str
    received: int
    accepted: int
    rejected: int
    dropped: int
    dropped_reasons: dict[str, int]
    unaccounted: int = Field(
        description="received - accepted - rejected - dropped; 0 when all is known."
    )


class Reconciliation(BaseModel):
    start: str
    end: str
    balanced: bool = Field(description="Every bucket has received = accepted + rejected + dropped.")
    totals: dict[str, int]
    rows: list[ReconciliationRow]


@router.get(
    "/3.0/projects/{project_id}/reconciliation",
    summary="Received = accepted + rejected + dropped, per collection and hour",
    description="From the ingest counters: where every received event went. A nonzero "
    "`unaccounted` means events are in flight (or something is wrong).",
    response_model=Reconciliation,
    responses=error_responses(*KEY_ERRORS),
)
def reconciliation(
    request: Request,
    since: str | None = _q("Start (ISO-8601); default: 24 hours before `until`."),
    until: str | None = _q("End (ISO-8601); default: now."),
    collection: str | None = _q("Only this collection."),
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    return reconcile(request, caller.project_id, since, until, collection)


def reconcile(
    request: Request, project_id: str, since: str | None, until: str | None, collection: str | None
) -> dict[str, Any]:
    start, end = _frame(since, until, timedelta(hours=24))
    # A bucket is named by its hour's start: include the hour `start` falls in.
    start = start.replace(minute=0, second=0, microsecond=0)
    where = [
        IngestCounter.project_id == project_id,
        IngestCounter.bucket >= start,
        IngestCounter.bucket < end,
    ]
    if collection:
        where.append(IngestCounter.collection == collection)
    with request.app.state.session_factory() as session:
        rows = (
            session.execute(
                select(IngestCounter)
                .where(*where)
                .order_by(IngestCounter.bucket, IngestCounter.collection)
            )
            .scalars()
            .all()
        )
    out = []
    totals = {"received": 0, "accepted": 0, "rejected": 0, "dropped": 0, "unaccounted": 0}
    for r in rows:
        unaccounted = r.received - r.accepted - r.rejected - r.dropped
        bucket_start = r.bucket if r.bucket.tzinfo else r.bucket.replace(tzinfo=UTC)
        out.append(
            {
                "collection": r.collection,
                "bucket_start": iso(bucket_start),
                "received": r.received,
                "accepted": r.accepted,
                "rejected": r.rejected,
                "dropped": r.dropped,
                "dropped_reasons": r.dropped_reasons or {},
                "unaccounted": unaccounted,
            }
        )
        for name in ("received", "accepted", "rejected", "dropped"):
            totals[name] += getattr(r, name)
        totals["unaccounted"] += unaccounted
    return {
        "start": iso(start),
        "end": iso(end),
        "balanced": all(row["unaccounted"] == 0 for row in out),
        "totals": totals,
        "rows": out,
    }


@router.get(
    f"{ERRORS_PATH}/{{error_id}}",
    summary="One rejected event with its payload",
    description="The payload as base64 (always) and as UTF-8 text (when it decodes), the "
    "record key and headers, and the DLQ coordinates. Each call is written to the audit log.",
    response_model=ErrorDetail,
    responses=error_responses(*KEY_ERRORS, 404),
)
def error_get(request: Request, error_id: str, caller: Caller = Depends(MASTER_KEY)) -> Any:
    with request.app.state.session_factory() as session, session.begin():
        row = session.scalar(
            select(IngestError).where(
                IngestError.project_id == caller.project_id, IngestError.id == error_id
            )
        )
        if row is None:
            raise ApiError(404, "ResourceNotFoundError", "No such error in this project.")
        audit_payload_read(session, caller.actor, row)
        return detail_view(row)


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a 400, never ignored

    status: Literal["open", "resolved", "ignored"] = Field(examples=["resolved"])


@router.patch(
    f"{ERRORS_PATH}/{{error_id}}",
    summary="Mark a rejected event resolved or ignored (or open again)",
    response_model=ErrorSummaryItem,
    responses=error_responses(*KEY_ERRORS, 404),
)
def error_set_status(
    request: Request,
    error_id: str,
    body: StatusChange,
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    with request.app.state.session_factory() as session, session.begin():
        row = session.scalar(
            select(IngestError).where(
                IngestError.project_id == caller.project_id, IngestError.id == error_id
            )
        )
        if row is None:
            raise ApiError(404, "ResourceNotFoundError", "No such error in this project.")
        row.status = body.status
        row.updated_at = datetime.now(UTC)
        session.add(
            AuditEntry(
                at=row.updated_at,
                actor=caller.actor,
                action=f"error.{body.status}",
                project_id=caller.project_id,
                target=row.id,
            )
        )
        session.flush()
        return summary_view(row)
