"""DLQ circuit breaker: a producer gone wrong pauses its partition instead of flooding the DLQ."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Window:
    total: int = 0
    rejected: int = 0


class CircuitBreaker:
    """Counts events per partition in windows of ``min_events``; trips when, over a full window,
    the rejected share is above the limit. A trip is reported once; ``reset`` re-arms."""

    def __init__(self, ratio: float, min_events: int) -> None:
        self.ratio = ratio
        self.min_events = max(1, min_events)
        self._windows: dict[tuple[str, int], _Window] = {}

    def record(self, tp: tuple[str, int], rejected: bool, ratio: float | None = None) -> bool:
        """Account one event; True when this event trips the breaker for ``tp``."""
        window = self._windows.setdefault(tp, _Window())
        window.total += 1
        window.rejected += rejected
        if window.total < self.min_events:
            return False
        limit = self.ratio if ratio is None else ratio
        tripped = window.rejected / window.total > limit
        self._windows[tp] = _Window()
        return tripped

    def reset(self, tp: tuple[str, int]) -> None:
        self._windows.pop(tp, None)
