"""Rejected events made the worker's way for console tests: the worker's own steps decide
the rejection (size, decode, collection name, property rules, in the pipeline's order), its
``dead_letter`` builds the dead letter and its ``BatchWriter`` stores it and counts it into
its problem, in one batch per call."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime

from app.contract.errors import Rejection
from app.ingest.dlq import dead_letter
from app.ingest.persist import BatchOutcome, BatchWriter
from app.ingest.records import RawRecord
from app.ingest.steps.collection import collection_of
from app.ingest.steps.decode import decode_event
from app.ingest.steps.properties import check_properties
from app.ingest.steps.size import check_size
from app.store.db import engine_for

_offsets = itertools.count(5000)


@dataclass(frozen=True)
class Sent:
    """One record as a producer sent it."""

    value: bytes | None
    collection: str = "purchases"
    key: bytes | None = b"k"
    headers: tuple[tuple[str, bytes], ...] = ()


def worker_rejection(record: RawRecord) -> Rejection:
    """The rejection the worker's steps give this record (it must be one they refuse)."""
    refused = check_size(record.value)
    if refused is not None:
        return refused
    event = decode_event(record.value)  # type: ignore[arg-type]
    if isinstance(event, Rejection):
        return event
    target = collection_of(record.topic)
    if isinstance(target, Rejection):
        return target
    refused = check_properties(event)
    assert refused is not None, f"the worker would accept {record.value!r}"
    return refused


def reject(url: str, project_id: str, sent: list[Sent], *, payload_cap: int = 65536) -> list[str]:
    """Store ``sent`` as the worker does (DLQ partition 0 at the record's offset); error ids."""
    at = datetime.now(UTC)
    letters = []
    for item in sent:
        record = RawRecord(
            topic=f"in.{project_id}.{item.collection}",
            partition=0,
            offset=next(_offsets),
            timestamp_ms=int(at.timestamp() * 1000),
            key=item.key,
            value=item.value,
            headers=item.headers,
        )
        letters.append(dead_letter(record, worker_rejection(record), at))
    engine = engine_for(url)
    BatchWriter(engine, payload_cap=payload_cap).write(
        BatchOutcome(
            rejected=letters,
            dlq_coordinates={d.error_id: (0, d.source_offset or 0) for d in letters},
        )
    )
    return [d.error_id for d in letters]
