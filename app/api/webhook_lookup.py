"""A project's webhook or delivery by id, or the 404 the webhooks API answers."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.api.problems import ApiError
from app.store.models import Webhook, WebhookDelivery
from app.webhooks import registry


def not_found(what: str = "webhook") -> ApiError:
    return ApiError(404, "ResourceNotFoundError", f"No such {what} in this project.")


def hook_or_404(session: Session, project_id: str, webhook_id: str) -> Webhook:
    hook = registry.get_webhook(session, project_id, webhook_id)
    if hook is None:
        raise not_found()
    return hook


def delivery_or_404(
    session: Session, project_id: str, webhook_id: str, delivery_id: str
) -> WebhookDelivery:
    hook_or_404(session, project_id, webhook_id)
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.webhook_id != webhook_id:
        raise not_found("delivery")
    return delivery
