"""SASL PLAIN against project keys, with a short cache so revocation bites within seconds."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.store.db import session_scope
from app.store.keys import KeyInfo, find_key_by_digest, hash_key, key_info
from app.store.models import Project

AUTH_FAILED = (
    "Authentication failed: wrong project id or key, or the key may not write events (the "
    "username must be a project id and the password that project's master key, write key or "
    "an access key with writes enabled)"
)
# A read key gets the same answer as a wrong password: the gateway does not confirm to a
# guesser that a secret is a real key.
NOT_WRITER = AUTH_FAILED
PROJECT_INACTIVE = "Authentication failed: the project is disabled"
KEY_STORE_UNAVAILABLE = (
    "Authentication unavailable: Inbound cannot read its keys right now; retry in a few seconds"
)
log = logging.getLogger("inbound.gateway")


class KeyStoreUnavailable(RuntimeError):
    """The database cannot be read and no recent enough lookup of this key is known: neither
    a yes nor a no (a client's login is not counted as a failed one)."""


@dataclass(frozen=True, slots=True)
class Principal:
    project_id: str
    key_id: str
    key_hash: str


class PlainError(ValueError):
    pass


def parse_plain(token: bytes) -> tuple[str, str]:
    """RFC 4616 ``[authzid] NUL authcid NUL passwd`` -> (username, password)."""
    parts = token.split(b"\x00")
    if len(parts) != 3:
        raise PlainError("malformed SASL PLAIN token")
    authzid, username, password = (p.decode("utf-8", "replace") for p in parts)
    if authzid and authzid != username:
        raise PlainError("SASL PLAIN authorization id must be empty or equal the username")
    return username, password


class KeyVerifier:
    """Looks keys up by sha256 in the database, off the event loop, cached for ``ttl`` seconds.

    When the database cannot be read, a lookup cached less than ``stale_seconds`` past its
    time is used again (a database outage must not disconnect every producer); beyond that,
    or for a key never looked up, KeyStoreUnavailable.
    """

    def __init__(self, engine: Engine, ttl: float, *, stale_seconds: float = 300.0) -> None:
        self._engine = engine
        self._ttl = ttl
        self._stale = stale_seconds
        self._warned_at = 0.0
        self._cache: dict[str, tuple[float, KeyInfo | None]] = {}
        self._inflight: dict[str, asyncio.Future[KeyInfo | None]] = {}

    def _lookup_sync(self, secret_hash: str) -> KeyInfo | None:
        with session_scope(self._engine) as session:
            # By digest: the secret itself is not kept after authentication.
            key = find_key_by_digest(session, secret_hash)
            if key is None:
                return None
            project = session.get(Project, key.project_id)
            return key_info(key, project_active=bool(project and project.is_active))

    async def lookup(self, secret_hash: str) -> KeyInfo | None:
        now = time.monotonic()
        hit = self._cache.get(secret_hash)
        if hit is not None and hit[0] > now:
            return hit[1]
        # One database lookup per key at a time, however many connections ask.
        pending = self._inflight.get(secret_hash)
        if pending is not None:
            return await pending
        fut: asyncio.Future[KeyInfo | None] = asyncio.get_running_loop().create_future()
        self._inflight[secret_hash] = fut
        try:
            try:
                info = await asyncio.to_thread(self._lookup_sync, secret_hash)
            except SQLAlchemyError as exc:
                info = self._stale_answer(hit, exc)
            else:
                self._cache[secret_hash] = (time.monotonic() + self._ttl, info)
            fut.set_result(info)
            return info
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: waiters re-raise it, nobody else needs to
            raise
        finally:
            del self._inflight[secret_hash]

    def _stale_answer(
        self, hit: tuple[float, KeyInfo | None] | None, exc: Exception
    ) -> KeyInfo | None:
        now = time.monotonic()
        if now - self._warned_at > 10:
            self._warned_at = now
            log.warning("cannot read keys from the database (%s)", type(exc).__name__)
        if hit is not None and now < hit[0] + self._stale:
            return hit[1]
        raise KeyStoreUnavailable(KEY_STORE_UNAVAILABLE) from exc

    async def authenticate(self, username: str, password: str) -> Principal | str:
        """The principal, or the message to fail authentication with."""
        secret_hash = hash_key(password)
        info = await self.lookup(secret_hash)
        # A key of another project gets the same answer as a wrong password: the gateway does
        # not tell a guesser which project ids or keys exist.
        if info is None or info.project_id != username:
            return AUTH_FAILED
        if not info.project_active:
            return PROJECT_INACTIVE
        if not info.can_write:
            return NOT_WRITER
        return Principal(project_id=info.project_id, key_id=info.id, key_hash=secret_hash)

    async def still_valid(self, principal: Principal) -> bool:
        info = await self.lookup(principal.key_hash)
        return (
            info is not None
            and info.can_write
            and info.project_active
            and info.project_id == principal.project_id
        )
