"""Dead-letter records: the original bytes, key and headers plus the contract's error headers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from app.ingest import headers as h
from app.ingest.pipeline import RawRecord
from app.ingest.rejection import Rejection
from app.kafka.topics import dlq_topic, parse_inbound

MESSAGE_CAP = 1024
DETAIL_CAP = 4096
# Topic-level limit for DLQ topics: the largest record the broker accepts (1,048,588 bytes)
# plus the error headers, with room to spare.
DLQ_MAX_MESSAGE_BYTES = 2 * 1024 * 1024


def error_id_for(topic: str, partition: int, offset: int) -> str:
    """Deterministic, so a redelivered record keeps its error id in every place it appears."""
    return hashlib.blake2b(f"{topic}/{partition}/{offset}".encode(), digest_size=16).hexdigest()


def cap_text(text: str, limit: int) -> str:
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode(errors="ignore") + "..."


def capped_detail(detail: dict) -> bytes:
    encoded = orjson.dumps(detail, default=str)
    if len(encoded) <= DETAIL_CAP:
        return encoded
    return orjson.dumps({"truncated": True, "size": len(encoded)})


def iso_ms(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


@dataclass(frozen=True)
class DeadLetter:
    error_id: str
    topic: str  # backend DLQ topic
    project_id: str
    collection: str
    record: RawRecord
    rejection: Rejection
    failed_at: datetime

    def headers(self) -> list[tuple[str, bytes]]:
        parsed = parse_inbound(self.record.topic)
        customer_topic = parsed[1] if parsed else self.record.topic
        ts = self.record.timestamp_ms
        out = list(self.record.headers)
        out += [
            (h.ERROR_CODE, self.rejection.code.encode()),
            (h.ERROR_STAGE, self.rejection.stage.encode()),
            (h.ERROR_MESSAGE, cap_text(self.rejection.message, MESSAGE_CAP).encode()),
            (h.ERROR_DETAIL, capped_detail(self.rejection.detail)),
            (h.ERROR_ID, self.error_id.encode()),
            (h.ORIGINAL_TOPIC, customer_topic.encode()),
            (h.ORIGINAL_PARTITION, str(self.record.partition).encode()),
            (h.ORIGINAL_OFFSET, str(self.record.offset).encode()),
            (h.ORIGINAL_TIMESTAMP, (str(ts) if ts is not None else "").encode()),
            (h.FAILED_AT, iso_ms(self.failed_at).encode()),
        ]
        return out


def dead_letter(record: RawRecord, rejection: Rejection, failed_at: datetime) -> DeadLetter:
    parsed = parse_inbound(record.topic)
    if parsed:
        project_id, collection = parsed
    else:
        # Not a well-formed inbound topic: keep what we can name.
        rest = record.topic.removeprefix("in.")
        project_id, _, collection = rest.partition(".")
    return DeadLetter(
        error_id=error_id_for(record.topic, record.partition, record.offset),
        topic=dlq_topic(project_id, collection),
        project_id=project_id,
        collection=collection,
        record=record,
        rejection=rejection,
        failed_at=failed_at,
    )
