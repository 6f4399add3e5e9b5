"""Step 6: the server-side ``keen`` object.

A client may send ``keen.timestamp`` (ISO-8601, normalised to UTC) and ``keen.addons``;
anything else under ``keen`` is refused as `reserved_property`. A null ``keen.timestamp`` or
``keen.addons`` is taken as absent (our choice: SDKs often serialise unset fields as null).

``keen.id`` is derived from the backend topic, partition and offset, so a record delivered
twice gets the same id and the store writes it once. A replayed record carries its
original coordinates in ``inbound.replay.source`` and keeps the original's id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from dateutil.parser import isoparse

from app.contract.errors import Rejection
from app.contract.headers import REPLAY_SOURCE, last_header
from app.contract.topics import parse_inbound, parse_record_source

if TYPE_CHECKING:
    from app.ingest.records import RawRecord

CLIENT_KEYS = frozenset({"timestamp", "addons"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class KeenFields:
    id: str
    timestamp: datetime
    created_at: datetime


def keen_id_for(topic: str, partition: int, offset: int) -> str:
    """24 lowercase hex characters, a pure function of the record's coordinates."""
    return hashlib.blake2b(f"{topic}/{partition}/{offset}".encode(), digest_size=12).hexdigest()


def format_timestamp(moment: datetime) -> str:
    """``2026-11-24T19:07:46.123Z``: UTC, milliseconds, four-digit year even before 1000."""
    utc = moment.astimezone(UTC) if moment.tzinfo is not UTC else moment
    return utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_timestamp(value: str) -> datetime | None:
    """An ISO-8601 string as an aware UTC datetime (naive means UTC), or None."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        # fromisoformat covers nearly every ISO form; dateutil catches the rest (24:00 etc).
        try:
            parsed = isoparse(value)
        except (ValueError, OverflowError):
            return None
    try:
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None  # an offset that pushes the moment outside years 1..9999


def _to_millis(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


def build_keen(event: dict[str, Any], record: RawRecord, now: datetime) -> KeenFields | Rejection:
    """Replace the client's ``keen`` object in `event` with the server's one."""
    created_at, created_text = _batch_clock(now)
    timestamp: datetime | None = None
    addons: Any = None
    client = event.get("keen", None)
    if client is not None or "keen" in event:
        if type(client) is not dict:
            return Rejection(
                "reserved_property",
                "validate",
                "The property 'keen' is reserved and must be an object holding only "
                "'timestamp' and 'addons'; rename your property.",
                {"path": "keen"},
            )
        unexpected = [name for name in client if name not in CLIENT_KEYS]
        if unexpected:
            return Rejection(
                "reserved_property",
                "validate",
                f"'keen.{unexpected[0][:256]}' is set by the server; under 'keen' send only "
                "'timestamp' and 'addons', and move other properties out of 'keen'.",
                {"path": f"keen.{unexpected[0][:256]}", "count": len(unexpected)},
            )
        supplied = client.get("timestamp")
        if supplied is not None:
            timestamp = parse_timestamp(supplied) if type(supplied) is str else None
            if timestamp is None:
                return Rejection(
                    "invalid_timestamp",
                    "validate",
                    "keen.timestamp is not an ISO-8601 date-time; send e.g. "
                    "'2026-11-24T19:07:46.123Z', or leave it out to use the time of receipt.",
                    {"path": "keen.timestamp", "value": str(supplied)[:100]},
                )
            timestamp = _to_millis(timestamp)
        addons = client.get("addons")
    if timestamp is None:
        timestamp = _record_time(record.timestamp_ms) or created_at

    keen_id = _replayed_id(record) or keen_id_for(record.topic, record.partition, record.offset)
    keen: dict[str, Any] = {
        "timestamp": format_timestamp(timestamp),
        "created_at": created_text,
        "id": keen_id,
    }
    if addons is not None:
        keen["addons"] = addons
    event["keen"] = keen
    return KeenFields(id=keen_id, timestamp=timestamp, created_at=created_at)


def _record_time(timestamp_ms: int | None) -> datetime | None:
    # Kafka uses -1 for "no timestamp"; anything out of datetime's range counts as absent.
    if timestamp_ms is None or timestamp_ms < 0:
        return None
    try:
        return _EPOCH + timedelta(milliseconds=timestamp_ms)
    except OverflowError:
        return None


_clock_cache: tuple[datetime, datetime, str] | None = None


def _batch_clock(now: datetime) -> tuple[datetime, str]:
    """`now` as UTC milliseconds, and its text; the worker passes one `now` per batch, so
    the conversion runs once per batch rather than once per event."""
    global _clock_cache
    cached = _clock_cache
    if cached is not None and cached[0] is now:
        return cached[1], cached[2]
    aware = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    created_at = _to_millis(aware)
    text = format_timestamp(created_at)
    _clock_cache = (now, created_at, text)
    return created_at, text


def _replayed_id(record: RawRecord) -> str | None:
    """The original record's id for a replay, when the header names a record of this project."""
    raw = last_header(record.headers, REPLAY_SOURCE)
    if not raw:
        return None
    try:
        parsed = parse_record_source(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    if parsed is None:
        return None
    topic, partition_no, offset_no = parsed
    source, here = parse_inbound(topic), parse_inbound(record.topic)
    # Only a trusted producer sets this header, but an id borrowed from another project's
    # topic could shadow that project's event in the store: never allow it.
    if source is None or here is None or source[0] != here[0] or partition_no < 0 or offset_no < 0:
        return None
    return keen_id_for(topic, partition_no, offset_no)
