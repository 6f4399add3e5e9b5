"""Writes one batch's outcome in one transaction: events, error rows, notifications, counters.

Idempotent: a redelivered batch (worker killed before its offsets were committed) inserts
nothing twice and counts nothing twice, because event and error ids are derived from the
record's coordinates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.ingest.dlq import DeadLetter
from app.ingest.pipeline import Accepted
from app.ingest.raw_insert import RawInsert
from app.store.collection_schema import batch_pairs, record_schema
from app.store.models import Event, IngestCounter, IngestError
from app.store.problem_counts import hit_for, record_hits


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


class _Redelivered(Exception):  # noqa: N818 - a signal, not an error
    """Part of the batch was stored before (a redelivery): redo it the careful way."""


EVENT_COLUMNS = ("project_id", "collection", "keen_id", "keen_timestamp", "created_at", "body")
ERROR_COLUMNS = (
    "id", "project_id", "collection", "code", "stage", "message", "detail", "source_topic",
    "source_partition", "source_offset", "record_timestamp", "payload", "payload_size",
    "payload_sha256", "record_key", "headers", "key_id", "status", "replay_count",
    "dlq_topic", "dlq_partition", "dlq_offset", "problem_id", "created_at", "updated_at",
)  # fmt: skip
NOTE_COLUMNS = ("project_id", "type", "payload", "created_at")
# What the worker reports about a replayed record; everything else in replay_outcome is the API's.
_RESULT_KEYS = frozenset({"status", "keen_id", "error_id", "code", "at", "partition", "offset"})


class BatchWriter:
    def __init__(self, engine: Engine, payload_cap: int, max_problems: int = 1000) -> None:
        self._engine = engine
        self._payload_cap = payload_cap
        self._max_problems = max_problems
        dialect = engine.dialect.name
        self._events = RawInsert(
            dialect,
            "events",
            EVENT_COLUMNS,
            json_columns=("body",),
            datetime_columns=("keen_timestamp", "created_at"),
            conflict=("keen_id",),
        )
        self._errors = RawInsert(
            dialect,
            "ingest_errors",
            ERROR_COLUMNS,
            json_columns=("detail", "headers"),
            datetime_columns=("record_timestamp", "created_at", "updated_at"),
            conflict=("id",),
        )
        self._notes = RawInsert(
            dialect,
            "notifications",
            NOTE_COLUMNS,
            json_columns=("payload",),
            datetime_columns=("created_at",),
        )

    def write(self, outcome: BatchOutcome) -> tuple[int, int]:
        """Persist; returns (new events, new errors) actually inserted.

        The fast path inserts everything and checks the driver's row count; only when some
        rows already existed (a redelivery, rare) is the batch redone with a look-up of what
        is stored, so nothing is counted or notified twice.
        """
        # The collections' (path, type) pairs, computed before the transaction opens so the
        # walk holds no lock; a redelivered event adds nothing new to them.
        schemas = batch_pairs((a.project_id, a.collection, a.body) for a in outcome.accepted)
        try:
            return self._write(outcome, schemas, careful=False)
        except _Redelivered:
            return self._write(outcome, schemas, careful=True)

    def _write(self, outcome: BatchOutcome, schemas: dict, careful: bool) -> tuple[int, int]:
        counters: dict[tuple[str, str, datetime], list[int]] = defaultdict(lambda: [0, 0])
        with self._engine.begin() as conn:
            new_events = self._write_events(conn, outcome.accepted, counters, careful)
            record_schema(conn, schemas)
            new_errors = self._write_errors(conn, outcome, counters, careful)
            if outcome.replay_outcomes:
                self._write_replay_outcomes(conn, outcome.replay_outcomes)
            self._bump_counters(conn, counters)
        return new_events, new_errors

    def _write_replay_outcomes(self, conn, results: dict[str, dict]) -> None:  # noqa: ANN001
        """Each replayed error's result, keeping what the API recorded (who, when, fix_id).

        The rows are locked before they are read, in id order as the API locks them
        (app.api.replay_service): the API marks a chunk of replays after producing them, so a
        fast worker may report one meanwhile, and a read without the lock would merge into
        what the API is about to overwrite. SQLite: the batch's inserts hold the write lock.
        """
        ids = sorted(results)
        query = select(IngestError.id, IngestError.replay_outcome).where(IngestError.id.in_(ids))
        if conn.dialect.name == "postgresql":
            query = query.order_by(IngestError.id).with_for_update()
        current = dict(conn.execute(query).all())
        now = datetime.now(UTC)
        for error_id in ids:
            if error_id not in current:
                continue
            kept = {k: v for k, v in (current[error_id] or {}).items() if k not in _RESULT_KEYS}
            conn.execute(
                update(IngestError)
                .where(IngestError.id == error_id)
                .values(replay_outcome={**kept, **results[error_id]}, updated_at=now)
            )

    def _write_events(self, conn, accepted: list[Accepted], counters, careful: bool) -> int:  # noqa: ANN001
        if not accepted:
            return 0
        existing = (
            self._existing(conn, Event.keen_id, [a.keen_id for a in accepted]) if careful else set()
        )
        rows = []
        hours: dict[datetime, datetime] = {}
        make_row = self._events.row
        for a in accepted:
            if careful:
                if a.keen_id in existing:
                    continue
                existing.add(a.keen_id)  # also dedupes within the batch
            rows.append(
                make_row(
                    [a.project_id, a.collection, a.keen_id, a.keen_timestamp, a.created_at, a.body]
                )
            )
            hour = hours.get(a.created_at)
            if hour is None:
                hour = hours[a.created_at] = _hour(a.created_at)
            counters[(a.project_id, a.collection, hour)][0] += 1
        inserted = self._events.execute(conn, rows)
        if inserted != len(rows) and not careful:
            raise _Redelivered
        return inserted

    def _write_errors(self, conn, outcome: BatchOutcome, counters, careful: bool) -> int:  # noqa: ANN001
        letters = outcome.rejected
        if not letters:
            return 0
        existing = (
            self._existing(conn, IngestError.id, [d.error_id for d in letters])
            if careful
            else set()
        )
        rows, hits, kept = [], [], []
        columns = ERROR_COLUMNS
        for d in letters:
            if careful:
                if d.error_id in existing:
                    continue
                existing.add(d.error_id)
            row = d.error_row(self._payload_cap, outcome.dlq_coordinates.get(d.error_id))
            hits.append(hit_for(d.problem, row))
            rows.append(self._errors.row([row[c] for c in columns]))
            kept.append(d)
            counters[(d.project_id, d.collection, _hour(d.failed_at))][1] += 1
        inserted = self._errors.execute(conn, rows)
        if inserted != len(rows) and not careful:
            raise _Redelivered
        # Only rows inserted just now are counted: a redelivery counts nothing twice.
        now = datetime.now(UTC)
        recorded = record_hits(conn, hits, now, self._max_problems)
        notes = []
        for d in kept:
            problem_id = recorded.problem_id(d.error_id, d.problem.problem_id)
            if recorded.mutes(d.error_id):
                continue  # muted: the problem is ignored
            payload = d.notification()
            payload["problem_id"] = problem_id
            notes.append(self._notes.row([d.project_id, "ingest.failed", payload, d.failed_at]))
        notes += [
            self._notes.row([project_id, kind, payload, now])
            for project_id, kind, payload in recorded.notifications
        ]
        self._notes.execute(conn, notes)
        return inserted

    @staticmethod
    def _existing(conn, column, ids: list[str]) -> set[str]:  # noqa: ANN001
        found: set[str] = set()
        for chunk in _chunks(ids):
            found.update(conn.scalars(select(column).where(column.in_(chunk))))
        return found

    def _bump_counters(self, conn, counters) -> None:  # noqa: ANN001
        # Nothing is dropped by policy yet (a paused stream waits, it is not dropped), so
        # received = accepted + rejected; the dropped column is there for future policies.
        table = IngestCounter.__table__
        # In key order: two batches upserting the same counters lock them in the same order,
        # so they cannot deadlock on PostgreSQL.
        for (project_id, collection, bucket), (acc, rej) in sorted(counters.items()):
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
