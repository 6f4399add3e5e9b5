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

from sqlalchemy.orm import Session, sessionmaker

from app.api.error_views import decode_headers
from app.api.replay import Refusal, replay_headers, replays_done, stored_payload, target_topic
from app.contract import headers as h
from app.contract.errors import Rejection
from app.fixes.operations import ApplyFailure, FixPlan, apply_plan
from app.ingest.addons import AddonRegistry
from app.ingest.lookup import DbLookup
from app.ingest.pipeline import Lookup, RawRecord, process
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


def _record(row: IngestError, value: bytes, topic: str, count: int) -> RawRecord:
    return RawRecord(
        topic=topic,
        partition=row.source_partition or 0,
        offset=row.source_offset or 0,
        timestamp_ms=_timestamp_ms(row.record_timestamp),
        key=row.record_key,
        value=value,
        headers=tuple(replay_headers(row, decode_headers(row.headers), count)),
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
    try:
        original = stored_payload(row)
        done = replays_done(row, decode_headers(row.headers))
        if done >= cap:
            raise Refusal("replay_cap_reached")
        topic = target_topic(row)
    except Refusal as refusal:
        return Outcome("failed", index=NOT_AN_OPERATION, reason=refusal.reason)
    patched = apply_plan(plan, original)
    if isinstance(patched, ApplyFailure):
        return Outcome("failed", index=patched.index, reason=patched.reason)
    record = _record(row, patched, topic, done + 1)
    result = process(record, lookup, now, addons)
    if isinstance(result, Rejection):
        return Outcome("rejected", patched, code=result.code, message=result.message)
    known = h.last_header(record.headers, h.REPLAY_SOURCE) is not None
    return Outcome("accepted", patched, keen_id=result.keen_id if known else None)


def lookup_for(sessions: sessionmaker[Session], rows: Sequence[IngestError]) -> DbLookup:
    """The projects and keys these rows' replays name, read once as the worker reads them."""
    lookup = DbLookup(sessions)
    keys = set()
    for row in rows:
        named = h.last_header_text(decode_headers(row.headers), h.KEY_ID) or row.key_id
        if named and "\x00" not in named:
            keys.add(named)
    lookup.prefetch({row.project_id for row in rows}, keys)
    return lookup


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
    lookup = lookup_for(sessions, rows)
    at = now or datetime.now(UTC)
    return [preview_one(row, plan, lookup=lookup, addons=addons, cap=cap, now=at) for row in rows]
