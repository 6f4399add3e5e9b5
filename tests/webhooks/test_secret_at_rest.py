"""Webhook signing secrets are sealed in the database (Fernet, key from INBOUND_SECRET_KEY or
<data_dir>/secret.key), deliveries are still signed with the secret itself, and rows written
in clear before encryption keep working."""

from __future__ import annotations

import asyncio
import os
import stat
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook as StandardVerifier

from app.api.app import create_app
from app.store.models import Webhook
from app.store.projects import create_project
from app.store.secret_box import PREFIX, SecretBox, SecretKeyError, box_for
from app.webhooks import registry
from app.webhooks.delivery import live_secrets
from app.webhooks.dispatcher import Dispatcher
from tests.webhooks.helpers import add_notifications, failed_payload, new_webhook


def _raw_secrets(engine, hook_id: str) -> tuple[str, str | None]:  # noqa: ANN001
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT secret, previous_secret FROM webhooks WHERE id = :id"), {"id": hook_id}
        ).one()
    return row[0], row[1]


def _dispatch_once(settings, engine) -> None:  # noqa: ANN001
    async def go() -> None:
        dispatcher = Dispatcher(settings, engine)
        try:
            await dispatcher.run_once()
        finally:
            await dispatcher.aclose()

    asyncio.run(go())


@pytest.mark.parametrize("configured", [None, "a configured key of enough length"])
def test_created_and_rotated_secrets_are_sealed_and_still_sign(
    engine, hook_settings, receiver, configured: str | None
) -> None:  # noqa: ANN001
    settings = hook_settings(secret_key=configured)
    with Session(engine) as session, session.begin():
        keys = create_project(session, "sealed")
    base = f"/3.0/projects/{keys['project_id']}/webhooks"
    auth = {"Authorization": keys["master_key"]}
    with TestClient(create_app(settings)) as client:
        made = client.post(base, json={"url": receiver.url()}, headers=auth).json()
        secret = made["secret"]
        stored, _ = _raw_secrets(engine, made["id"])
        assert stored.startswith(PREFIX)
        assert secret not in stored and "whsec_" not in stored
        key_file = settings.data_dir / "secret.key"
        if configured is None:
            assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        else:
            assert not key_file.exists()

        ping = client.post(f"{base}/{made['id']}/test", headers=auth)
        assert ping.status_code == 200, ping.text
        (got,) = receiver.wait_for(1)
        assert StandardVerifier(secret).verify(got.body, got.headers)["type"] == "webhook.test"

        rotated = client.post(f"{base}/{made['id']}/rotate-secret", headers=auth).json()
        current, previous = _raw_secrets(engine, made["id"])
        for value in (current, previous):
            assert value.startswith(PREFIX) and "whsec_" not in value
        assert rotated["secret"] not in current and secret not in previous

    # The dispatcher (another process in production) opens them with the same key.
    add_notifications(engine, keys["project_id"], "ingest.failed", [failed_payload()])
    _dispatch_once(settings, engine)
    _dispatch_once(settings, engine)
    delivered = receiver.wait_for(2)[1]
    StandardVerifier(rotated["secret"]).verify(delivered.body, delivered.headers)
    StandardVerifier(secret).verify(delivered.body, delivered.headers)  # overlap


def test_plaintext_rows_from_before_encryption_still_work(engine, hook_settings, receiver) -> None:  # noqa: ANN001
    settings = hook_settings()
    with Session(engine) as session, session.begin():
        keys = create_project(session, "legacy")
    hook_id, secret = new_webhook(engine, keys["project_id"], receiver.url(), ["ingest.failed"])
    assert _raw_secrets(engine, hook_id)[0] == secret  # the old, plaintext form
    add_notifications(engine, keys["project_id"], "ingest.failed", [failed_payload()])
    _dispatch_once(settings, engine)
    _dispatch_once(settings, engine)
    (got,) = receiver.wait_for(1)
    StandardVerifier(secret).verify(got.body, got.headers)
    # A rotation seals both the new secret and the old plaintext one.
    box = box_for(settings)
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        hook = session.get(Webhook, hook_id)
        new = registry.rotate_secret(hook, timedelta(hours=1), now, box)
        assert live_secrets(hook, now, box) == (new, secret)
    current, previous = _raw_secrets(engine, hook_id)
    assert current.startswith(PREFIX) and previous.startswith(PREFIX)


def test_box_refuses_short_keys_and_the_wrong_key() -> None:
    with pytest.raises(SecretKeyError):
        SecretBox("short")
    sealed = SecretBox("the first key, long enough").seal("whsec_abc")
    assert SecretBox("the first key, long enough").open(sealed) == "whsec_abc"
    with pytest.raises(SecretKeyError):
        SecretBox("another key, long enough too").open(sealed)
