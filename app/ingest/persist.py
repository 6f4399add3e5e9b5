"""Writes one batch's outcome in one transaction: events, error rows, notifications, counters.

Idempotent: a redelivered batch (worker killed before its offsets were committed) inserts
nothing twice and counts nothing twice, because event and error ids are derived from the
record's coordinates.
"""

from __future__ import annotations

import base64
import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.ingest.dlq import DeadLetter, cap_text
from app.ingest.pipeline import Accepted
from app.store.models import Event, IngestCounter, IngestError, Notification


@dataclass
class BatchOutcome:
    accepted: list[Accepted] = field(default_factory=list)
    rejected: list[DeadLetter] = field(default_factory=list)
    dlq_coordinates: dict[str, tuple[int, int]] = field(default_factory=dict)
    # original error_id -> outcome, for records that came from a replay
    replay_outcomes: dict[str, dict] = field(default_factory=dict)


def _insert(engine: Engine, table):  # noqa: ANN001, ANN202 - dialect-specific insert construct
    return (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(table)


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _chunks(items: list, size: int = 500) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class BatchWriter:
    def __init__(self, engine: Engine, payload_cap: int) -> None:
        self._engine = engine
        self._payload_cap = payload_cap

    def write(self, outcome: BatchOutcome) -> tuple[int, int]:
        """Persist; returns (new events, new errors) actually inserted."""
        engine = self._engine
        counters: dict[tuple[str, str, datetime], list[int]] = defaultdict(lambda: [0, 0])
        with engine.begin() as conn:
            new_events = self._write_events(conn, outcome.accepted, counters)
            new_errors = self._write_errors(conn, outcome, counters)
            for error_id, result in outcome.replay_outcomes.items():
                conn.execute(
                    update(IngestError)
                    .where(IngestError.id == error_id)
                    .values(replay_outcome=result, updated_at=datetime.now(UTC))
                )
            self._bump_counters(conn, counters)
        return new_events, new_errors

    def _write_events(self, conn, accepted: list[Accepted], counters) -> int:  # noqa: ANN001
        if not accepted:
            return 0
        ids = [a.keen_id for a in accepted]
        existing: set[str] = set()
        for chunk in _chunks(ids):
            existing.update(conn.scalars(select(Event.keen_id).where(Event.keen_id.in_(chunk))))
        rows = []
        for a in accepted:
            if a.keen_id in existing:
                continue
            existing.add(a.keen_id)  # also dedupes within the batch
            rows.append(
                {
                    "project_id": a.project_id,
                    "collection": a.collection,
                    "keen_id": a.keen_id,
                    "keen_timestamp": a.keen_timestamp,
                    "created_at": a.created_at,
                    "body": a.body,
                }
            )
            counters[(a.project_id, a.collection, _hour(a.created_at))][0] += 1
        if rows:
            stmt = _insert(self._engine, Event.__table__).on_conflict_do_nothing(
                index_elements=["keen_id"]
            )
            conn.execute(stmt, rows)
        return len(rows)

    def _write_errors(self, conn, outcome: BatchOutcome, counters) -> int:  # noqa: ANN001
        letters = outcome.rejected
        if not letters:
            return 0
        existing: set[str] = set()
        for chunk in _chunks([d.error_id for d in letters]):
            existing.update(conn.scalars(select(IngestError.id).where(IngestError.id.in_(chunk))))
        rows, notes = [], []
        for d in letters:
            if d.error_id in existing:
                continue
            existing.add(d.error_id)
            value = d.record.value or b""
            partition, offset = outcome.dlq_coordinates.get(d.error_id, (None, None))
            ts = d.record.timestamp_ms
            message = cap_text(d.rejection.message, 1024)
            rows.append(
                {
                    "id": d.error_id,
                    "project_id": d.project_id,
                    "collection": d.collection,
                    "code": d.rejection.code,
                    "stage": d.rejection.stage,
                    "message": message,
                    "detail": d.rejection.detail,
                    "source_topic": d.record.topic,
                    "source_partition": d.record.partition,
                    "source_offset": d.record.offset,
                    "record_timestamp": datetime.fromtimestamp(ts / 1000, UTC) if ts else None,
                    "payload": value[: self._payload_cap],
                    "payload_size": len(value),
                    "payload_sha256": hashlib.sha256(value).hexdigest(),
                    "record_key": d.record.key,
                    "headers": [
                        [k, base64.b64encode(v or b"").decode()] for k, v in d.record.headers
                    ],
                    "key_id": _header(d.record.headers, "inbound.key_id"),
                    "status": "open",
                    "replay_count": int(_header(d.record.headers, "inbound.replay.count") or 0),
                    "dlq_topic": d.topic,
                    "dlq_partition": partition,
                    "dlq_offset": offset,
                    "created_at": d.failed_at,
                    "updated_at": d.failed_at,
                }
            )
            notes.append(
                {
                    "project_id": d.project_id,
                    "type": "ingest.failed",
                    "payload": {
                        "error_id": d.error_id,
                        "code": d.rejection.code,
                        "stage": d.rejection.stage,
                        "collection": d.collection,
                        "message": message,
                        "created_at": d.failed_at.isoformat(),
                    },
                    "created_at": d.failed_at,
                }
            )
            counters[(d.project_id, d.collection, _hour(d.failed_at))][1] += 1
        if rows:
            conn.execute(
                _insert(self._engine, IngestError.__table__).on_conflict_do_nothing(
                    index_elements=["id"]
                ),
                rows,
            )
            conn.execute(Notification.__table__.insert(), notes)
        return len(rows)

    def _bump_counters(self, conn, counters) -> None:  # noqa: ANN001
        # Nothing is dropped by policy yet (a paused stream waits, it is not dropped), so
        # received = accepted + rejected; the dropped column is there for future policies.
        table = IngestCounter.__table__
        for (project_id, collection, bucket), (acc, rej) in counters.items():
            stmt = _insert(self._engine, table).values(
                project_id=project_id,
                collection=collection,
                bucket=bucket,
                received=acc + rej,
                accepted=acc,
                rejected=rej,
                dropped=0,
                dropped_reasons={},
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["project_id", "collection", "bucket"],
                set_={
                    "received": table.c.received + acc + rej,
                    "accepted": table.c.accepted + acc,
                    "rejected": table.c.rejected + rej,
                },
            )
            conn.execute(stmt)


def _header(headers: tuple[tuple[str, bytes], ...], name: str) -> str | None:
    for k, v in reversed(headers):
        if k == name and v is not None:
            return v.decode(errors="replace")
    return None
