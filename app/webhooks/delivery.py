"""One delivery attempt: claim a due delivery, POST it signed, record the outcome, reschedule."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.store.models import Notification, Webhook, WebhookAttempt, WebhookDelivery
from app.store.secret_box import SecretBox
from app.webhooks.events import WEBHOOK_DISABLED, as_utc, iso
from app.webhooks.schedule import parse_retry_after, retry_delay
from app.webhooks.signing import webhook_headers

log = logging.getLogger("inbound.webhooks")

USER_AGENT = "Inbound-Webhooks/0.1"


@dataclass(frozen=True)
class Job:
    """What one attempt needs, read while the delivery was claimed."""

    delivery_id: str
    webhook_id: str
    url: str
    secrets: tuple[str, ...]
    body: bytes
    attempts: int


@dataclass(frozen=True)
class Outcome:
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    excerpt: str | None
    error: str | None
    retry_after: float | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Limits:
    connect_timeout: float
    read_timeout: float
    response_cap: int

    @property
    def deadline(self) -> float:
        """Longest one attempt may take in all, slow-drip responses included."""
        return self.connect_timeout + 2 * self.read_timeout

    @property
    def lease(self) -> timedelta:
        """How long a claimed delivery is left alone: past it, a crashed claimer's delivery is
        tried again (same webhook-id)."""
        return timedelta(seconds=2 * self.deadline)

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.read_timeout,
            pool=self.connect_timeout,
        )


def body_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def live_secrets(hook: Webhook, now: datetime, box: SecretBox) -> tuple[str, ...]:
    """The secrets that sign now, opened (the rows hold them sealed)."""
    if (
        hook.previous_secret
        and hook.previous_secret_expires_at
        and as_utc(hook.previous_secret_expires_at) > now
    ):
        return (box.open(hook.secret), box.open(hook.previous_secret))
    return (box.open(hook.secret),)


def redact_url(url: str) -> str:
    """Scheme, host and path only: query strings and user-info often carry tokens."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def claim_due(
    session: Session, now: datetime, limit: int, lease: timedelta, box: SecretBox
) -> list[Job]:
    """Take up to ``limit`` due deliveries of active webhooks, leasing them until now+lease.

    SKIP LOCKED keeps two PostgreSQL dispatchers apart; the conditional UPDATE also keeps
    SQLite (no row locks) from handing one delivery to two claimers.
    """
    if limit <= 0:
        return []
    candidates = list(
        session.scalars(
            select(WebhookDelivery.id)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
                Webhook.is_active.is_(True),
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True, of=WebhookDelivery)
        )
    )
    if not candidates:
        return []
    claimed = set(
        session.scalars(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id.in_(candidates),
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
            )
            .values(next_attempt_at=now + lease)
            .returning(WebhookDelivery.id)
            .execution_options(synchronize_session=False)
        )
    )
    if not claimed:
        return []
    rows = session.execute(
        select(WebhookDelivery, Webhook)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.id.in_(claimed))
    )
    return [
        Job(
            delivery_id=d.id,
            webhook_id=h.id,
            url=h.url,
            secrets=live_secrets(h, now, box),
            body=body_bytes(d.payload),
            attempts=d.attempts,
        )
        for d, h in rows
    ]


async def send(client: httpx.AsyncClient, job: Job, now: datetime, limits: Limits) -> Outcome:
    """POST the body once; never raises for network or HTTP trouble, it reports it."""
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        # Raw bytes only: the capped read must not be a decompression bomb.
        "accept-encoding": "identity",
        **webhook_headers(job.secrets, job.delivery_id, int(now.timestamp()), job.body),
    }
    started = time.perf_counter()
    status: int | None = None
    excerpt: str | None = None
    error: str | None = None
    retry_after_header: str | None = None
    try:
        async with asyncio.timeout(limits.deadline):
            async with client.stream(
                "POST", job.url, content=job.body, headers=headers, timeout=limits.timeout()
            ) as response:
                status = response.status_code
                retry_after_header = response.headers.get("retry-after")
                received = bytearray()
                async for chunk in response.aiter_raw():
                    received += chunk
                    if len(received) >= limits.response_cap:
                        break
                excerpt = bytes(received[: limits.response_cap]).decode("utf-8", "replace")
    except httpx.ConnectTimeout:
        error = "connect timeout"
    except httpx.TimeoutException:
        error = "read timeout" if status is None else "response body timeout"
    except TimeoutError:
        error = f"no complete response within {limits.deadline:g}s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    latency_ms = int((time.perf_counter() - started) * 1000)
    return Outcome(
        attempted_at=now,
        status_code=status,
        latency_ms=latency_ms,
        excerpt=excerpt,
        error=error,
        retry_after=parse_retry_after(retry_after_header, now),
    )


