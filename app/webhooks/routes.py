"""HTTP API for webhooks: registration, secret rotation, test pings, delivery log, redelivery.

Everything here needs the project's master key.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, field_validator

from app.api.auth import authenticate
from app.api.problems import ApiError
from app.settings import Settings
from app.store.models import WebhookDelivery
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


def _check_event_types(value: list[str]) -> list[str]:
    unknown = sorted(set(value) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"unknown event types {unknown}; known: {list(EVENT_TYPES)}")
    if not value:
        raise ValueError("subscribe to at least one event type")
    return value


class WebhookCreate(BaseModel):
    url: str = Field(description="https:// (or http://) endpoint that receives the POSTs.")
    event_types: list[str] = Field(
        default_factory=lambda: list(EVENT_TYPES), description="Types to receive."
    )
    collections: list[str] | None = Field(
        default=None,
        max_length=MAX_COLLECTIONS,
        description="Only events of these collections; null or empty means all.",
    )

    _types = field_validator("event_types")(_check_event_types)


class WebhookUpdate(BaseModel):
    url: str | None = None
    event_types: list[str] | None = None
    collections: list[str] | None = Field(default=None, max_length=MAX_COLLECTIONS)
    is_active: bool | None = Field(
        default=None, description="true re-enables a disabled webhook and clears its failures."
    )

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_event_types(value)


class RotateSecret(BaseModel):
    previous_valid_seconds: int = Field(
        default=int(registry.DEFAULT_ROTATION_OVERLAP.total_seconds()),
        ge=0,
        le=7 * 86400,
        description="How long the old secret keeps signing alongside the new one.",
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _check_url(request: Request, url: str) -> None:
    try:
        check_destination(url, _settings(request).webhook_allow_private)
    except UnsafeDestination as exc:
        raise ApiError(422, "InvalidWebhookUrlError", str(exc)) from exc


def _not_found(what: str = "webhook") -> ApiError:
    return ApiError(404, "ResourceNotFoundError", f"No such {what} in this project.")


@router.post("", status_code=201)
def create(project_id: str, body: WebhookCreate, request: Request) -> dict[str, Any]:
    """Register a webhook. The response holds the signing secret: it is shown only here."""
    authenticate(request, project_id, None)
    _check_url(request, body.url)
    with request.app.state.session_factory.begin() as session:
        hook, secret = registry.create_webhook(
            session, project_id, body.url, body.event_types, body.collections, _now()
        )
        return registry.webhook_view(hook, secret=secret)


@router.get("")
def list_all(project_id: str, request: Request) -> dict[str, Any]:
    authenticate(request, project_id, None)
    with request.app.state.session_factory() as session:
        hooks = registry.list_webhooks(session, project_id)
        return {"webhooks": [registry.webhook_view(h) for h in hooks]}


@router.get("/{webhook_id}")
def get_one(project_id: str, webhook_id: str, request: Request) -> dict[str, Any]:
    authenticate(request, project_id, None)
    with request.app.state.session_factory() as session:
        hook = registry.get_webhook(session, project_id, webhook_id)
        if hook is None:
            raise _not_found()
        return registry.webhook_view(hook)


@router.patch("/{webhook_id}")
def update(
    project_id: str, webhook_id: str, body: WebhookUpdate, request: Request
) -> dict[str, Any]:
    authenticate(request, project_id, None)
    if body.url is not None:
        _check_url(request, body.url)
    now = _now()
    with request.app.state.session_factory.begin() as session:
        hook = registry.get_webhook(session, project_id, webhook_id)
        if hook is None:
            raise _not_found()
        fields = body.model_fields_set
        if body.url is not None:
            hook.url = body.url
        if body.event_types is not None:
            hook.event_types = sorted(set(body.event_types))
        if "collections" in fields:
            hook.collections = sorted(set(body.collections)) if body.collections else None
        if body.is_active is True:
            registry.enable(hook, now)
        elif body.is_active is False:
            hook.is_active = False
            hook.disabled_reason = "disabled through the API"
        hook.updated_at = now
        session.flush()
        return registry.webhook_view(hook)


@router.delete("/{webhook_id}", status_code=204)
def delete(project_id: str, webhook_id: str, request: Request) -> Response:
    authenticate(request, project_id, None)
    with request.app.state.session_factory.begin() as session:
        hook = registry.get_webhook(session, project_id, webhook_id)
        if hook is None:
            raise _not_found()
        session.delete(hook)
    return Response(status_code=204)


@router.post("/{webhook_id}/rotate-secret")
def rotate(
    project_id: str, webhook_id: str, request: Request, body: RotateSecret | None = None
) -> dict[str, Any]:
    """A new secret (shown once); the old one keeps signing for ``previous_valid_seconds``."""
    authenticate(request, project_id, None)
    body = body or RotateSecret()
    with request.app.state.session_factory.begin() as session:
        hook = registry.get_webhook(session, project_id, webhook_id)
        if hook is None:
            raise _not_found()
        secret = registry.rotate_secret(
            hook, timedelta(seconds=body.previous_valid_seconds), _now()
        )
        session.flush()
        return registry.webhook_view(hook, secret=secret)


@router.post("/{webhook_id}/test")
async def test_ping(project_id: str, webhook_id: str, request: Request) -> dict[str, Any]:
    """Send a signed ``webhook.test`` now and report the first attempt; it is retried like
    any delivery if it fails."""
    await asyncio.to_thread(authenticate, request, project_id, None)
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
                live_secrets(hook, now),
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


@router.get("/{webhook_id}/deliveries")
def deliveries(
    project_id: str,
    webhook_id: str,
    request: Request,
    status: str | None = Query(default=None, pattern="^(pending|delivered|failed)$"),
    before: datetime | None = Query(default=None, description="Page: created before this."),
    limit: int = Query(default=50, ge=1, le=500),
) -> dict[str, Any]:
    authenticate(request, project_id, None)
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


@router.get("/{webhook_id}/deliveries/{delivery_id}")
def delivery(
    project_id: str, webhook_id: str, delivery_id: str, request: Request
) -> dict[str, Any]:
    """One delivery with every attempt: status code, latency and a response excerpt."""
    authenticate(request, project_id, None)
    with request.app.state.session_factory() as session:
        found = _delivery(session, project_id, webhook_id, delivery_id)
        return registry.delivery_view(found, registry.attempts_of(session, found.id))


@router.post("/{webhook_id}/deliveries/{delivery_id}/redeliver", status_code=202)
def redeliver(
    project_id: str, webhook_id: str, delivery_id: str, request: Request
) -> dict[str, Any]:
    """Queue a delivered or failed delivery again, same webhook-id, fresh retry schedule."""
    authenticate(request, project_id, None)
    with request.app.state.session_factory.begin() as session:
        found = _delivery(session, project_id, webhook_id, delivery_id)
        if found.status == "pending":
            raise ApiError(
                409, "DeliveryPendingError", "This delivery is already queued for its next attempt."
            )
        registry.redeliver(found, _now())
        session.flush()
        return registry.delivery_view(found)
