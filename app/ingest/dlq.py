"""The worker's dead letters: a rejected Kafka record as the contract's rejection builder
records it, with an error id derived from the record's coordinates."""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import lru_cache

from app.contract.errors import Rejection
from app.contract.rejection import (
    DLQ_MAX_MESSAGE_BYTES,
    DLQ_RECORD_BUDGET,
    DlqRecord,
    RejectedRecord,
    build_rejection,
    replay_count_of,
)
from app.contract.topics import dlq_topic, inbound_parts, parse_inbound
from app.ingest.records import RawRecord

__all__ = [
    "DLQ_MAX_MESSAGE_BYTES",
    "DLQ_RECORD_BUDGET",
    "DeadLetter",
    "DlqRecord",
    "dead_letter",
    "error_id_for",
]

DeadLetter = RejectedRecord


def error_id_for(topic: str, partition: int, offset: int) -> str:
    """Deterministic, so a redelivered record keeps its error id in every place it appears."""
    return hashlib.blake2b(f"{topic}/{partition}/{offset}".encode(), digest_size=16).hexdigest()


@lru_cache(maxsize=4096)
def _target(topic: str) -> tuple[str, str, str, str]:
    """(project, collection, DLQ topic, customer topic name) of a backend topic; few per batch."""
    project_id, collection = inbound_parts(topic)
    # Not a well-formed inbound topic: the customer knows no shorter name for it.
    customer = collection if parse_inbound(topic) else topic
    return project_id, collection, dlq_topic(project_id, collection), customer


def dead_letter(record: RawRecord, rejection: Rejection, failed_at: datetime) -> DeadLetter:
    project_id, collection, dlq, customer = _target(record.topic)
    return build_rejection(
        rejection,
        error_id=error_id_for(record.topic, record.partition, record.offset),
        failed_at=failed_at,
        project_id=project_id,
        collection=collection,
        dlq_topic=dlq,
        original_topic=customer,
        source=(record.topic, record.partition, record.offset),
        timestamp_ms=record.timestamp_ms,
        key=record.key,
        value=record.value,
        headers=record.headers,
        replay_count=replay_count_of(record.headers),
    )
