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


def find_key(session: Session, secret: str) -> ApiKey | None:
    """The active key with this secret, or None."""
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(secret)))
    if key is None or not key.is_active:
        return None
    return key


def can_write(key: ApiKey) -> bool:
    return key.is_active and (key.kind == "master" or "writes" in (key.permitted or []))


def autofill_of(key: ApiKey) -> dict:
    return ((key.options or {}).get("writes") or {}).get("autofill") or {}
