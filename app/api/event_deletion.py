"""Deleting a collection's events (Keen's DELETE /3.0/projects/{id}/events/{collection}).

The events matching the optional filters and timeframe (the queries' own parsing and SQL) go
in batches of at most ``DELETE_BATCH`` rows, each its own transaction: one call never holds a
lock on more than one batch, and a worker writing the same collection waits for one batch at
most. Each batch, in its transaction, adds its rows to ``ingest_counters.deleted`` in the hour
they were accepted, so the reconciliation shows deletions apart from rejections. The first
batch records the audit entry (``events.delete``), so nothing is deleted unaudited; the batch
that leaves the collection empty also removes its schema (Keen removed a deleted collection
from the inspection answer).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import and_, delete, exists, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.api.audit import record_audit
from app.api.queries import Query, parse_query
from app.api.query_build import FilterLimits, filters_sql, register_sqlite_functions
from app.store.collection_schema import forget_collection
from app.store.models import Event, IngestCounter

# The most events one statement (and one transaction) deletes.
DELETE_BATCH = 5000
_AUDIT_TARGET_CHARS = 300  # audit_log.target


@dataclass(frozen=True)
class Deletion:
    deleted: int
    batches: int


def parse_deletion(
    project_id: str, collection: str, params: dict[str, Any], limits: FilterLimits
) -> Query:
    """The query parameters Keen's delete takes (filters, timeframe, timezone), parsed as a
    query's are; QueryError when malformed. A master key forces no filters."""
    given = {k: v for k, v in params.items() if k in ("filters", "timeframe", "timezone")}
    return parse_query(
        project_id, {"event_collection": collection, **given}, forced_filters=[], limits=limits
    )


def audit_target(query: Query) -> str:
    """What the audit entry names: the collection, the resolved timeframe, the filters."""
    what = {
        "timeframe": query.timeframe.as_json() if query.timeframe else None,
        "filters": [[f.property_name, f.operator, f.property_value] for f in query.filters],
    }
    text = f"{query.event_collection} {orjson.dumps(what).decode()}"
    return text if len(text) <= _AUDIT_TARGET_CHARS else text[: _AUDIT_TARGET_CHARS - 1] + "…"


def _hour(at: datetime) -> datetime:
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)  # SQLite: naive UTC
    return at.replace(minute=0, second=0, microsecond=0)


def _count_deleted(session: Session, query: Query, created: list[datetime]) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = IngestCounter.__table__
    # In key order, as the worker upserts counters, so the two cannot deadlock.
    for bucket, n in sorted(Counter(_hour(at) for at in created).items()):
        stmt = insert(table).values(
            project_id=query.project_id,
            collection=query.event_collection,
            bucket=bucket,
            received=0,
            accepted=0,
            rejected=0,
            dropped=0,
            dropped_reasons={},
            deleted=n,
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.c.project_id, table.c.collection, table.c.bucket],
                set_={"deleted": table.c.deleted + n},
            )
        )


def delete_events(
    session: Session,
    query: Query,
    *,
    actor: str,
    audit: str,
    batch_size: int = DELETE_BATCH,
) -> Deletion:
    """Delete what ``query`` matches, ``batch_size`` rows per transaction."""
    events = Event.__table__
    in_collection = and_(
        Event.project_id == query.project_id, Event.collection == query.event_collection
    )
    frame = (
        and_(
            Event.keen_timestamp >= query.timeframe.start,
            Event.keen_timestamp < query.timeframe.end,
        )
        if query.timeframe
        else true()
    )
    deleted = batches = 0
    while True:
        with session.begin():
            dialect = session.get_bind().dialect.name
            if dialect == "sqlite":  # REGEXP and the distance function, per connection
                register_sqlite_functions(session.connection().connection.driver_connection)
            if batches == 0:
                record_audit(
                    session, actor, "events.delete", project_id=query.project_id, target=audit
                )
            # correlate(None): the subquery reads events itself, it is not the DELETE's row.
            ids = (
                select(Event.id)
                .where(in_collection, filters_sql(dialect, query.filters), frame)
                .order_by(Event.id)
                .limit(batch_size)
                .correlate(None)
            )
            created = list(
                session.execute(
                    delete(events).where(events.c.id.in_(ids)).returning(events.c.created_at)
                ).scalars()
            )
            batches += 1
            deleted += len(created)
            last = len(created) < batch_size
            # Schema before counters, the order the worker's batch write takes them in, so
            # the two never wait on each other's locks in opposite orders (PostgreSQL).
            if last and not session.scalar(select(exists().where(in_collection))):
                forget_collection(session, query.project_id, query.event_collection)
            _count_deleted(session, query, created)
        if last:
            return Deletion(deleted=deleted, batches=batches)
