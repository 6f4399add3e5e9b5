"""Routes one fetched batch: which records are stored, which are dead-lettered, what each
replayed record's original is told, how far each partition may be committed and which
partitions the DLQ circuit breaker stops.

No I/O: the loop fetches, prefetches the look-ups (``wanted``), writes and commits. The only
state it touches is the breaker's per-partition windows, which outlive a batch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from app.contract import headers as h
from app.contract.errors import Rejection
from app.contract.headers import Headers, last_header_text
from app.contract.timestamps import iso_ms
from app.contract.topics import parse_record_source, project_of
from app.ingest.breaker import CircuitBreaker
from app.ingest.dlq import DeadLetter, dead_letter, error_id_for
from app.ingest.pipeline import Accepted, Lookup, RawRecord, process

if TYPE_CHECKING:
    from aiokafka import TopicPartition

    from app.ingest.addons import AddonRegistry


# Error ids are 32 lowercase hex characters on both paths (worker: derived, HTTP: random).
ERROR_ID_RE = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class Trip:
    """The breaker stopped ``tp`` at ``offset``: that record and the rest wait for a resume."""

    tp: TopicPartition
    offset: int
    last_code: str  # the last rejection seen on the partition in this batch, "" if none


@dataclass
class Routed:
    size: int = 0  # records fetched from the partitions not paused, tripped ones included
    accepted: list[Accepted] = field(default_factory=list)
    rejected: list[DeadLetter] = field(default_factory=list)
    # original error_id -> outcome, for records that came from a replay
    replay_outcomes: dict[str, dict] = field(default_factory=dict)
    # The offset to commit per partition: one past the last record routed.
    commit: dict[TopicPartition, int] = field(default_factory=dict)
    trips: list[Trip] = field(default_factory=list)


Batch = Mapping["TopicPartition", Sequence[RawRecord]]


class BatchRouter:
    def __init__(
        self,
        lookup: Lookup,
        addons: AddonRegistry,
        breaker: CircuitBreaker,
        ratio_for: Callable[[str], float | None],
    ) -> None:
        """``lookup`` must hold what ``wanted`` names; ``ratio_for``: a project's own DLQ
        ratio limit, None for the breaker's default."""
        self.lookup = lookup
        self.addons = addons
        self.breaker = breaker
        self.ratio_for = ratio_for

    def route(self, batch: Batch, now: datetime, paused: Collection[TopicPartition] = ()) -> Routed:
        """Every record of the partitions not in ``paused`` through the pipeline, in order."""
        routed = Routed()
        at = iso_ms(now)
        for tp, records in batch.items():
            if tp in paused or not records:
                continue
            self._route_partition(tp, records, now, at, routed)
        return routed

    def _route_partition(
        self,
        tp: TopicPartition,
        records: Sequence[RawRecord],
        now: datetime,
        at: str,
        routed: Routed,
    ) -> None:
        routed.size += len(records)
        key = (tp.topic, tp.partition)
        ratio = self.ratio_for(project_of(tp.topic) or "")
        lookup, addons, breaker = self.lookup, self.addons, self.breaker
        next_offset = records[-1].offset + 1
        last_code = ""
        for record in records:
            result = process(record, lookup, now, addons)
            rejected = isinstance(result, Rejection)
            if rejected:
                last_code = result.code
            if breaker.record(key, rejected, ratio):
                # Neither this record nor the rest is routed: they are fetched again on resume.
                routed.trips.append(Trip(tp, record.offset, last_code))
                next_offset = record.offset
                break
            original = _replayed_error(record.headers)
            if rejected:
                letter = dead_letter(record, result, now)
                routed.rejected.append(letter)
                if original:
                    routed.replay_outcomes[original] = _outcome(
                        record, at, status="rejected", error_id=letter.error_id, code=result.code
                    )
            else:
                routed.accepted.append(result)
                if original:
                    routed.replay_outcomes[original] = _outcome(
                        record, at, status="accepted", keen_id=result.keen_id
                    )
        routed.commit[tp] = next_offset


def wanted(batch: Batch, paused: Collection[TopicPartition] = ()) -> tuple[set[str], set[str]]:
    """The project ids and key ids routing ``batch`` will look up."""
    projects, keys = set(), set()
    for tp, records in batch.items():
        if tp in paused:
            continue
        project_id = project_of(tp.topic)
        if project_id:
            projects.add(project_id)
        for r in records:
            key_id = last_header_text(r.headers, h.KEY_ID)
            # No key id holds NUL, and PostgreSQL refuses one in a query: not looked up,
            # the access step then treats the key as unknown.
            if key_id and "\x00" not in key_id:
                keys.add(key_id)
    return projects, keys


def _outcome(record: RawRecord, at: str, **result: str) -> dict:
    return {**result, "at": at, "partition": record.partition, "offset": record.offset}


def _replayed_error(headers: Headers) -> str | None:
    """The error row a replayed record reports its outcome to: the one the replay names, else
    the one its source record became; None for a record that is no replay."""
    named = last_header_text(headers, h.REPLAY_ERROR_ID)
    if named and ERROR_ID_RE.fullmatch(named):
        return named
    source = last_header_text(headers, h.REPLAY_SOURCE)
    parsed = parse_record_source(source) if source else None
    return error_id_for(*parsed) if parsed else None
