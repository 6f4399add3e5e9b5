"""Replaying rejected events for a project: select the errors, honour the rate limit, produce
each one again and record what was produced. The route parses and answers; this does the work.

Per record, ``replay.prepare`` decides what travels and ``replay.mark_replayed`` what the
error row says afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.api.audit import record_audit
from app.api.error_views import error_filters
from app.api.metrics import REPLAYED
from app.api.problems import ApiError
from app.api.producer import KafkaProducerHolder
from app.api.replay import Prepared, Refusal, mark_replayed, prepare
from app.api.replay_limit import TokenBucket
from app.api.schemas.replay import ReplayFilter, ReplayRequest
from app.api.time_params import parse_time
from app.store.models import IngestError


class NoSuchError(Exception):
    """The one error asked for is not in this project."""


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


def target_where(
    error_id: str | None, f: ReplayFilter | None, project_id: str
) -> list[ColumnElement]:
    """The errors one ``error_id`` or a filter names (shared by replay and fix)."""
    if error_id is not None:
        return [IngestError.project_id == project_id, IngestError.id == error_id]
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


def load_errors(
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


def rate_limited(bucket: TokenBucket) -> RateLimited:
    return RateLimited(max(1, int(bucket.wait_for_one() + 0.999)))


# Replays produced before their rows are marked, and marked in one transaction: a chunk
# bounds what an interrupted call leaves produced but unmarked (the worker still reports
# each outcome under its error_id) and the size of one transaction.
REPLAY_CHUNK = 500


def _record_chunk(
    sessions: sessionmaker[Session],
    sent: Sequence[tuple[Prepared, Any]],
    project_id: str,
    actor: str,
) -> None:
    ids = [prepared.error_id for prepared, _ in sent]
    with sessions() as session, session.begin():
        # Lock first, read second, so a worker outcome committed meanwhile is seen and merged
        # instead of being overwritten by "pending": PostgreSQL locks the rows in id order
        # (as the worker's outcome write does, so the two cannot deadlock); on SQLite a
        # no-op UPDATE takes the database's write lock.
        query = select(IngestError).where(IngestError.id.in_(ids))
        if session.get_bind().dialect.name == "postgresql":
            query = query.order_by(IngestError.id).with_for_update()
        else:
            session.execute(
                update(IngestError)
                .where(IngestError.id.in_(ids))
                .values(updated_at=IngestError.updated_at)
                .execution_options(synchronize_session=False)
            )
        fresh = {row.id: row for row in session.execute(query).scalars().all()}
        for prepared, meta in sent:
            row = fresh.get(prepared.error_id)
            if row is None:  # deleted meanwhile: nothing to mark
                continue
            mark_replayed(row, prepared, meta, actor)
            record_audit(
                session, actor, "error.replay", project_id=project_id, target=prepared.error_id
            )


async def produce_replays(
    items: Sequence[tuple[IngestError, bytes | None]],
    *,
    fix_id: str | None = None,
    project_id: str,
    actor: str,
    sessions: sessionmaker[Session],
    producer: KafkaProducerHolder,
    bucket: TokenBucket,
    cap: int,
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Replay each (row, patched value or None for the original bytes), taking one token
    each; what was produced and what was refused. The caller sized ``items`` to the bucket.

    Produced ``REPLAY_CHUNK`` at a time; when the broker refuses one, what it acknowledged
    is still marked, then the refusal (an ApiError, 503) is raised."""
    replayed: list[dict[str, Any]] = []
    refused: list[dict[str, str]] = []
    for start in range(0, len(items), REPLAY_CHUNK):
        prepared_chunk: list[Prepared] = []
        for row, patched in items[start : start + REPLAY_CHUNK]:
            try:
                prepared_chunk.append(
                    await prepare(
                        row, cap=cap, kafka=producer.options, patched=patched, fix_id=fix_id
                    )
                )
            except Refusal as refusal:
                refused.append({"error_id": row.id, "reason": refusal.reason})
                REPLAYED.labels("refused").inc()
        results = await producer.send_many(prepared_chunk)
        sent = [
            (prepared, meta)
            for prepared, meta in zip(prepared_chunk, results, strict=True)
            if not isinstance(meta, ApiError)
        ]
        bucket.take(len(sent))
        if sent:
            await run_in_threadpool(_record_chunk, sessions, sent, project_id, actor)
        REPLAYED.labels("produced").inc(len(sent))
        replayed.extend(
            {
                "error_id": prepared.error_id,
                "topic": prepared.topic,
                "partition": meta.partition,
                "offset": meta.offset,
                "replay_count": prepared.count,
            }
            for prepared, meta in sent
        )
        failure = next((meta for meta in results if isinstance(meta, ApiError)), None)
        if failure is not None:
            raise failure
    return replayed, refused


async def replay_errors(
    request: ReplayRequest,
    *,
    project_id: str,
    actor: str,
    sessions: sessionmaker[Session],
    producer: KafkaProducerHolder,
    bucket: TokenBucket,
    cap: int,
) -> dict[str, Any]:
    """The ReplayResult of one call; NoSuchError or RateLimited when nothing can be done."""
    where = target_where(request.error_id, request.filter, project_id)
    matched, rows = await run_in_threadpool(load_errors, sessions, where, request.limit)
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
        raise rate_limited(bucket)
    replayed, refused = await produce_replays(
        [(row, None) for row in rows[:allowed]],
        project_id=project_id,
        actor=actor,
        sessions=sessions,
        producer=producer,
        bucket=bucket,
        cap=cap,
    )
    done = len(replayed) + len(refused)
    return {
        "dry_run": False,
        "matched": matched,
        "replayed": replayed,
        "refused": refused,
        "remaining": max(0, matched - done) if request.filter is not None else 0,
    }
