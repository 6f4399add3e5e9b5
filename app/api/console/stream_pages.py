"""What the streams page shows: per collection, where every received event went over the last
24 hours or 7 days (received = accepted + rejected + dropped) from the reconciliation the
JSON API answers (``app/api/reconciliation.reconcile``), drawn as stacked bars per hour or day,
and the partitions the DLQ circuit breaker paused (``app/api/pauses.list_pauses``)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.api.console.charts import stacked_chart
from app.api.pauses import list_pauses
from app.api.reconciliation import reconcile
from app.api.timeframes import iso

PARTS = ("accepted", "rejected", "dropped")
FIGURES = ("received", *PARTS, "unaccounted")


@dataclass(frozen=True)
class Window:
    name: str
    label: str
    slots: int
    step: timedelta
    per: str  # "hour" or "day": what one bar is


WINDOWS = {
    "24h": Window("24h", "Last 24 hours", 24, timedelta(hours=1), "hour"),
    "7d": Window("7d", "Last 7 days", 7, timedelta(days=1), "day"),
}


def streams_url(project_id: str) -> str:
    return f"/console/projects/{project_id}/streams"


def _slot_starts(window: Window, now: datetime) -> list[datetime]:
    """The bars' starts, oldest first; the last bar is the current hour or UTC day."""
    now = now.astimezone(UTC)
    if window.per == "hour":
        last = now.replace(minute=0, second=0, microsecond=0)
    else:
        last = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return [last - window.step * (window.slots - 1 - i) for i in range(window.slots)]


def _slot_label(start: datetime, per: str) -> str:
    if per == "hour":
        return start.strftime("%Y-%m-%d %H:00 UTC")
    return start.strftime("%Y-%m-%d (UTC)")


def _tick_label(start: datetime, per: str) -> str:
    return start.strftime("%H:00") if per == "hour" else start.strftime("%m-%d")


def _slot_key(bucket_start: str, per: str) -> str:
    # bucket_start is reconcile's iso(): 2026-12-04T10:00:00.000Z
    return bucket_start[:13] if per == "hour" else bucket_start[:10]


def _collections(
    rows: list[dict[str, Any]], starts: list[datetime], window: Window
) -> list[dict[str, Any]]:
    """Per collection (by name): its slots summed from reconcile's hourly rows, totals, chart."""
    keys = [_slot_key(iso(s), window.per) for s in starts]
    index = {k: i for i, k in enumerate(keys)}
    by_name: dict[str, list[dict[str, int]]] = defaultdict(
        lambda: [dict.fromkeys(FIGURES, 0) for _ in keys]
    )
    reasons: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        i = index.get(_slot_key(row["bucket_start"], window.per))
        if i is None:  # outside the bars (cannot happen with since = the first bar's start)
            continue
        slot = by_name[row["collection"]][i]
        for name in FIGURES:
            slot[name] += row[name]
        for reason, count in (row["dropped_reasons"] or {}).items():
            reasons[row["collection"]][reason] += int(count)
    labels = [_slot_label(s, window.per) for s in starts]
    out = []
    for name in sorted(by_name):
        slots = by_name[name]
        chart = stacked_chart(slots, labels, PARTS, width=720, height=90)
        totals = {f: sum(s[f] for s in slots) for f in FIGURES}
        out.append(
            {
                "collection": name,
                "chart": chart,
                "totals": totals,
                "dropped_reasons": dict(sorted(reasons[name].items())),
                "slots": [
                    {"label": labels[i], **slot}
                    for i, slot in enumerate(slots)
                    if any(slot[f] for f in FIGURES)
                ],
            }
        )
    return out


def _ticks(starts: list[datetime], window: Window, width: int) -> list[dict[str, Any]]:
    slot = width / max(len(starts), 1)
    every = 6 if window.per == "hour" else 1
    return [
        {"x": round(i * slot + 1, 2), "label": _tick_label(s, window.per)}
        for i, s in enumerate(starts)
        if i % every == 0
    ]


def streams_page(
    db: Session, project_id: str, params: dict[str, str], now: datetime | None = None
) -> dict[str, Any]:
    """The page's context: the window asked for (``?window=24h|7d``), the reconciliation of
    every collection over it, and the open pauses."""
    now = now or datetime.now(UTC)
    window = WINDOWS.get(params.get("window", ""), WINDOWS["24h"])
    starts = _slot_starts(window, now)
    answer = reconcile(db, project_id, iso(starts[0]), iso(now), None)
    collections = _collections(answer["rows"], starts, window)
    return {
        "title": "Streams",
        "project_id": project_id,
        "window": window,
        "windows": list(WINDOWS.values()),
        "start": answer["start"],
        "end": answer["end"],
        "totals": answer["totals"],
        "balanced": answer["balanced"],
        "problems_line": answer["problems"],
        "collections": collections,
        "ticks": _ticks(starts, window, 720),
        "parts": PARTS,
        "pauses": list_pauses(db, project_id, include_resumed=False),
        "url": streams_url(project_id),
    }
