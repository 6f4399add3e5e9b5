"""One rejected record as Inbound records it: its dead letter and its error row
(docs/design.md, "A dead letter").

The worker and the HTTP API both build rejections here, so the two paths cannot drift apart in
headers, caps or timestamp format. Pure: no Kafka, no database; the callers produce and store.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import orjson

from app.contract import headers as h
from app.contract.errors import Rejection
from app.contract.fingerprint import ProblemKey, problem_of
from app.contract.headers import Headers, last_header_text
from app.contract.timestamps import iso_ms

MESSAGE_CAP = 1024
DETAIL_CAP = 4096
# The error table's width for names (collection, topics).
NAME_CAP = 300
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


def cap_text(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes, cut on a character boundary and marked with '...'."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode(errors="ignore") + "..."


def capped_detail(detail: dict) -> bytes:
    """The detail as JSON; one too large for its header says only how large it was, so the
    header is always valid JSON."""
    encoded = orjson.dumps(detail, default=str)
    if len(encoded) <= DETAIL_CAP:
        return encoded
    return orjson.dumps({"truncated": True, "size": len(encoded)})


def replay_count_of(headers: Headers) -> int:
    """How often the record was replayed before; 0 when the header is missing or malformed
    (headers are client data)."""
    text = last_header_text(headers, h.REPLAY_COUNT)
    try:
        return int(text) if text else 0
    except ValueError:
        return 0


# Every dead letter of a worker batch shares its failed_at, and one bad producer repeats the
# same few messages: both are formatted once.
_iso_ms = lru_cache(maxsize=64)(iso_ms)


@lru_cache(maxsize=4096)
def _message_bytes(message: str) -> bytes:
    return cap_text(message, MESSAGE_CAP).encode()


def _name_bytes(name: str) -> bytes:
    # Cut on a character boundary: a header value is read as UTF-8.
    raw = name.encode()
    return raw if len(raw) <= NAME_CAP else raw[:NAME_CAP].decode(errors="ignore").encode()


@dataclass(slots=True)
class DlqRecord:
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes | None]]


@dataclass(slots=True)
class RejectedRecord:
    """Everything Inbound keeps about one rejected record; build it with ``build_rejection``."""

    error_id: str
    rejection: Rejection
    failed_at: datetime
    project_id: str
    collection: str
    dlq_topic: str  # backend DLQ topic
    original_topic: str  # the name the customer knows the record's topic by
    # Backend coordinates; None for a record refused before it reached Kafka.
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    replay_count: int
    problem: ProblemKey  # the problem the rejection belongs to (app/contract/fingerprint.py)

    def dlq_record(self, refused: str | None = None) -> DlqRecord:
        """What is produced to the DLQ topic: the original key, value and headers when they fit,
        else a bounded form whose headers say what was left out and why.

        ``refused``: the DLQ producer or broker refused the normal form for this record (the
        reason); the letter is then reduced to an empty value and the error headers, so it can
        never block the batch.
        """
        value = self.value
        key = self.key
        extra: list[tuple[str, bytes | None]] = []
        original = list(self.headers)
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

    def _error_headers(self) -> list[tuple[str, bytes | None]]:
        rejection, ts = self.rejection, self.timestamp_ms
        found: list[tuple[str, bytes | None]] = [
            (h.ERROR_CODE, rejection.code.encode()),
            (h.ERROR_STAGE, rejection.stage.encode()),
            (h.ERROR_MESSAGE, _message_bytes(rejection.message)),
            (h.ERROR_DETAIL, capped_detail(rejection.detail)),
            (h.ERROR_ID, self.error_id.encode()),
            (h.ORIGINAL_TOPIC, _name_bytes(self.original_topic)),
        ]
        # A record refused before Kafka has no partition or offset to name.
        if self.source_partition is not None:
            found.append((h.ORIGINAL_PARTITION, b"%d" % self.source_partition))
        if self.source_offset is not None:
            found.append((h.ORIGINAL_OFFSET, b"%d" % self.source_offset))
        found += [
            (h.ORIGINAL_TIMESTAMP, b"%d" % ts if ts is not None else b""),
            (h.FAILED_AT, _iso_ms(self.failed_at).encode()),
        ]
        return found

    def error_row(self, payload_cap: int, dlq_at: tuple[int, int] | None) -> dict:
        """The ``ingest_errors`` row, by column name. ``dlq_at``: (partition, offset) of the
        dead letter, None when it is not in the DLQ."""
        value = self.value or b""
        ts = self.timestamp_ms
        headers = self.headers
        return {
            "id": self.error_id,
            "project_id": self.project_id,
            "collection": no_nul(self.collection[:NAME_CAP]),
            "code": self.rejection.code,
            "stage": self.rejection.stage,
            "message": no_nul(cap_text(self.rejection.message, MESSAGE_CAP)),
            "detail": json_no_nul(self.rejection.detail),
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "record_timestamp": datetime.fromtimestamp(ts / 1000, UTC) if ts and ts > 0 else None,
            "payload": value[:payload_cap],
            "payload_size": len(value),
            "payload_sha256": hashlib.sha256(value).hexdigest(),
            "record_key": self.key,
            "headers": [[no_nul(k), base64.b64encode(v or b"").decode()] for k, v in headers],
            "key_id": no_nul(last_header_text(headers, h.KEY_ID)),
            "status": "open",
            "replay_count": self.replay_count,
            "dlq_topic": self.dlq_topic if dlq_at else None,
            "dlq_partition": dlq_at[0] if dlq_at else None,
            "dlq_offset": dlq_at[1] if dlq_at else None,
            "problem_id": self.problem.problem_id,
            "created_at": self.failed_at,
            "updated_at": self.failed_at,
        }

    def notification(self) -> dict:
        """The ``ingest.failed`` payload webhooks carry."""
        return json_no_nul(
            {
                "error_id": self.error_id,
                "problem_id": self.problem.problem_id,
                "code": self.rejection.code,
                "stage": self.rejection.stage,
                "collection": self.collection,
                "message": cap_text(self.rejection.message, MESSAGE_CAP),
                "created_at": _iso_ms(self.failed_at),
            }
        )


def build_rejection(
    rejection: Rejection,
    *,
    error_id: str,
    failed_at: datetime,
    project_id: str,
    collection: str,
    dlq_topic: str,
    original_topic: str,
    source: tuple[str, int, int] | None,
    timestamp_ms: int | None,
    key: bytes | None,
    value: bytes | None,
    headers: tuple[tuple[str, bytes | None], ...],
    replay_count: int,
) -> RejectedRecord:
    """The rejection of one record. ``source``: its backend (topic, partition, offset), None
    when it never reached Kafka; ``headers``: the original ones, kept on the dead letter."""
    topic, partition, offset = source if source is not None else (None, None, None)
    # Fingerprinted as the error row stores the names, so stored rows give the same id.
    stored_collection = no_nul(collection[:NAME_CAP]) or ""
    return RejectedRecord(
        error_id=error_id,
        rejection=rejection,
        failed_at=failed_at,
        project_id=project_id,
        collection=collection,
        dlq_topic=dlq_topic,
        original_topic=original_topic,
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        timestamp_ms=timestamp_ms,
        key=key,
        value=value,
        headers=headers,
        replay_count=replay_count,
        problem=problem_of(project_id, stored_collection, rejection.code, rejection.detail),
    )


def no_nul(text: str | None) -> str | None:
    """PostgreSQL text and JSONB refuse NUL; a header name or key id may carry one (client data),
    and a record must never be able to make its batch fail forever."""
    return text.replace("\x00", "\ufffd") if text and "\x00" in text else text


def json_no_nul(detail: dict) -> dict:
    """The same for a rejection's detail, which may quote client data (a key id, a name)."""
    raw = orjson.dumps(detail, default=str)
    # The bytes only say "maybe": the text \u0000 (a backslash, then "u0000") encodes to them
    # too, and must be stored as it was sent (the stored row fingerprints to its problem).
    return _without_nul(orjson.loads(raw)) if b"\\u0000" in raw else detail


def _without_nul(value: object) -> object:
    if type(value) is str:
        return value.replace("\x00", "\ufffd")
    if type(value) is dict:
        return {k.replace("\x00", "\ufffd"): _without_nul(v) for k, v in value.items()}
    if type(value) is list:
        return [_without_nul(v) for v in value]
    return value


def _headers_size(headers: list[tuple[str, bytes | None]]) -> int:
    return sum(len(k.encode(errors="replace")) + len(v or b"") + 8 for k, v in headers)
