"""Dead-letter records: the original bytes, key and headers plus the contract's error headers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import orjson

from app.contract import headers as h
from app.contract.errors import Rejection
from app.contract.timestamps import iso_ms as contract_iso_ms
from app.contract.topics import dlq_topic, parse_inbound
from app.ingest.pipeline import RawRecord

MESSAGE_CAP = 1024
DETAIL_CAP = 4096
# Topic-level limit for DLQ topics: the largest record the broker accepts (1,048,588 bytes)
# plus the error headers, with room to spare.
DLQ_MAX_MESSAGE_BYTES = 2 * 1024 * 1024
# What one dead letter may carry (key + value + headers), leaving room for the record batch
# framing and the error headers. A record compressed on the inbound topic can be far larger
# once decompressed, so a value over this is omitted, not produced to be refused forever.
DLQ_RECORD_BUDGET = DLQ_MAX_MESSAGE_BYTES - 128 * 1024
# The original headers are kept up to this total; more are dropped (HEADERS_OMITTED).
DLQ_HEADERS_CAP = 256 * 1024
# A key kept on a dead letter the DLQ refused in its normal form.
REFUSED_KEY_CAP = 16 * 1024


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


# Every dead letter of a batch shares its failed_at: format it once.
iso_ms = lru_cache(maxsize=64)(contract_iso_ms)


@lru_cache(maxsize=4096)
def _target(topic: str) -> tuple[str, str, str, bytes]:
    """(project, collection, DLQ topic, customer topic name) of a backend topic; few per batch."""
    parsed = parse_inbound(topic)
    if parsed:
        project_id, collection = parsed
        customer = collection
    else:
        # Not a well-formed inbound topic: keep what we can name.
        project_id, _, collection = topic.removeprefix("in.").partition(".")
        customer = topic
    return project_id, collection, dlq_topic(project_id, collection), customer.encode()


@lru_cache(maxsize=4096)  # rejections of one bad producer repeat the same few messages
def _message_bytes(message: str) -> bytes:
    return cap_text(message, MESSAGE_CAP).encode()


@dataclass(slots=True)
class DeadLetter:
    error_id: str
    topic: str  # backend DLQ topic
    project_id: str
    collection: str
    record: RawRecord
    rejection: Rejection
    failed_at: datetime

    def headers(self) -> list[tuple[str, bytes]]:
        return list(self.record.headers) + self._error_headers()

    def dlq_record(self, refused: str | None = None) -> DlqRecord:
        """What is produced to the DLQ topic: the original key, value and headers when they fit,
        else a bounded form whose headers say what was left out and why.

        ``refused``: the DLQ producer or broker refused the normal form for this record (the
        reason); the letter is then reduced to an empty value and the error headers, so it can
        never block the batch.
        """
        record = self.record
        value = record.value
        key = record.key
        extra: list[tuple[str, bytes]] = []
        original = list(record.headers)
        size = _headers_size(original)
        if original and (refused is not None or size > DLQ_HEADERS_CAP):
            extra.append((h.HEADERS_OMITTED, b"%d headers, %d bytes" % (len(original), size)))
            original = []
        if refused is not None and key is not None and len(key) > REFUSED_KEY_CAP:
            key = None
        reason = None
        if value is None:
            reason = "null value (tombstone)"
        elif refused is not None:
            reason = f"refused by the DLQ topic: {refused}"
        elif len(key or b"") + len(value) + size > DLQ_RECORD_BUDGET:
            reason = (
                f"value of {len(value)} bytes is larger than a dead letter may carry "
                f"({DLQ_RECORD_BUDGET} bytes with key and headers)"
            )
        if reason is not None:
            raw = value or b""
            extra += [
                (h.VALUE_OMITTED, cap_text(reason, MESSAGE_CAP).encode()),
                (h.VALUE_SIZE, b"%d" % len(raw)),
                (h.VALUE_SHA256, hashlib.sha256(raw).hexdigest().encode()),
            ]
            value = b""
        # aiokafka refuses a record with neither key nor value: the value is never None here.
        return DlqRecord(key, value or b"", original + self._error_headers() + extra)

    def _error_headers(self) -> list[tuple[str, bytes]]:
        record, rejection = self.record, self.rejection
        ts = record.timestamp_ms
        return [
            (h.ERROR_CODE, rejection.code.encode()),
            (h.ERROR_STAGE, rejection.stage.encode()),
            (h.ERROR_MESSAGE, _message_bytes(rejection.message)),
            (h.ERROR_DETAIL, capped_detail(rejection.detail)),
            (h.ERROR_ID, self.error_id.encode()),
            (h.ORIGINAL_TOPIC, _target(record.topic)[3]),
            (h.ORIGINAL_PARTITION, b"%d" % record.partition),
            (h.ORIGINAL_OFFSET, b"%d" % record.offset),
            (h.ORIGINAL_TIMESTAMP, b"%d" % ts if ts is not None else b""),
            (h.FAILED_AT, iso_ms(self.failed_at).encode()),
        ]


@dataclass(slots=True)
class DlqRecord:
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes | None]]


def _headers_size(headers: list[tuple[str, bytes | None]]) -> int:
    return sum(len(k.encode(errors="replace")) + len(v or b"") + 8 for k, v in headers)


def dead_letter(record: RawRecord, rejection: Rejection, failed_at: datetime) -> DeadLetter:
    project_id, collection, dlq, _ = _target(record.topic)
    return DeadLetter(
        error_id=error_id_for(record.topic, record.partition, record.offset),
        topic=dlq,
        project_id=project_id,
        collection=collection,
        record=record,
        rejection=rejection,
        failed_at=failed_at,
    )
