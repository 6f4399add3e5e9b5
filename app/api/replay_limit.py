"""How many records per second a project may replay: a token bucket per project.

The clock is injectable (``time.monotonic`` by default) so tests move time forward instead
of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass
class TokenBucket:
    """Records per second a project may replay, with a burst allowance."""

    rate: float
    capacity: float
    clock: Clock = time.monotonic
    tokens: float = field(init=False)
    stamp: float = field(init=False)

    def __post_init__(self) -> None:
        # A new bucket is full: a project's first replay may use the whole burst.
        self.tokens = self.capacity
        self.stamp = self.clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def available(self) -> int:
        self._refill()
        return max(0, int(self.tokens))

    def take(self, n: int) -> None:
        self._refill()
        self.tokens -= n

    def wait_for_one(self) -> float:
        return max(0.0, (1 - self.tokens) / self.rate) if self.rate > 0 else 60.0


class ReplayLimiter:
    """One bucket per project, all on the same rate, burst and clock."""

    def __init__(self, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def bucket(self, project_id: str) -> TokenBucket:
        if project_id not in self._buckets:
            self._buckets[project_id] = TokenBucket(
                rate=self.rate, capacity=float(self.burst), clock=self.clock
            )
        return self._buckets[project_id]
