"""Reconciliation counters (ingest_counters) the API adds to: events it rejects itself.

Events the API accepts reach the worker through Kafka and are counted there; an event the API
refuses up front never reaches Kafka, so the API counts it as received and rejected here.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.store.models import IngestCounter


def hour_bucket(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def count_rejected(session: Session, project_id: str, collection: str, at: datetime) -> None:
    """received += 1 and rejected += 1 for the hour of ``at``, as one atomic upsert."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = IngestCounter.__table__
    stmt = insert(table).values(
        project_id=project_id,
        collection=collection[:300],
        bucket=hour_bucket(at),
        received=1,
        accepted=0,
        rejected=1,
        dropped=0,
        dropped_reasons={},
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.project_id, table.c.collection, table.c.bucket],
        set_={"received": table.c.received + 1, "rejected": table.c.rejected + 1},
    )
    session.execute(stmt)
