"""Bar geometry of the console's charts, drawn as inline SVG by the templates (no script):
a 14-day sparkline per problem, the 336-hour chart of one problem, and the stacked
accepted / rejected / dropped bars of a collection's reconciliation."""

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


@dataclass(frozen=True)
class Segment:
    part: str
    y: float
    height: float
    count: int


@dataclass(frozen=True)
class StackedBar:
    x: float
    width: float
    label: str
    segments: list[Segment]
    total: int


@dataclass(frozen=True)
class StackedChart:
    width: int
    height: int
    bars: list[StackedBar]
    peak: int
    totals: dict[str, int]


def stacked_chart(
    slots: list[dict[str, int]],
    labels: list[str],
    parts: tuple[str, ...],
    *,
    width: int,
    height: int,
    gap: float = 2.0,
) -> StackedChart:
    """One bar per slot, its ``parts`` stacked bottom-up in the order given, scaled so the
    tallest bar fills ``height``; a nonzero part is at least 1 unit tall so it still shows."""
    n = max(len(slots), 1)
    slot_width = width / n
    sums = [sum(slot.get(p, 0) for p in parts) for slot in slots]
    peak = max(sums, default=0)
    bars = []
    for i, slot in enumerate(slots):
        bottom = float(height)
        segments = []
        for part in parts:
            count = slot.get(part, 0)
            if not count:
                continue
            h = max(1.0, height * count / peak)
            bottom -= h
            # The 1-unit minimum may push the top past the frame by a fraction: clipped.
            top = max(bottom, 0.0)
            segments.append(
                Segment(
                    part=part, y=round(top, 2), height=round(h - (top - bottom), 2), count=count
                )
            )
        bars.append(
            StackedBar(
                x=round(i * slot_width, 2),
                width=round(max(slot_width - gap, 0.5), 2),
                label=labels[i] if i < len(labels) else "",
                segments=segments,
                total=sums[i],
            )
        )
    totals = {p: sum(slot.get(p, 0) for slot in slots) for p in parts}
    return StackedChart(width=width, height=height, bars=bars, peak=peak, totals=totals)
