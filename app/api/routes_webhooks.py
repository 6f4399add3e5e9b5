"""HTTP API for webhooks: registration, secret rotation, test pings, delivery log, redelivery.

Everything here needs the project's master key.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.api.auth import MASTER_KEY, Caller
from app.api.problems import KEY_ERRORS, ApiError, error_responses
from app.settings import Settings
from app.store.models import WebhookDelivery
from app.store.secret_box import box_for
from app.webhooks import registry
from app.webhooks.delivery import (
    Job,
    Limits,
    Policy,
    body_bytes,
    live_secrets,
    record_outcome,
    send,
)
from app.webhooks.events import EVENT_TYPES
from app.webhooks.url_safety import UnsafeDestination, check_destination, delivery_transport

router = APIRouter(prefix="/3.0/projects/{project_id}/webhooks", tags=["webhooks"])

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


def _now() -> datetime:
    return datetime.now(UTC)


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _check_url(request: Request, url: str) -> None:
    try:
        check_destination(url, _settings(request).webhook_allow_private)
    except UnsafeDestination as exc:
        raise ApiError(400, "InvalidWebhookUrlError", str(exc)) from exc


def _not_found(what: str = "webhook") -> ApiError:
    return ApiError(404, "ResourceNotFoundError", f"No such {what} in this project.")


@router.post(
    "",
    status_code=201,
    summary="Register a webhook (its signing secret is shown only in this answer)",
    response_model=WebhookOut,
    response_model_exclude_unset=True,  # no `secret` key unless just made
    responses=error_responses(*KEY_ERRORS),
)
def create(
    project_id: str, body: WebhookCreate, request: Request, caller: Caller = Depends(MASTER_KEY)
) -> Any:
    _check_url(request, body.url)
    with request.app.state.session_factory.begin() as session:
        hook, secret = registry.create_webhook(
            session,
            project_id,
            body.url,
            body.event_types,
            body.collections,
            _now(),
            box_for(_settings(request)),
        )
        return registry.webhook_view(hook, secret=secret)


@router.get(
    "",
    summary="List the project's webhooks",
    response_model=WebhookList,
    response_model_exclude_unset=True,
    responses=error_responses(*KEY_ERRORS),
)
def list_all(project_id: str, request: Request, caller: Caller = Depends(MASTER_KEY)) -> Any:
    with request.app.state.session_factory() as session:
        hooks = registry.list_webhooks(session, project_id)
        return {"webhooks": [registry.webhook_view(h) for h in hooks]}


@router.get(
    "/{webhook_id}",
    summary="One webhook",
    response_model=WebhookOut,
    response_model_exclude_unset=True,  # no `secret` key unless just made
    responses=error_responses(*KEY_ERRORS, 404),
)
def get_one(
    project_id: str, webhook_id: str, request: Request, caller: Caller = Depends(MASTER_KEY)
) -> Any:
    with request.app.state.session_factory() as session:
        hook = registry.get_webhook(session, project_id, webhook_id)
        if hook is None:
            raise _not_found()
        return registry.webhook_view(hook)


@router.patch(
    "/{webhook_id}",
    summary="Change a webhook's URL, event types or collections; enable or disable it",
    response_model=WebhookOut,
    response_model_exclude_unset=True,  # no `secret` key unless just made
    responses=error_responses(*KEY_ERRORS, 404),
)
def update(
    project_id: str,
    webhook_id: str,
    body: WebhookUpdate,
    request: Request,
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    if body.url is not None:
        _check_url(request, body.url)
    now = _now()
    with request.app.state.session_factory.begin() as session:
        hook = registry.get_webhook(session, project_id, webhook_id)
        if hook is None:
            raise _not_found()
        if body.url is not None:
            hook.url = body.url
        if body.event_types is not None:
            hook.event_types = sorted(set(body.event_types))
        if "collections" in body.model_fields_set:
            hook.collections = sorted(set(body.collections)) if body.collections else None
        if body.is_active is True:
            registry.enable(hook, now)
        elif body.is_active is False:
            hook.is_active = False
            hook.disabled_reason = "disabled through the API"
        hook.updated_at = now
        session.flush()
        return registry.webhook_view(hook)


@router.delete(
    "/{webhook_id}",
    status_code=204,
    summary="Delete a webhook and its delivery log",
    responses=error_responses(*KEY_ERRORS, 404),
)
def delete(
    project_id: str, webhook_id: str, request: Request, caller: Caller = Depends(MASTER_KEY)
) -> Response:
    with request.app.state.session_factory.begin() as session:
        hook = registry.get_webhook(session, project_id, webhook_id)
        if hook is None:
            raise _not_found()
        session.delete(hook)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/rotate-secret",
    summary="Rotate the signing secret (new one shown once; the old one signs for a while)",
    response_model=WebhookOut,
    response_model_exclude_unset=True,  # no `secret` key unless just made
    responses=error_responses(*KEY_ERRORS, 404),
)
def rotate(
    project_id: str,
    webhook_id: str,
    request: Request,
    body: RotateSecret | None = Body(default=None),
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    body = body or RotateSecret()
    with request.app.state.session_factory.begin() as session:
        hook = registry.get_webhook(session, project_id, webhook_id)
        if hook is None:
            raise _not_found()
        secret = registry.rotate_secret(
            hook,
            timedelta(seconds=body.previous_valid_seconds),
            _now(),
            box_for(_settings(request)),
        )
        session.flush()
        return registry.webhook_view(hook, secret=secret)


@router.post(
    "/{webhook_id}/test",
    summary="Send a signed webhook.test now and report the first attempt",
    description="The test delivery is retried like any other if this attempt fails.",
    response_model=DeliveryOut,
    responses=error_responses(*KEY_ERRORS, 404),
)
async def test_ping(
    project_id: str, webhook_id: str, request: Request, caller: Caller = Depends(MASTER_KEY)
) -> Any:
    settings = _settings(request)
    limits = Limits(
        settings.webhook_connect_timeout,
        settings.webhook_read_timeout,
        settings.webhook_response_cap,
    )
    policy = Policy(
        settings.webhook_disable_after_failures,
        timedelta(seconds=settings.webhook_disable_after_seconds),
    )
    factory = request.app.state.session_factory

    def enqueue() -> Job:
        now = _now()
        with factory.begin() as session:
            hook = registry.get_webhook(session, project_id, webhook_id)
            if hook is None:
                raise _not_found()
            # Leased to this request, so a dispatcher will not send it at the same time.
            delivery_id = registry.enqueue_test(session, hook, now, now + limits.lease)
            delivery = session.get(WebhookDelivery, delivery_id)
            return Job(
                delivery_id,
                hook.id,
                hook.url,
                live_secrets(hook, now, box_for(settings)),
                body_bytes(delivery.payload),
                0,
            )

    job = await asyncio.to_thread(enqueue)
    async with httpx.AsyncClient(
        transport=delivery_transport(settings.webhook_allow_private), follow_redirects=False
    ) as client:
        outcome = await send(client, job, _now(), limits)

    def record() -> dict[str, Any]:
        with factory.begin() as session:
            record_outcome(session, job, outcome, _now(), policy)
        with factory() as session:
            delivery = session.get(WebhookDelivery, job.delivery_id)
            return registry.delivery_view(delivery, registry.attempts_of(session, delivery.id))

    return await asyncio.to_thread(record)


@router.get(
    "/{webhook_id}/deliveries",
    summary="The webhook's deliveries, newest first",
    response_model=DeliveryList,
    responses=error_responses(*KEY_ERRORS, 404),
)
def deliveries(
    project_id: str,
    webhook_id: str,
    request: Request,
    status: str | None = Query(default=None, pattern="^(pending|delivered|failed)$"),
    before: datetime | None = Query(default=None, description="Page: created before this."),
    limit: int = Query(default=50, ge=1, le=500),
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    with request.app.state.session_factory() as session:
        if registry.get_webhook(session, project_id, webhook_id) is None:
            raise _not_found()
        rows = registry.list_deliveries(session, webhook_id, status, before, limit)
        return {"deliveries": [registry.delivery_view(d) for d in rows]}


def _delivery(session: Any, project_id: str, webhook_id: str, delivery_id: str) -> WebhookDelivery:
    if registry.get_webhook(session, project_id, webhook_id) is None:
        raise _not_found()
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.webhook_id != webhook_id:
        raise _not_found("delivery")
    return delivery


@router.get(
    "/{webhook_id}/deliveries/{delivery_id}",
    summary="One delivery with every attempt: status code, latency, response excerpt",
    response_model=DeliveryOut,
    responses=error_responses(*KEY_ERRORS, 404),
)
def delivery(
    project_id: str,
    webhook_id: str,
    delivery_id: str,
    request: Request,
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    with request.app.state.session_factory() as session:
        found = _delivery(session, project_id, webhook_id, delivery_id)
        return registry.delivery_view(found, registry.attempts_of(session, found.id))


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    summary="Send a delivered or failed delivery again (same webhook-id, fresh schedule)",
    response_model=DeliveryOut,
    responses=error_responses(*KEY_ERRORS, 404, 409),
)
def redeliver(
    project_id: str,
    webhook_id: str,
    delivery_id: str,
    request: Request,
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    with request.app.state.session_factory.begin() as session:
        found = _delivery(session, project_id, webhook_id, delivery_id)
        if found.status == "pending":
            raise ApiError(
                409, "DeliveryPendingError", "This delivery is already queued for its next attempt."
            )
        registry.redeliver(found, _now())
        session.flush()
        return registry.delivery_view(found)
