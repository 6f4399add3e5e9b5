"""Creating, listing and revoking keys; a secret is shown once, at creation, never again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.problems import ApiError
from app.api.query_build import parse_filters
from app.api.timeframes import QueryError, iso
from app.store.keys import ACCESS_PERMISSIONS, create_key
from app.store.models import ApiKey


class KeyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a 400, never ignored

    writes: dict[str, Any] | None = Field(
        default=None, examples=[{"autofill": {"source": "web"}}], description="{autofill: {...}}"
    )
    queries: dict[str, Any] | None = Field(
        default=None,
        examples=[
            {"filters": [{"property_name": "tenant", "operator": "eq", "property_value": "a"}]}
        ],
        description="{filters: [...]} forced onto every query",
    )


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a 400, never ignored

    kind: Literal["access", "write", "read", "master"] = "access"
    name: str | None = Field(default=None, max_length=200, examples=["web frontend"])
    permitted: list[str] = Field(default_factory=list, examples=[["writes"]])
    options: KeyOptions = Field(default_factory=KeyOptions)


class KeyView(BaseModel):
    key_id: str
    project_id: str
    kind: str
    name: str | None
    key_prefix: str = Field(description="First characters of the secret, to recognise it.")
    permitted: list[str]
    options: dict[str, Any]
    is_active: bool
    created_at: str
    revoked_at: str | None


class KeyCreated(KeyView):
    key: str = Field(description="The secret. Shown only in this response.")


def _iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    return iso(at if at.tzinfo else at.replace(tzinfo=UTC))


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
        "created_at": _iso(key.created_at),
        "revoked_at": _iso(key.revoked_at),
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


def revoke_key(session: Session, project_id: str, key_id: str) -> dict[str, Any]:
    key = session.scalar(select(ApiKey).where(ApiKey.project_id == project_id, ApiKey.id == key_id))
    if key is None:
        raise ApiError(404, "ResourceNotFoundError", "No such key in this project.")
    if key.is_active:
        key.is_active = False
        key.revoked_at = datetime.now(UTC)
    session.flush()
    return key_view(key)
