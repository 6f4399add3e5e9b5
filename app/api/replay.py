"""Replay: re-produce rejected events into their inbound topic once the customer fixed the cause.

What travels again is what came in: the original value, key and headers (the error headers
of the DLQ copy stripped), plus
- ``inbound.replay.count``: how many times this event has been replayed; refused beyond the
  cap, so a replay that fails again cannot loop;
- ``inbound.replay.source``: "topic/partition/offset" of the original record, from which the
  worker derives the original keen.id, so a replayed event can never be stored twice;
- ``inbound.replay.error_id``: the error row the outcome belongs to;
- ``inbound.fix.id``: only when a fix (app/api/fixes) replays its patched value instead of the
  original bytes; everything else travels as in a plain replay.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from app.api.error_views import decode_headers
from app.api.http_rejections import check_collection
from app.contract import headers as h
from app.contract.timestamps import iso_ms
from app.contract.topics import inbound_topic, parse_inbound, parse_record_source, record_source
from app.kafka.client_options import KafkaClientOptions
from app.store.models import IngestError

# Headers Inbound itself wrote about the failure or an earlier replay: not part of the original.
# A fix's id is stripped too: a row a fixed replay left is replayed later as itself.
_STRIPPED_PREFIXES = ("inbound.error.", "inbound.original.", "inbound.replay.", "inbound.fix.")
_STRIPPED = {h.FAILED_AT}


@dataclass(frozen=True)
class Prepared:
    error_id: str
    topic: str
    value: bytes | None
    key: bytes | None
    headers: list[tuple[str, bytes]]
    count: int
    fix_id: str | None = None


class Refusal(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _count_in(headers: list[tuple[str, bytes]]) -> int:
    for name, value in headers:
        if name == h.REPLAY_COUNT:
            try:
                return int(value.decode())
            except (UnicodeDecodeError, ValueError):
                return 0
    return 0


def target_topic(row: IngestError) -> str:
    parsed = parse_inbound(row.source_topic or "")
    if parsed and parsed[0] == row.project_id:
        return row.source_topic  # type: ignore[return-value]
    if check_collection(row.collection) is not None:
        # The name itself was the error: there is no inbound topic to replay into.
        raise Refusal("collection_name_invalid")
    return inbound_topic(row.project_id, row.collection)


async def fetch_dlq_record(
    kafka: KafkaClientOptions, topic: str, partition: int, offset: int, timeout: float = 10.0
) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]] | None:
    """Read one record back from a DLQ topic (for a payload larger than the error-table cap)."""
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **kafka.aiokafka())
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=1)
            for record in batch.get(tp, []):
                if record.offset == offset:
                    return record.value, record.key, list(record.headers or [])
                return None  # compacted or deleted: the next offset is someone else
        return None
    finally:
        await consumer.stop()


def replays_done(row: IngestError, stored_headers: list[tuple[str, bytes]]) -> int:
    """How often this event has been replayed already (the row's count or the record's)."""
    return max(row.replay_count or 0, _count_in(stored_headers))


def stored_payload(row: IngestError) -> bytes:
    """The complete original bytes as the error table holds them; Refusal when the table
    keeps only a truncated copy or the copy does not match the original's digest."""
    value = row.payload
    if value is None or len(value) < row.payload_size:
        raise Refusal("payload_unavailable")
    if hashlib.sha256(value).hexdigest() != row.payload_sha256:
        raise Refusal("payload_mismatch")
    return value


def replay_headers(
    row: IngestError, headers: list[tuple[str, bytes]], count: int, fix_id: str | None = None
) -> list[tuple[str, bytes]]:
    """The headers a replay carries: the original's, minus what Inbound wrote about the
    failure, plus the writing key, the replay count, the error row, the original source and
    (for a fix) the fix's id."""
    stored_headers = decode_headers(row.headers)
    kept = [
        (name, v)
        for name, v in headers
        if not name.startswith(_STRIPPED_PREFIXES) and name not in _STRIPPED
    ]
    if row.key_id and not any(name == h.KEY_ID for name, _ in kept):
        kept.append((h.KEY_ID, row.key_id.encode()))
    kept.append((h.REPLAY_COUNT, str(count).encode()))
    kept.append((h.REPLAY_ERROR_ID, row.id.encode()))
    source = _original_source(row, stored_headers)
    if source:
        kept.append((h.REPLAY_SOURCE, source.encode()))
    if fix_id is not None:
        kept.append((h.FIX_ID, fix_id.encode()))
    return kept


async def prepare(
    row: IngestError,
    *,
    cap: int,
    kafka: KafkaClientOptions | None,
    patched: bytes | None = None,
    fix_id: str | None = None,
) -> Prepared:
    """What one replay of ``row`` produces. ``patched``: a fix's value to send instead of the
    original bytes (the fix patched the complete stored copy, so nothing is fetched)."""
    stored_headers = decode_headers(row.headers)
    done = replays_done(row, stored_headers)
    if done >= cap:
        raise Refusal("replay_cap_reached")
    topic = target_topic(row)
    key: bytes | None = row.record_key
    headers = stored_headers
    if patched is not None:
        sent = replay_headers(row, headers, done + 1, fix_id)
        return Prepared(row.id, topic, patched, key, sent, done + 1, fix_id)
    value: bytes | None = row.payload
    if value is None or len(value) < row.payload_size:
        # Over the table's cap: the DLQ copy holds the full original bytes.
        if not (kafka and row.dlq_topic and row.dlq_partition is not None):
            raise Refusal("payload_unavailable")
        fetched = await fetch_dlq_record(
            kafka, row.dlq_topic, row.dlq_partition, int(row.dlq_offset or 0)
        )
        if fetched is None:
            raise Refusal("payload_unavailable")
        value, key, headers = fetched
    if hashlib.sha256(value or b"").hexdigest() != row.payload_sha256:
        raise Refusal("payload_mismatch")
    return Prepared(row.id, topic, value, key, replay_headers(row, headers, done + 1), done + 1)


def _original_source(row: IngestError, stored_headers: list[tuple[str, bytes]]) -> str | None:
    """The first record of a replay chain: a replay that failed again is its own error row,
    at its own coordinates, but must keep naming the record the event first arrived as, or a
    later fix would store it under a second keen.id."""
    earlier = parse_record_source(h.last_header_text(stored_headers, h.REPLAY_SOURCE) or "")
    if earlier is not None:
        return record_source(*earlier)
    if row.source_topic and row.source_partition is not None and row.source_offset is not None:
        return record_source(row.source_topic, row.source_partition, row.source_offset)
    return None


def mark_replayed(row: IngestError, prepared: Prepared, meta: Any, actor: str) -> None:
    now = datetime.now(UTC)
    row.status = "replayed"
    row.replay_count = prepared.count
    # The worker fills in the result ("accepted" or the new rejection) under the same error_id.
    pending = {
        "status": "pending",
        "replayed_at": iso_ms(now),
        "replayed_by": actor,
        "topic": prepared.topic,
        "partition": meta.partition,
        "offset": meta.offset,
        "replay_count": prepared.count,
    }
    if prepared.fix_id is not None:
        pending["fix_id"] = prepared.fix_id
    # The record is produced before this is written, so a fast worker may already have
    # reported the outcome of this very replay: keep its result rather than go back to pending.
    current = row.replay_outcome or {}
    reported = (
        current.get("status") in ("accepted", "rejected")
        and current.get("partition") == meta.partition
        and current.get("offset") == meta.offset
    )
    row.replay_outcome = {**pending, **current} if reported else pending
    row.updated_at = now
