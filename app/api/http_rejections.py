"""Events the HTTP API refuses before Kafka: checked up front, recorded like any rejection.

A refused event gets an error-table row (stage ``http``), counts in reconciliation, and goes to
the collection's DLQ topic when Kafka is reachable, so the customer finds it where every other
rejected event is; the response carries the same ``error_id``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.api.counters import count_rejected
from app.api.producer import KafkaProducerHolder
from app.contract import headers as h
from app.contract.collections import collection_problem
from app.contract.errors import Rejection
from app.contract.timestamps import iso_ms
from app.contract.topics import FALLBACK_DLQ_COLLECTION, dlq_topic
from app.store.models import IngestError

log = logging.getLogger(__name__)

MAX_EVENT_BYTES = 900 * 1024
# Keen's error names for the snake_case ingest codes, for clients that switch on them.
KEEN_NAMES = {
    "event_too_large": "InvalidEventError",
    "invalid_utf8": "InvalidEventError",
    "invalid_json": "InvalidEventError",
    "not_an_object": "InvalidEventError",
    "invalid_collection_name": "InvalidCollectionNameError",
    "collection_name_too_long": "InvalidCollectionNameError",
}


def check_collection(name: str) -> Rejection | None:
    problem = collection_problem(name)
    if problem is None:
        return None
    return Rejection(problem.code, "http", problem.message, problem.detail)


def check_body(raw: bytes) -> tuple[dict | None, Rejection | None]:
    """The decoded event, or why it cannot be one."""
    if len(raw) > MAX_EVENT_BYTES:
        return None, Rejection(
            "event_too_large",
            "http",
            f"An event is at most {MAX_EVENT_BYTES} bytes.",
            {"size": len(raw), "limit": MAX_EVENT_BYTES},
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, Rejection(
            "invalid_utf8", "http", "The body is not valid UTF-8.", {"position": exc.start}
        )
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return None, Rejection("invalid_json", "http", f"The body is not JSON: {exc}"[:1000])
    if not isinstance(value, dict):
        return None, Rejection(
            "not_an_object", "http", "An event is a JSON object.", {"type": type(value).__name__}
        )
    return value, None


@dataclass(frozen=True)
class Refused:
    error_id: str
    rejection: Rejection

    def body(self) -> dict:
        """The HTTP error body: snake_case code (the contract), Keen's name beside it."""
        return {
            "error_code": self.rejection.code,
            "name": KEEN_NAMES.get(self.rejection.code, "InvalidEventError"),
            "message": self.rejection.message,
            "error_id": self.error_id,
        }


async def refuse(
    *,
    sessions: sessionmaker[Session],
    producer: KafkaProducerHolder,
    project_id: str,
    collection: str,
    key_id: str,
    payload: bytes,
    rejection: Rejection,
    payload_cap: int,
) -> Refused:
    """Record a refused event: DLQ record (if Kafka answers), error row, counters."""
    error_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    topic_collection = collection if not check_collection(collection) else FALLBACK_DLQ_COLLECTION
    dlq = dlq_topic(project_id, topic_collection)
    record_headers = [
        (h.KEY_ID, key_id.encode()),
        (h.ERROR_CODE, rejection.code.encode()),
        (h.ERROR_STAGE, b"http"),
        (h.ERROR_MESSAGE, rejection.message.encode()[:1024]),
        (h.ERROR_DETAIL, orjson.dumps(rejection.detail)[:4096]),
        (h.ERROR_ID, error_id.encode()),
        (h.ORIGINAL_TOPIC, collection.encode()[:300]),
        (h.ORIGINAL_TIMESTAMP, str(int(now.timestamp() * 1000)).encode()),
        (h.FAILED_AT, iso_ms(now).encode()),
    ]
    coords: tuple[str, int, int] | None = None
    if producer.configured and len(payload) <= MAX_EVENT_BYTES + 64 * 1024:
        try:
            meta = await producer.send(dlq, payload, headers=record_headers, timeout=5.0)
            coords = (dlq, meta.partition, meta.offset)
        except Exception:  # the row below still records it; the DLQ copy is a convenience
            log.warning("could not write HTTP rejection %s to %s", error_id, dlq, exc_info=True)
    row = IngestError(
        id=error_id,
        project_id=project_id,
        collection=collection[:300],
        code=rejection.code,
        stage="http",
        message=rejection.message[:1024],
        detail=rejection.detail,
        payload=payload[:payload_cap],
        payload_size=len(payload),
        payload_sha256=hashlib.sha256(payload).hexdigest(),
        headers=[[h.KEY_ID, base64.b64encode(key_id.encode()).decode()]],
        key_id=key_id,
        status="open",
        replay_count=0,
        dlq_topic=coords[0] if coords else None,
        dlq_partition=coords[1] if coords else None,
        dlq_offset=coords[2] if coords else None,
        created_at=now,
        updated_at=now,
        record_timestamp=now,
    )

    def _store() -> None:
        with sessions() as session, session.begin():
            session.add(row)
            count_rejected(session, project_id, collection, now)

    # The database driver blocks: keep it off the event loop.
    await run_in_threadpool(_store)
    return Refused(error_id=error_id, rejection=rejection)
