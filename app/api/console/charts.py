"""Bar geometry of the console's charts, drawn as inline SVG by the templates (no script):
a 14-day sparkline per problem and the 336-hour chart of one problem."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    peak: int
    total: int


def bar_chart(
    counts: list[int], labels: list[str], *, width: int, height: int, gap: float = 1.0
) -> Chart:
    """One bar per count, scaled to the largest; a nonzero count is at least 1 unit tall so
    a single error next to thousands still shows."""
    n = max(len(counts), 1)
    slot = width / n
    peak = max(counts, default=0)
    bars = []
    for i, count in enumerate(counts):
        h = 0.0 if peak == 0 else max(1.0, height * count / peak) if count else 0.0
        bars.append(
            Bar(
                x=round(i * slot, 2),
                y=round(height - h, 2),
                width=round(max(slot - gap, 0.5), 2),
                height=round(h, 2),
                count=count,
                label=labels[i] if i < len(labels) else "",
            )
        )
    return Chart(width=width, height=height, bars=bars, peak=peak, total=sum(counts))
