"""Paused streams (the DLQ circuit breaker's state) and per-project breaker limits."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.store.models import Notification, Project, StreamPause


def _ratio(value: object) -> float | None:
    """A project's breaker ratio; anything but a finite number means the worker's default (the
    options are stored JSON, and a bad value must not stop the project's batches)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class PauseStore:
    """``ttl_seconds``: how long a project's breaker ratio is used before it is read again, so
    an option changed in the database reaches every running worker (``clear``: at once)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        ttl_seconds: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._ttl = ttl_seconds
        self._clock = clock
        self._ratios: dict[str, tuple[float, float | None]] = {}
        self._generation = 0

    def prefetch_options(self, project_ids: set[str]) -> None:
        now = self._clock()
        want = [p for p in project_ids if self._stale(p, now)]
        if not want:
            return
        generation = self._generation
        with self._sessions() as session:
            found = {
                p.id: p.options if isinstance(p.options, dict) else {}
                for p in session.scalars(select(Project).where(Project.id.in_(want)))
            }
        if generation != self._generation:
            now = float("-inf")  # cleared meanwhile: this read may predate the change
        for pid in want:
            self._ratios[pid] = (now, _ratio(found.get(pid, {}).get("dlq_pause_ratio")))

    def _stale(self, project_id: str, now: float) -> bool:
        entry = self._ratios.get(project_id)
        return entry is None or now - entry[0] > self._ttl

    def ratio_for(self, project_id: str) -> float | None:
        """The project's own limit, or None for the worker's default."""
        entry = self._ratios.get(project_id)
        return entry[1] if entry else None

    def clear(self) -> None:
        self._generation += 1
        self._ratios.clear()

    def active(self) -> set[tuple[str, int]]:
        with self._sessions() as session:
            rows = session.execute(
                select(StreamPause.topic, StreamPause.partition).where(
                    StreamPause.resumed_at.is_(None)
                )
            )
            return {(t, p) for t, p in rows}

    def pause(
        self, project_id: str, collection: str, topic: str, partition: int, offset: int, reason: str
    ) -> None:
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            already = session.scalar(
                select(StreamPause.id).where(
                    StreamPause.topic == topic,
                    StreamPause.partition == partition,
                    StreamPause.resumed_at.is_(None),
                )
            )
            if already:
                return
            session.add(
                StreamPause(
                    project_id=project_id,
                    collection=collection,
                    topic=topic,
                    partition=partition,
                    reason=reason,
                    paused_at=now,
                )
            )
            session.add(
                Notification(
                    project_id=project_id,
                    type="dlq.paused",
                    created_at=now,
                    payload={
                        "collection": collection,
                        "topic": collection,
                        "partition": partition,
                        "offset": offset,
                        "reason": reason,
                    },
                )
            )


def resume(sessions: sessionmaker[Session], project_id: str, collection: str, by: str) -> int:
    """Resume every paused partition of a collection; returns how many were resumed."""
    now = datetime.now(UTC)
    with sessions.begin() as session:
        paused = session.scalars(
            select(StreamPause).where(
                StreamPause.project_id == project_id,
                StreamPause.collection == collection,
                StreamPause.resumed_at.is_(None),
            )
        ).all()
        if not paused:
            return 0
        session.execute(
            update(StreamPause)
            .where(StreamPause.id.in_([p.id for p in paused]))
            .values(resumed_at=now, resumed_by=by)
        )
        session.add(
            Notification(
                project_id=project_id,
                type="dlq.resumed",
                created_at=now,
                payload={
                    "collection": collection,
                    "topic": collection,
                    "partitions": sorted(p.partition for p in paused),
                    "resumed_by": by,
                },
            )
        )
        return len(paused)
