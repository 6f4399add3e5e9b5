"""What a fix would do to one rejected event, without storing anything.

The stored original is patched (``apply_plan``) and the patched bytes go through the worker's
own pure pipeline (``app.ingest.pipeline.process``) as the replay would deliver them: the
original backend topic, partition, offset, record timestamp and key, and the headers the
replay would carry (``inbound.key_id``, so the key's access is checked and its autofill
applies; ``inbound.replay.source``, so the keen.id is the original record's). The project and
key come from the database as the worker reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.api.error_views import decode_headers
from app.api.fixes.operations import ApplyFailure, FixPlan, apply_plan_with_document
from app.api.replay import Refusal, replay_headers, replays_done, stored_payload, target_topic
from app.contract import headers as h
from app.contract.errors import Rejection
from app.ingest.addons import AddonRegistry
from app.ingest.lookup import DbLookup
from app.ingest.pipeline import Lookup, RawRecord, process, process_decoded
from app.store.models import IngestError

# Index of a failure that is not an operation's: the event cannot be replayed at all.
NOT_AN_OPERATION = -1


@dataclass(frozen=True, slots=True)
class Outcome:
    """``accepted`` (with the keen.id the stored event would get, None when the original
    record's coordinates are unknown), ``rejected`` (code, message) or ``failed`` (the
    operation's index, or -1, and why). ``patched``: the bytes a replay would send."""

    status: str
    patched: bytes | None = None
    keen_id: str | None = None
    code: str | None = None
    message: str | None = None
    index: int | None = None
    reason: str | None = None


@lru_cache(maxsize=2)
def shared_addons(geoip_database: Path | None) -> AddonRegistry:
    """One registry per process, as the worker holds one: building it costs about a second."""
    return AddonRegistry(geoip_database)


def _timestamp_ms(at: datetime | None) -> int | None:
    if at is None:
        return None
    aware = at.replace(tzinfo=UTC) if at.tzinfo is None else at
    return int(aware.timestamp() * 1000)


def _record(
    row: IngestError, value: bytes, topic: str, count: int, stored: list[tuple[str, bytes]]
) -> RawRecord:
    return RawRecord(
        topic=topic,
        partition=row.source_partition or 0,
        offset=row.source_offset or 0,
        timestamp_ms=_timestamp_ms(row.record_timestamp),
        key=row.record_key,
        value=value,
        headers=tuple(replay_headers(row, stored, count)),
    )


def preview_one(
    row: IngestError,
    plan: FixPlan,
    *,
    lookup: Lookup,
    addons: AddonRegistry,
    cap: int,
    now: datetime,
) -> Outcome:
    """The outcome of replaying ``row`` patched by ``plan``; never raises on hostile data."""
    return _preview(row, decode_headers(row.headers), plan, lookup, addons, cap, now)


def _preview(
    row: IngestError,
    stored: list[tuple[str, bytes]],
    plan: FixPlan,
    lookup: Lookup,
    addons: AddonRegistry,
    cap: int,
    now: datetime,
) -> Outcome:
    """``preview_one`` with the row's stored headers decoded once by the caller."""
    try:
        original = stored_payload(row)
        done = replays_done(row, stored)
        if done >= cap:
            raise Refusal("replay_cap_reached")
        topic = target_topic(row)
    except Refusal as refusal:
        return Outcome("failed", index=NOT_AN_OPERATION, reason=refusal.reason)
    patched = apply_plan_with_document(plan, original)
    if isinstance(patched, ApplyFailure):
        return Outcome("failed", index=patched.index, reason=patched.reason)
    value, doc = patched
    record = _record(row, value, topic, done + 1, stored)
    # The patched object goes to the pipeline as it is: it is what decoding ``value`` would
    # give (orjson reads its own output back unchanged), and it is not used again here.
    # Anything but an object (or replace_payload's unparsed text) takes the full path.
    if type(doc) is dict:
        result = process_decoded(record, doc, lookup, now, addons)
    else:
        result = process(record, lookup, now, addons)
    if isinstance(result, Rejection):
        return Outcome("rejected", value, code=result.code, message=result.message)
    known = h.last_header(record.headers, h.REPLAY_SOURCE) is not None
    return Outcome("accepted", value, keen_id=result.keen_id if known else None)


def _lookup(
    sessions: sessionmaker[Session],
    rows: Sequence[IngestError],
    stored: Sequence[list[tuple[str, bytes]]],
) -> DbLookup:
    lookup = DbLookup(sessions)
    keys = set()
    for row, headers in zip(rows, stored, strict=True):
        named = h.last_header_text(headers, h.KEY_ID) or row.key_id
        if named and "\x00" not in named:
            keys.add(named)
    lookup.prefetch({row.project_id for row in rows}, keys)
    return lookup


# What the preview and the replay path (app.api.replay.prepare) read of an error row.
ROW_COLUMNS = (
    "id", "project_id", "collection", "problem_id", "source_topic", "source_partition",
    "source_offset", "record_timestamp", "record_key", "payload", "payload_size",
    "payload_sha256", "headers", "key_id", "replay_count", "dlq_topic", "dlq_partition",
    "dlq_offset", "created_at",
)  # fmt: skip


def load_rows(
    sessions: sessionmaker[Session], where: list[ColumnElement], limit: int
) -> tuple[int, list[Any]]:
    """``replay_service.load_errors`` (how many match, the first ``limit`` in the same order)
    as plain rows of ``ROW_COLUMNS`` rather than ORM objects: read-only, attribute access as
    on an ``IngestError``, about a third of the cost per row (no identity map, no instance
    state, no JSON decoding of the columns nobody reads here)."""
    table = IngestError.__table__
    with sessions() as session:
        matched = session.scalar(select(func.count()).select_from(table).where(*where))
        rows = session.execute(
            select(*(table.c[name] for name in ROW_COLUMNS))
            .where(*where)
            .order_by(table.c.created_at, table.c.id)
            .limit(limit)
        ).all()
        return int(matched or 0), list(rows)


def lookup_for(sessions: sessionmaker[Session], rows: Sequence[IngestError]) -> DbLookup:
    """The projects and keys these rows' replays name, read once as the worker reads them."""
    return _lookup(sessions, rows, [decode_headers(row.headers) for row in rows])


def preview_rows(
    rows: Sequence[IngestError],
    plan: FixPlan,
    *,
    sessions: sessionmaker[Session],
    addons: AddonRegistry,
    cap: int,
    now: datetime | None = None,
) -> list[Outcome]:
    """Each row's outcome, in order (blocking: run it off the event loop)."""
    if not rows:
        return []
    stored = [decode_headers(row.headers) for row in rows]
    lookup = _lookup(sessions, rows, stored)
    at = now or datetime.now(UTC)
    return [
        _preview(row, headers, plan, lookup, addons, cap, at)
        for row, headers in zip(rows, stored, strict=True)
    ]
