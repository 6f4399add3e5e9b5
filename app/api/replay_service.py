"""Replaying rejected events for a project: select the errors, honour the rate limit, produce
each one again and record what was produced. The route parses and answers; this does the work.

Per record, ``replay.prepare`` decides what travels and ``replay.mark_replayed`` what the
error row says afterwards.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.api.audit import record_audit
from app.api.error_views import error_filters
from app.api.metrics import REPLAYED
from app.api.producer import KafkaProducerHolder
from app.api.replay import Prepared, Refusal, mark_replayed, prepare
from app.api.replay_limit import TokenBucket
from app.api.schemas.replay import ReplayRequest
from app.api.time_params import parse_time
from app.store.models import IngestError


class NoSuchError(Exception):
    """The one error asked for is not in this project."""


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


def _where(request: ReplayRequest, project_id: str) -> list[ColumnElement]:
    if request.error_id is not None:
        return [IngestError.project_id == project_id, IngestError.id == request.error_id]
    f = request.filter
    assert f is not None
    return error_filters(
        project_id=project_id,
        collection=f.collection,
        code=f.code,
        status=f.status,
        since=parse_time(f.since, "since"),
        until=parse_time(f.until, "until"),
        problem_id=f.problem_id,
    )


def _load(
    sessions: sessionmaker[Session], where: list[ColumnElement], limit: int
) -> tuple[int, list[IngestError]]:
    with sessions() as session:
        matched = session.scalar(select(func.count()).select_from(IngestError).where(*where))
        rows = (
            session.execute(
                select(IngestError)
                .where(*where)
                .order_by(IngestError.created_at, IngestError.id)
                .limit(limit)
            )
            .scalars()
            .all()
        )
        return int(matched or 0), list(rows)


def _record(
    sessions: sessionmaker[Session],
    error_id: str,
    prepared: Prepared,
    meta: Any,
    project_id: str,
    actor: str,
) -> None:
    with sessions() as session, session.begin():
        # Write first, read second: the no-op UPDATE takes the row (PostgreSQL) or the
        # database (SQLite) write lock, so a worker outcome committed meanwhile is seen
        # and merged instead of being overwritten by "pending".
        session.execute(
            update(IngestError)
            .where(IngestError.id == error_id)
            .values(updated_at=IngestError.updated_at)
        )
        fresh = session.get(IngestError, error_id)
        if fresh is None:
            return
        mark_replayed(fresh, prepared, meta, actor)
        record_audit(session, actor, "error.replay", project_id=project_id, target=error_id)


async def replay_errors(
    request: ReplayRequest,
    *,
    project_id: str,
    actor: str,
    sessions: sessionmaker[Session],
    producer: KafkaProducerHolder,
    bucket: TokenBucket,
    cap: int,
    bootstrap: str | None,
) -> dict[str, Any]:
    """The ReplayResult of one call; NoSuchError or RateLimited when nothing can be done."""
    where = _where(request, project_id)
    matched, rows = await run_in_threadpool(_load, sessions, where, request.limit)
    if request.error_id is not None and not rows:
        raise NoSuchError(request.error_id)
    if request.dry_run:
        return {
            "dry_run": True,
            "matched": matched,
            "replayed": [],
            "refused": [],
            "remaining": matched,
        }

    allowed = bucket.available()
    if allowed < 1:
        raise RateLimited(max(1, int(bucket.wait_for_one() + 0.999)))
    replayed: list[dict[str, Any]] = []
    refused: list[dict[str, str]] = []
    for row in rows[:allowed]:
        try:
            prepared = await prepare(row, cap=cap, bootstrap=bootstrap)
        except Refusal as refusal:
            refused.append({"error_id": row.id, "reason": refusal.reason})
            REPLAYED.labels("refused").inc()
            continue
        meta = await producer.send(
            prepared.topic, prepared.value, key=prepared.key, headers=prepared.headers
        )
        bucket.take(1)
        await run_in_threadpool(_record, sessions, row.id, prepared, meta, project_id, actor)
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
        "remaining": max(0, matched - done) if request.filter is not None else 0,
    }