@dataclass(frozen=True)
class Policy:
    disable_after_failures: int
    disable_after: timedelta


def disable_webhook(session: Session, webhook_id: str, reason: str, now: datetime) -> bool:
    """Deactivate and tell the project's other webhooks (through the outbox, so durably).

    The conditional UPDATE makes exactly one of several concurrent callers do it (and emit
    one webhook.disabled), on SQLite as on PostgreSQL.
    """
    row = session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id, Webhook.is_active.is_(True))
        .values(is_active=False, disabled_reason=reason, updated_at=now)
        .returning(Webhook.project_id, Webhook.url)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is None:
        return False
    session.add(
        Notification(
            project_id=row.project_id,
            type=WEBHOOK_DISABLED,
            payload={
                "webhook_id": webhook_id,
                "url": redact_url(row.url),
                "reason": reason,
                "disabled_at": iso(now),
            },
            created_at=now,
            dispatched_at=None,
        )
    )
    log.warning("webhook %s disabled: %s", webhook_id, reason)
    return True


def record_outcome(
    session: Session,
    job: Job,
    outcome: Outcome,
    now: datetime,
    policy: Policy,
    rng: random.Random | None = None,
) -> str:
    """Log the attempt and move the delivery on; returns its new status.

    Webhook counters change by single UPDATE statements, never read-modify-write, because
    several attempts for one webhook finish at the same time.
    """
    delivery = session.get(WebhookDelivery, job.delivery_id)
    if delivery is None:
        return "gone"  # the webhook was deleted meanwhile (cascade)
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            attempted_at=outcome.attempted_at,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            response_excerpt=outcome.excerpt,
            error=outcome.error,
        )
    )
    delivery.attempts = delivery.attempts + 1
    delivery.updated_at = now
    if outcome.ok:
        delivery.status = "delivered"
        delivery.next_attempt_at = None
        session.execute(
            update(Webhook)
            .where(
                Webhook.id == delivery.webhook_id,
                (Webhook.consecutive_failures != 0) | Webhook.failing_since.is_not(None),
            )
            .values(consecutive_failures=0, failing_since=None)
            .execution_options(synchronize_session=False)
        )
        return delivery.status
    streak = session.execute(
        update(Webhook)
        .where(Webhook.id == delivery.webhook_id)
        .values(
            consecutive_failures=Webhook.consecutive_failures + 1,
            failing_since=func.coalesce(Webhook.failing_since, now),
            updated_at=now,
        )
        .returning(Webhook.consecutive_failures, Webhook.failing_since)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if outcome.status_code == 410:
        # The receiver says the endpoint is gone for good: stop, do not retry.
        delivery.status = "failed"
        delivery.next_attempt_at = None
        disable_webhook(session, delivery.webhook_id, "the endpoint answered 410 Gone", now)
        return delivery.status
    delay = retry_delay(delivery.attempts, rng)
    if delay is None:
        delivery.status = "failed"
        delivery.next_attempt_at = None
    else:
        if outcome.retry_after is not None:
            delay = max(delay, outcome.retry_after)
        delivery.next_attempt_at = now + timedelta(seconds=delay)
    if (
        streak is not None
        and streak.consecutive_failures >= policy.disable_after_failures
        and now - as_utc(streak.failing_since) >= policy.disable_after
    ):
        disable_webhook(
            session,
            delivery.webhook_id,
            f"{streak.consecutive_failures} consecutive failed attempts since "
            f"{iso(streak.failing_since)}",
            now,
        )
    return delivery.status
