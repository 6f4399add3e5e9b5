"""API keys: generated once, shown once, stored as a sha256 digest."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.models import ApiKey

KIND_PERMISSIONS: dict[str, list[str]] = {
    "master": ["writes", "queries", "saved_queries", "cached_queries", "datasets", "schema"],
    "write": ["writes"],
    "read": ["queries"],
}
ACCESS_PERMISSIONS = {"writes", "queries", "saved_queries", "cached_queries", "datasets", "schema"}


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_hex(32)


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str


def create_key(
    session: Session,
    project_id: str,
    kind: str,
    *,
    name: str | None = None,
    permitted: list[str] | None = None,
    options: dict | None = None,
) -> CreatedKey:
    if kind == "access":
        unknown = set(permitted or []) - ACCESS_PERMISSIONS
        if unknown:
            raise ValueError(f"unknown permissions: {sorted(unknown)}")
    secret = new_secret()
    key = ApiKey(
        id=uuid.uuid4().hex,
        project_id=project_id,
        kind=kind,
        name=name,
        key_hash=hash_key(secret),
        key_prefix=secret[:8],
        permitted=list(permitted if kind == "access" else KIND_PERMISSIONS[kind]),
        options=options or {},
        is_active=True,
        created_at=datetime.now(UTC),
    )
    session.add(key)
    return CreatedKey(key=key, secret=secret)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What the edge and the worker need to know of a key, detached from the session."""

    id: str
    project_id: str
    can_write: bool
    autofill: dict
    project_active: bool = True


def key_info(key: ApiKey, project_active: bool = True) -> KeyInfo:
    return KeyInfo(
        id=key.id,
        project_id=key.project_id,
        can_write=can_write(key),
        autofill=autofill_of(key),
        project_active=project_active,
    )


def find_key(session: Session, secret: str) -> ApiKey | None:
    """The active key with this secret, or None."""
    return find_key_by_digest(session, hash_key(secret))


def find_key_by_digest(session: Session, digest: str) -> ApiKey | None:
    """The active key whose secret has this sha256 digest (the edge keeps only the digest)."""
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if key is None or not key.is_active:
        return None
    return key


def permits(key: ApiKey, permission: str) -> bool:
    """The one permission rule: an active master key may do everything, any other active key
    what it was given (a write key "writes", a read key "queries", an access key its list)."""
    return key.is_active and (key.kind == "master" or permission in (key.permitted or []))


def can_write(key: ApiKey) -> bool:
    return permits(key, "writes")


def autofill_of(key: ApiKey) -> dict:
    return ((key.options or {}).get("writes") or {}).get("autofill") or {}
