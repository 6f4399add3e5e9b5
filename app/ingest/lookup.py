"""Project and key look-ups for the pipeline, cached briefly so a revoked key stops within seconds.

``clear`` (a control command) drops the cache at once; a look-up that was reading the
database while it ran does not put its answer, perhaps older than the change, back.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.ingest.pipeline import ProjectInfo
from app.store.keys import KeyInfo, key_info
from app.store.models import ApiKey, Project


class DbLookup:
    """Implements the pipeline's Lookup protocol over the database with a TTL cache."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        ttl_seconds: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._ttl = ttl_seconds
        self._clock = clock
        self._projects: dict[str, tuple[float, ProjectInfo | None]] = {}
        self._keys: dict[str, tuple[float, KeyInfo | None]] = {}
        self._generation = 0

    def prefetch(self, project_ids: set[str], key_ids: set[str]) -> None:
        """Load every project and key a batch needs in two queries (called off the event loop)."""
        now = self._clock()
        want_p = [p for p in project_ids if self._stale(self._projects.get(p), now)]
        want_k = [k for k in key_ids if self._stale(self._keys.get(k), now)]
        if not want_p and not want_k:
            return
        generation = self._generation
        loaded_p: dict[str, ProjectInfo | None] = {}
        loaded_k: dict[str, KeyInfo | None] = {}
        with self._sessions() as session:
            if want_p:
                found = {
                    p.id: ProjectInfo(id=p.id, is_active=p.is_active)
                    for p in session.scalars(select(Project).where(Project.id.in_(want_p)))
                }
                loaded_p = {pid: found.get(pid) for pid in want_p}
            if want_k:
                found_k = {
                    k.id: key_info(k)
                    for k in session.scalars(select(ApiKey).where(ApiKey.id.in_(want_k)))
                }
                loaded_k = {kid: found_k.get(kid) for kid in want_k}
        if generation != self._generation:
            # Cleared meanwhile: keep the answers for this batch only, read again next time.
            now = float("-inf")
        self._projects.update((pid, (now, info)) for pid, info in loaded_p.items())
        self._keys.update((kid, (now, info)) for kid, info in loaded_k.items())

    def _stale(self, entry: tuple[float, object] | None, now: float) -> bool:
        return entry is None or now - entry[0] > self._ttl

    def project(self, project_id: str) -> ProjectInfo | None:
        entry = self._projects.get(project_id)
        return entry[1] if entry else None

    def key(self, key_id: str) -> KeyInfo | None:
        entry = self._keys.get(key_id)
        return entry[1] if entry else None

    def clear(self) -> None:
        self._generation += 1
        self._projects.clear()
        self._keys.clear()
