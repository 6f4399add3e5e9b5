"""Per-project produce quotas, answered the way a Kafka broker does: with a throttle time."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]


class ProduceQuota:
    """A token bucket of bytes per second for each project (one second of burst).

    Like a broker quota, a request is never refused: it is let through, and the time the
    project must now wait for its bucket to refill is returned as the throttle time.
    """

    def __init__(self, bytes_per_second: int, clock: Clock = time.monotonic) -> None:
        self.rate = bytes_per_second
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # project -> (tokens, last refill)

    def charge(self, project_id: str, size: int) -> int:
        """Take ``size`` bytes from ``project_id``'s bucket; the throttle time in ms (0: none)."""
        if self.rate <= 0:
            return 0
        now = self._clock()
        tokens, last = self._buckets.get(project_id, (float(self.rate), now))
        tokens = min(float(self.rate), tokens + (now - last) * self.rate) - size
        self._buckets[project_id] = (tokens, now)
        if tokens >= 0:
            return 0
        return int(-tokens * 1000 / self.rate) + 1


class AuthFailures:
    """Failed logins per client address in the last minute (a sliding window)."""

    WINDOW = 60.0
    # Past this many tracked addresses, ones with no failure in the window are dropped.
    _PRUNE_AT = 10000

    def __init__(self, per_minute: int, clock: Clock = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        # Logins being checked right now: counted as failures until they succeed, so many
        # attempts sent at once cannot all get past the limit before the first one fails.
        self._pending: dict[str, int] = {}

    def _recent(self, address: str, now: float) -> deque[float] | None:
        times = self._failures.get(address)
        if times is None:
            return None
        while times and times[0] <= now - self.WINDOW:
            times.popleft()
        return times

    def blocked(self, address: str) -> bool:
        """True when ``address`` has used up its failed logins for now."""
        if self.per_minute <= 0:
            return False
        times = self._recent(address, self._clock())
        recent = len(times) if times is not None else 0
        return recent + self._pending.get(address, 0) >= self.per_minute

    def begin(self, address: str) -> None:
        """A login from ``address`` is being checked; call ``finish`` when it is decided."""
        self._pending[address] = self._pending.get(address, 0) + 1

    def finish(self, address: str, failed: bool) -> None:
        left = self._pending.get(address, 0) - 1
        if left > 0:
            self._pending[address] = left
        else:
            self._pending.pop(address, None)
        if failed:
            self.record(address)

    def record(self, address: str) -> None:
        now = self._clock()
        if len(self._failures) >= self._PRUNE_AT:
            for key in list(self._failures):
                if not self._recent(key, now):
                    del self._failures[key]
        times = self._failures.setdefault(address, deque())
        times.append(now)
        if len(times) > max(self.per_minute, 1):
            times.popleft()
