"""Batch persistence is idempotent on SQLite and PostgreSQL: a redelivered batch adds nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from app.contract.errors import Rejection
from app.ingest.dlq import dead_letter
from app.ingest.persist import BatchOutcome, BatchWriter
from app.ingest.pipeline import Accepted, RawRecord
from app.store.db import make_engine
from app.store.models import Event, IngestCounter, IngestError, Notification, Problem

PID = "ab" * 12


def _outcome(now: datetime) -> BatchOutcome:
    accepted = [
        Accepted(
            project_id=PID,
            collection="c",
            keen_id=f"{i:024x}",
            keen_timestamp=now,
            created_at=now,
            body={"n": i, "keen": {"id": f"{i:024x}"}},
        )
        for i in range(5)
    ]
    record = RawRecord(
        topic=f"in.{PID}.c",
        partition=0,
        offset=99,
        timestamp_ms=1_700_000_000_000,
        key=b"k",
        value=b"{bad",
        headers=(("inbound.key_id", b"key1"), ("h", b"v")),
    )
    letter = dead_letter(record, Rejection("invalid_json", "decode", "not JSON", {"pos": 1}), now)
    return BatchOutcome(
        accepted=accepted, rejected=[letter], dlq_coordinates={letter.error_id: (0, 7)}
    )


def test_writing_the_same_batch_twice_stores_and_counts_once(db_url: str) -> None:
    engine = make_engine(db_url)
    writer = BatchWriter(engine, payload_cap=3)
    now = datetime.now(UTC)
    assert writer.write(_outcome(now)) == (5, 1)
    assert writer.write(_outcome(now)) == (0, 0)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Event)) == 5
        kinds = conn.scalars(select(Notification.type).order_by(Notification.type)).all()
        # One ingest.failed for the one error, one problem.created for its new problem.
        assert kinds == ["ingest.failed", "problem.created"]
        assert conn.scalar(select(func.sum(Problem.count))) == 1
        error = conn.execute(select(IngestError)).one()
        counter = conn.execute(select(IngestCounter)).one()
    assert error.payload == b"{ba" and error.payload_size == 4  # capped, full size kept
    assert error.key_id == "key1" and error.dlq_offset == 7 and error.status == "open"
    assert error.headers[0][0] == "inbound.key_id"
    assert (counter.received, counter.accepted, counter.rejected) == (6, 5, 1)
    engine.dispose()


def test_a_partly_stored_batch_adds_only_the_missing_rows(db_url: str) -> None:
    engine = make_engine(db_url)
    writer = BatchWriter(engine, payload_cap=1024)
    now = datetime.now(UTC).replace(microsecond=123000)
    full = _outcome(now)
    first = BatchOutcome(accepted=full.accepted[:3])
    assert writer.write(first) == (3, 0)
    assert writer.write(full) == (2, 1)
    with engine.connect() as conn:
        counter = conn.execute(select(IngestCounter)).one()
        stored = conn.execute(select(Event).order_by(Event.keen_id)).all()
    assert (counter.received, counter.accepted, counter.rejected) == (6, 5, 1)
    # Values written through the driver read back through the ORM types unchanged.
    assert [r.body["n"] for r in stored] == [0, 1, 2, 3, 4]
    assert stored[0].keen_timestamp.replace(tzinfo=UTC) == now
    engine.dispose()
