"""The records the pipeline takes and gives: the raw Kafka record, the accepted event, and the
look-ups it needs. Kept apart from the pipeline so the steps can name them without a cycle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from app.store.keys import KeyInfo


# Plain slotted classes: a frozen dataclass's __init__ costs a few microseconds per record,
# measurable at tens of thousands of records a second.
@dataclass(slots=True)
class RawRecord:
    topic: str  # backend topic, "in.<24-hex project>.<collection>"
    partition: int
    offset: int
    timestamp_ms: int | None  # Kafka record timestamp
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class ProjectInfo:
    id: str
    is_active: bool


class Lookup(Protocol):
    def project(self, project_id: str) -> ProjectInfo | None: ...

    def key(self, key_id: str) -> KeyInfo | None: ...


@dataclass(slots=True)
class Accepted:
    project_id: str
    collection: str
    keen_id: str
    keen_timestamp: datetime  # tz-aware UTC, millisecond precision
    created_at: datetime  # tz-aware UTC, millisecond precision
    body: dict  # the full event including the "keen" object; JSON-serialisable
