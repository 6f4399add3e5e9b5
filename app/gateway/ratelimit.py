"""Per-project produce quotas, answered the way a Kafka broker does: with a throttle time."""

from __future__ import annotations

import time


class ProduceQuota:
    """A token bucket of bytes per second for each project (one second of burst).

    Like a broker quota, a request is never refused: it is let through, and the time the
    project must now wait for its bucket to refill is returned as the throttle time.
    """

    def __init__(self, bytes_per_second: int) -> None:
        self.rate = bytes_per_second
        self._buckets: dict[str, tuple[float, float]] = {}  # project -> (tokens, last refill)

    def charge(self, project_id: str, size: int) -> int:
        """Take ``size`` bytes from ``project_id``'s bucket; the throttle time in ms (0: none)."""
        if self.rate <= 0:
            return 0
        now = time.monotonic()
        tokens, last = self._buckets.get(project_id, (float(self.rate), now))
        tokens = min(float(self.rate), tokens + (now - last) * self.rate) - size
        self._buckets[project_id] = (tokens, now)
        if tokens >= 0:
            return 0
        return int(-tokens * 1000 / self.rate) + 1
