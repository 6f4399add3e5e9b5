"""Bodies of key creation and the key views (a secret only in KeyCreated)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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
