"""Events the HTTP API refuses before Kafka: checked up front by the worker's own pure steps,
recorded like any rejection.

A refused event gets an error-table row (stage ``http``), counts in reconciliation, and goes to
the collection's DLQ topic when Kafka is reachable, so the customer finds it where every other
rejected event is; the response carries the same ``error_id``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.api.counters import count_rejected
from app.api.producer import KafkaProducerHolder
from app.contract import headers as h
from app.contract.collections import collection_problem
from app.contract.errors import Rejection
from app.contract.rejection import build_rejection, no_nul
from app.contract.topics import FALLBACK_DLQ_COLLECTION, dlq_topic, inbound_topic
from app.ingest.addons import AddonRegistry
from app.ingest.pipeline import RawRecord, validate
from app.ingest.steps.size import MAX_EVENT_BYTES as WORKER_MAX_EVENT_BYTES
from app.store.models import IngestError, Notification
from app.store.problem_counts import hit_for, record_hits

log = logging.getLogger(__name__)

# The worker's limit: an event over it is refused here with the worker's code.
MAX_EVENT_BYTES = WORKER_MAX_EVENT_BYTES
# Keen's error names for the snake_case ingest codes, for clients that switch on them.
KEEN_NAMES = {
    "event_too_large": "InvalidEventError",
    "empty_value": "InvalidEventError",
    "invalid_utf8": "InvalidEventError",
    "invalid_json": "InvalidEventError",
    "not_an_object": "InvalidEventError",
    "too_deeply_nested": "InvalidEventError",
    "invalid_property_value": "InvalidPropertyValueError",
    "invalid_collection_name": "InvalidCollectionNameError",
    "collection_name_too_long": "InvalidCollectionNameError",
    "invalid_property_name": "InvalidPropertyNameError",
    "reserved_property": "InvalidPropertyNameError",
    "invalid_timestamp": "InvalidPropertyValueError",
    "addon_error": "InvalidPropertyValueError",
}


def keen_name(code: str) -> str:
    return KEEN_NAMES.get(code, "InvalidEventError")


def check_collection(name: str) -> Rejection | None:
    problem = collection_problem(name)
    if problem is None:
        return None
    return Rejection(problem.code, "http", problem.message, problem.detail)


@lru_cache(maxsize=1)
def _addon_registry() -> AddonRegistry:
    # Only the add-ons' names and parameters are read here (syntax); built once per process.
    return AddonRegistry()


def check_event(project_id: str, collection: str, payload: bytes) -> Rejection | None:
    """The worker's own verdict on these bytes for this collection, as far as it needs no key
    (`app.ingest.pipeline.validate`); restamped stage ``http``, as every refusal here is."""
    record = RawRecord(
        topic=inbound_topic(project_id, collection),
        partition=0,
        offset=0,
        timestamp_ms=None,
        key=None,
        value=payload,
        headers=(),
    )
    found = validate(record, datetime.now(UTC), _addon_registry())
    return None if found is None else replace(found, stage="http")


@dataclass(frozen=True)
class Refused:
    error_id: str
    rejection: Rejection

    def body(self) -> dict:
        """The HTTP error body: snake_case code (the contract), Keen's name beside it."""
        return {
            "error_code": self.rejection.code,
            "name": keen_name(self.rejection.code),
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
    max_problems: int,
) -> Refused:
    """Record a refused event: DLQ record (if Kafka answers), error row, counters."""
    now = datetime.now(UTC)
    topic_collection = collection if not check_collection(collection) else FALLBACK_DLQ_COLLECTION
    rejected = build_rejection(
        rejection,
        error_id=uuid.uuid4().hex,
        failed_at=now,
        project_id=project_id,
        collection=collection,
        dlq_topic=dlq_topic(project_id, topic_collection),
        original_topic=collection,
        source=None,  # refused before Kafka: no backend coordinates
        timestamp_ms=int(now.timestamp() * 1000),
        key=None,
        value=payload,
        # What the worker would have found on the record: the key that wrote it.
        headers=((h.KEY_ID, key_id.encode()),),
        replay_count=0,
    )
    error_id = rejected.error_id
    dlq_at: tuple[int, int] | None = None
    if producer.configured and len(payload) <= MAX_EVENT_BYTES + 64 * 1024:
        record = rejected.dlq_record()
        try:
            meta = await producer.send(
                rejected.dlq_topic, record.value, headers=record.headers, timeout=5.0
            )
            dlq_at = (meta.partition, meta.offset)
        except Exception:  # the row below still records it; the DLQ copy is a convenience
            log.warning(
                "could not write HTTP rejection %s to %s",
                error_id,
                rejected.dlq_topic,
                exc_info=True,
            )
    values = rejected.error_row(payload_cap, dlq_at)
    row = IngestError(**values)

    def _store() -> None:
        with sessions() as session, session.begin():
            session.add(row)
            session.flush()  # the problem counts below run on the same connection
            recorded = record_hits(
                session.connection(), [hit_for(rejected.problem, values)], now, max_problems
            )
            problem_id = recorded.problem_id(error_id, rejected.problem.problem_id)
            # Webhooks hear of HTTP refusals as of the worker's rejections (unless muted).
            notes = [(project_id, "ingest.failed", rejected.notification())]
            notes[0][2]["problem_id"] = problem_id
            if problem_id in recorded.ignored:
                notes = []
            for project, kind, payload in notes + recorded.notifications:
                session.add(
                    Notification(project_id=project, type=kind, payload=payload, created_at=now)
                )
            count_rejected(session, project_id, no_nul(collection) or collection, now)

    # The database driver blocks: keep it off the event loop.
    await run_in_threadpool(_store)
    return Refused(error_id=error_id, rejection=rejection)
