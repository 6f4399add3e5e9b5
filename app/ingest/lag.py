"""Consumer lag and stall detection from the broker's view, not from the last good batch.

Lag of a partition = its log end offset - the group's committed offset (or, before the first
commit, the log start offset: the group reads from the earliest record). It is measured by a
background task, so a worker stuck retrying one batch reports the lag growing instead of the
lag it had before it got stuck.

A partition is *stalled* when it has lag and its committed offset has not moved for
``stall_seconds``; partitions paused on purpose (the DLQ circuit breaker) are not stalled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

P = TypeVar("P")  # a partition: aiokafka's TopicPartition, or anything hashable in tests


def partition_lag(end: int | None, committed: int | None, start: int | None) -> int:
    """Records behind the log end; never negative, 0 when the end is unknown."""
    if end is None:
        return 0
    position = committed if committed is not None and committed >= 0 else (start or 0)
    return max(0, end - position)


@dataclass(slots=True)
class PartitionState:
    committed: int | None
    lag: int
    since: float  # monotonic time the committed offset last moved (or was first seen)


class StallTracker(Generic[P]):
    def __init__(self, stall_seconds: float) -> None:
        self.stall_seconds = stall_seconds
        self.partitions: dict[P, PartitionState] = {}

    def observe(
        self,
        now: float,
        ends: Mapping[P, int | None],
        committed: Mapping[P, int | None],
        starts: Mapping[P, int | None] | None = None,
    ) -> int:
        """Record one measurement of the assigned partitions (``ends``' keys); returns the lag."""
        starts = starts or {}
        seen: dict[P, PartitionState] = {}
        total = 0
        for tp, end in ends.items():
            offset = committed.get(tp)
            lag = partition_lag(end, offset, starts.get(tp))
            total += lag
            before = self.partitions.get(tp)
            if before is None or before.committed != offset or lag == 0:
                seen[tp] = PartitionState(offset, lag, now)
            else:
                seen[tp] = PartitionState(offset, lag, before.since)
        self.partitions = seen
        return total

    def stalled(self, now: float, excluded: Iterable[P] = ()) -> list[tuple[P, PartitionState]]:
        skip = set(excluded)
        return [
            (tp, state)
            for tp, state in self.partitions.items()
            if tp not in skip and state.lag > 0 and now - state.since >= self.stall_seconds
        ]
