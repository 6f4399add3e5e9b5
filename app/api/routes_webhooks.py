"""HTTP API for webhooks: registration, secret rotation, test pings, delivery log, redelivery.

Everything here needs the project's master key.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Response

from app.api.auth import MASTER_KEY, Caller
from app.api.deps import SessionDep, SessionsDep, SettingsDep
from app.api.problems import KEY_ERRORS, ApiError, error_responses
from app.api.schemas.webhooks import (
    DeliveryList,
    DeliveryOut,
    RotateSecret,
    WebhookCreate,
    WebhookList,
    WebhookOut,
    WebhookUpdate,
)
from app.api.webhook_lookup import delivery_or_404, hook_or_404
from app.api.webhook_ping import ping_webhook
from app.settings import Settings
from app.store.secret_box import box_for
from app.webhooks import registry
from app.webhooks.url_safety import UnsafeDestination, check_destination

router = APIRouter(prefix="/3.0/projects/{project_id}/webhooks", tags=["webhooks"])


def _now() -> datetime:
    return datetime.now(UTC)


def _check_url(settings: Settings, url: str) -> None:
    try:
        check_destination(url, settings.webhook_allow_private)
    except UnsafeDestination as exc:
        raise ApiError(400, "InvalidWebhookUrlError", str(exc)) from exc


# The answer of a route about one existing webhook.
_ONE_HOOK: dict[str, Any] = {
    "response_model": WebhookOut,
    "response_model_exclude_unset": True,  # no `secret` key unless just made
    "responses": error_responses(*KEY_ERRORS, 404),
}


@router.post(
    "",
    status_code=201,
    summary="Register a webhook (its signing secret is shown only in this answer)",
    response_model=WebhookOut,
    response_model_exclude_unset=True,  # no `secret` key unless just made
    responses=error_responses(*KEY_ERRORS),
)
def create(
    project_id: str,
    body: WebhookCreate,
    session: SessionDep,
    settings: SettingsDep,
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    _check_url(settings, body.url)
    with session.begin():
        hook, secret = registry.create_webhook(
            session,
            project_id,
            body.url,
            body.event_types,
            body.collections,
            _now(),
            box_for(settings),
        )
        return registry.webhook_view(hook, secret=secret)


@router.get(
    "",
    summary="List the project's webhooks",
    response_model=WebhookList,
    response_model_exclude_unset=True,
    responses=error_responses(*KEY_ERRORS),
)
def list_all(project_id: str, session: SessionDep, caller: Caller = Depends(MASTER_KEY)) -> Any:
    hooks = registry.list_webhooks(session, project_id)
    return {"webhooks": [registry.webhook_view(h) for h in hooks]}


@router.get(
    "/{webhook_id}",
    summary="One webhook",
    **_ONE_HOOK,
)
def get_one(
    project_id: str, webhook_id: str, session: SessionDep, caller: Caller = Depends(MASTER_KEY)
) -> Any:
    hook = hook_or_404(session, project_id, webhook_id)
    return registry.webhook_view(hook)


@router.patch(
    "/{webhook_id}",
    summary="Change a webhook's URL, event types or collections; enable or disable it",
    **_ONE_HOOK,
)
def update(
    project_id: str,
    webhook_id: str,
    body: WebhookUpdate,
    session: SessionDep,
    settings: SettingsDep,
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    if body.url is not None:
        _check_url(settings, body.url)
    now = _now()
    with session.begin():
        hook = hook_or_404(session, project_id, webhook_id)
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
    project_id: str, webhook_id: str, session: SessionDep, caller: Caller = Depends(MASTER_KEY)
) -> Response:
    with session.begin():
        hook = hook_or_404(session, project_id, webhook_id)
        session.delete(hook)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/rotate-secret",
    summary="Rotate the signing secret (new one shown once; the old one signs for a while)",
    **_ONE_HOOK,
)
def rotate(
    project_id: str,
    webhook_id: str,
    session: SessionDep,
    settings: SettingsDep,
    body: RotateSecret | None = Body(default=None),
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    body = body or RotateSecret()
    with session.begin():
        hook = hook_or_404(session, project_id, webhook_id)
        secret = registry.rotate_secret(
            hook,
            timedelta(seconds=body.previous_valid_seconds),
            _now(),
            box_for(settings),
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
    project_id: str,
    webhook_id: str,
    settings: SettingsDep,
    sessions: SessionsDep,
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    return await ping_webhook(sessions, settings, project_id, webhook_id)


@router.get(
    "/{webhook_id}/deliveries",
    summary="The webhook's deliveries, newest first",
    response_model=DeliveryList,
    responses=error_responses(*KEY_ERRORS, 404),
)
def deliveries(
    project_id: str,
    webhook_id: str,
    session: SessionDep,
    status: str | None = Query(default=None, pattern="^(pending|delivered|failed)$"),
    before: datetime | None = Query(default=None, description="Page: created before this."),
    limit: int = Query(default=50, ge=1, le=500),
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    hook_or_404(session, project_id, webhook_id)
    rows = registry.list_deliveries(session, webhook_id, status, before, limit)
    return {"deliveries": [registry.delivery_view(d) for d in rows]}


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
    session: SessionDep,
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    found = delivery_or_404(session, project_id, webhook_id, delivery_id)
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
    session: SessionDep,
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    with session.begin():
        found = delivery_or_404(session, project_id, webhook_id, delivery_id)
        if found.status == "pending":
            raise ApiError(
                409, "DeliveryPendingError", "This delivery is already queued for its next attempt."
            )
        registry.redeliver(found, _now())
        session.flush()
        return registry.delivery_view(found)
