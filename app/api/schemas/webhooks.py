"""Bodies of the webhooks API: registration, rotation, deliveries."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.webhooks import registry
from app.webhooks.events import EVENT_TYPES

MAX_COLLECTIONS = 100


MAX_COLLECTION_NAME = 300


_HOOK_ID = "wh_5f2c9e0d4b7a18c3e6f90a21"


_DELIVERY_ID = "msg_3b6d0f9a1c2e4b5d8f7a6e5c4d3b2a10"


def _check_event_types(value: list[str]) -> list[str]:
    unknown = sorted(set(value) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"unknown event types {unknown}; known: {list(EVENT_TYPES)}")
    if not value:
        raise ValueError("subscribe to at least one event type")
    return value


def _check_collections(value: list[str] | None) -> list[str] | None:
    for name in value or []:
        if not name or len(name) > MAX_COLLECTION_NAME or any(ord(c) < 0x20 for c in name):
            raise ValueError(f"invalid collection name {name[:50]!r}")
    return value


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a 400, never ignored

    url: str = Field(
        max_length=2000,
        description="https:// (or http://) endpoint that receives the POSTs.",
        examples=["https://hooks.example.com/inbound"],
    )
    event_types: list[str] = Field(
        default_factory=lambda: list(EVENT_TYPES),
        description=f"Types to receive, of {list(EVENT_TYPES)}; default all.",
        examples=[["ingest.failed", "dlq.paused"]],
    )
    collections: list[str] | None = Field(
        default=None,
        max_length=MAX_COLLECTIONS,
        description="Only events of these collections; null or empty means all.",
        examples=[["purchases"]],
    )

    _types = field_validator("event_types")(_check_event_types)
    _collections = field_validator("collections")(_check_collections)


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a 400, never ignored

    url: str | None = Field(default=None, max_length=2000)
    event_types: list[str] | None = Field(default=None, examples=[["ingest.failed"]])
    collections: list[str] | None = Field(default=None, max_length=MAX_COLLECTIONS)
    is_active: bool | None = Field(
        default=None, description="true re-enables a disabled webhook and clears its failures."
    )
    _collections = field_validator("collections")(_check_collections)

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_event_types(value)


class RotateSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a 400, never ignored

    previous_valid_seconds: int = Field(
        default=int(registry.DEFAULT_ROTATION_OVERLAP.total_seconds()),
        ge=0,
        le=7 * 86400,
        description="How long the old secret keeps signing alongside the new one.",
    )


class WebhookOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": _HOOK_ID,
                "project_id": "5f1e0c7a9b3d2e4f6a8b0c1d",
                "url": "https://hooks.example.com/inbound",
                "event_types": ["dlq.paused", "ingest.failed"],
                "collections": None,
                "is_active": True,
                "disabled_reason": None,
                "consecutive_failures": 0,
                "failing_since": None,
                "previous_secret_expires_at": None,
                "created_at": "2025-03-01T12:00:00Z",
                "updated_at": "2025-03-01T12:00:00Z",
                "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            }
        }
    )

    id: str
    project_id: str
    url: str
    event_types: list[str]
    collections: list[str] | None
    is_active: bool
    disabled_reason: str | None
    consecutive_failures: int
    failing_since: str | None
    previous_secret_expires_at: str | None
    created_at: str
    updated_at: str
    secret: str | None = Field(
        default=None,
        description="Only when just created or rotated: store it, it is not shown again.",
    )


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class AttemptOut(BaseModel):
    attempted_at: str
    status_code: int | None = Field(description="Null when no HTTP answer came (see error).")
    latency_ms: int | None
    response_excerpt: str | None
    error: str | None = Field(examples=["read timeout"])


class DeliveryOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": _DELIVERY_ID,
                "webhook_id": _HOOK_ID,
                "event_type": "dlq.paused",
                "status": "delivered",
                "attempts": 1,
                "next_attempt_at": None,
                "created_at": "2025-03-01T12:00:00Z",
                "updated_at": "2025-03-01T12:00:01Z",
                "payload": {
                    "type": "dlq.paused",
                    "timestamp": "2025-03-01T12:00:00Z",
                    "data": {"project_id": "5f1e0c7a9b3d2e4f6a8b0c1d", "collection": "purchases"},
                },
                "attempt_log": [
                    {
                        "attempted_at": "2025-03-01T12:00:01Z",
                        "status_code": 200,
                        "latency_ms": 42,
                        "response_excerpt": "ok",
                        "error": None,
                    }
                ],
            }
        }
    )

    id: str = Field(description="The webhook-id header, the same on every attempt.")
    webhook_id: str
    event_type: str
    status: str = Field(description="pending, delivered or failed.")
    attempts: int = Field(description="Attempts in the current round (redelivery starts anew).")
    next_attempt_at: str | None
    created_at: str
    updated_at: str
    payload: dict[str, Any]
    attempt_log: list[AttemptOut] | None = None


class DeliveryList(BaseModel):
    deliveries: list[DeliveryOut]
