"""Creating, listing and revoking keys; a secret is shown once, at creation, never again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import BackgroundTasks
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.problems import ApiError
from app.api.producer import KafkaProducerHolder
from app.api.query_build import parse_filters
from app.api.schemas.keys import KeyCreate
from app.api.timeframes import QueryError, iso_or_none
from app.ingest.control import send_command
from app.store.keys import ACCESS_PERMISSIONS, create_key
from app.store.models import ApiKey


def key_view(key: ApiKey) -> dict[str, Any]:
    return {
        "key_id": key.id,
        "project_id": key.project_id,
        "kind": key.kind,
        "name": key.name,
        "key_prefix": key.key_prefix,
        "permitted": list(key.permitted or []),
        "options": key.options or {},
        "is_active": key.is_active,
        "created_at": iso_or_none(key.created_at),
        "revoked_at": iso_or_none(key.revoked_at),
    }


def _check_options(body: KeyCreate) -> dict[str, Any]:
    options = body.options.model_dump(exclude_none=True)
    try:
        orjson.dumps(options)
    except TypeError as exc:
        raise ApiError(
            400, "InvalidParameterError", "options: numbers must fit in 64 bits"
        ) from exc
    autofill = (options.get("writes") or {}).get("autofill")
    if autofill is not None and (not isinstance(autofill, dict) or "keen" in autofill):
        raise ApiError(400, "InvalidParameterError", "autofill is an object without `keen`")
    try:
        parse_filters((options.get("queries") or {}).get("filters"))
    except QueryError as exc:
        raise ApiError(400, "InvalidParameterError", f"options.queries.filters: {exc}") from exc
    return options


def make_key(session: Session, project_id: str, body: KeyCreate) -> dict[str, Any]:
    if body.kind == "access":
        unknown = set(body.permitted) - ACCESS_PERMISSIONS
        if unknown:
            raise ApiError(400, "InvalidParameterError", f"unknown permissions: {sorted(unknown)}")
    created = create_key(
        session,
        project_id,
        body.kind,
        name=body.name,
        permitted=body.permitted,
        options=_check_options(body),
    )
    session.flush()
    return {**key_view(created.key), "key": created.secret}


def list_keys(session: Session, project_id: str) -> list[dict[str, Any]]:
    keys = session.execute(
        select(ApiKey).where(ApiKey.project_id == project_id).order_by(ApiKey.created_at, ApiKey.id)
    ).scalars()
    return [key_view(k) for k in keys]


def tell_workers_keys_changed(tasks: BackgroundTasks, producer: KafkaProducerHolder) -> None:
    """After the response: every running worker drops its cached keys at once (otherwise a
    revocation reaches them within INBOUND_WORKER_KEY_CACHE_SECONDS)."""
    tasks.add_task(send_command, producer.options, {"type": "invalidate_keys"})


def revoke_key(session: Session, project_id: str, key_id: str) -> dict[str, Any]:
    key = session.scalar(select(ApiKey).where(ApiKey.project_id == project_id, ApiKey.id == key_id))
    if key is None:
        raise ApiError(404, "ResourceNotFoundError", "No such key in this project.")
    if key.is_active:
        key.is_active = False
        key.revoked_at = datetime.now(UTC)
    session.flush()
    return key_view(key)
