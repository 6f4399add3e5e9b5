"""The webhooks API through the real FastAPI app, with a real loopback receiver."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook as StandardVerifier
from standardwebhooks.webhooks import WebhookVerificationError

from app.api.app import create_app
from app.store.projects import create_project
from app.webhooks.dispatcher import Dispatcher
from tests.webhooks.helpers import add_notifications, verify_from_spec
from tests.webhooks.receiver import Reply


@pytest.fixture
def api(engine, hook_settings):  # noqa: ANN001, ANN201
    settings = hook_settings()
    with Session(engine) as session, session.begin():
        keys = create_project(session, "api")
        other = create_project(session, "other")
    with TestClient(create_app(settings)) as client:
        yield client, keys, other, settings


def _auth(keys: dict[str, str], kind: str = "master_key") -> dict[str, str]:
    return {"Authorization": keys[kind]}


def _run_dispatcher_once(settings, engine) -> None:  # noqa: ANN001
    async def go() -> None:
        dispatcher = Dispatcher(settings, engine)
        try:
            await dispatcher.run_once()
        finally:
            await dispatcher.aclose()

    asyncio.run(go())


def test_crud_rotation_and_ping(api, receiver) -> None:
    client, keys, _other, _settings = api
    base = f"/3.0/projects/{keys['project_id']}/webhooks"
    made = client.post(
        base,
        json={"url": receiver.url(), "event_types": ["ingest.failed"], "collections": ["a"]},
        headers=_auth(keys),
    )
    assert made.status_code == 201, made.text
    hook = made.json()
    secret = hook["secret"]
    assert secret.startswith("whsec_") and hook["is_active"]

    listed = client.get(base, headers=_auth(keys)).json()["webhooks"]
    assert [h["id"] for h in listed] == [hook["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in client.get(f"{base}/{hook['id']}", headers=_auth(keys)).json()

    patched = client.patch(
        f"{base}/{hook['id']}",
        json={"event_types": ["ingest.failed", "dlq.paused"], "collections": None},
        headers=_auth(keys),
    ).json()
    assert patched["event_types"] == ["dlq.paused", "ingest.failed"]
    assert patched["collections"] is None

    ping = client.post(f"{base}/{hook['id']}/test", headers=_auth(keys))
    assert ping.status_code == 200, ping.text
    (got,) = receiver.wait_for(1)
    assert StandardVerifier(secret).verify(got.body, got.headers)["type"] == "webhook.test"
    assert ping.json()["id"] == got.webhook_id
    assert ping.json()["status"] == "delivered"
    (attempt,) = ping.json()["attempt_log"]
    assert attempt["status_code"] == 200 and attempt["response_excerpt"] == "ok"

    rotated = client.post(f"{base}/{hook['id']}/rotate-secret", headers=_auth(keys)).json()
    new_secret = rotated["secret"]
    assert new_secret != secret
    client.post(f"{base}/{hook['id']}/test", headers=_auth(keys))
    second = receiver.wait_for(2)[1]
    # During the overlap both the old and the new secret verify.
    StandardVerifier(secret).verify(second.body, second.headers)
    assert verify_from_spec(new_secret, second.headers, second.body)

    client.post(
        f"{base}/{hook['id']}/rotate-secret",
        json={"previous_valid_seconds": 0},
        headers=_auth(keys),
    )
    client.post(f"{base}/{hook['id']}/test", headers=_auth(keys))
    third = receiver.wait_for(3)[2]
    with pytest.raises(WebhookVerificationError):
        StandardVerifier(new_secret).verify(third.body, third.headers)

    assert client.delete(f"{base}/{hook['id']}", headers=_auth(keys)).status_code == 204
    assert client.get(f"{base}/{hook['id']}", headers=_auth(keys)).status_code == 404


def test_auth_isolation_and_validation(api, receiver) -> None:
    client, keys, other, _settings = api
    base = f"/3.0/projects/{keys['project_id']}/webhooks"
    body = {"url": receiver.url(), "event_types": ["ingest.failed"]}
    assert client.post(base, json=body).status_code == 401
    assert client.post(base, json=body, headers=_auth(keys, "read_key")).status_code == 403
    assert client.post(base, json=body, headers=_auth(other)).status_code == 403
    bad = client.post(base, json={**body, "event_types": ["nope"]}, headers=_auth(keys))
    assert bad.status_code == 400
    assert (
        client.post(base, json={**body, "url": "ftp://x/"}, headers=_auth(keys)).status_code == 400
    )
    hook = client.post(base, json=body, headers=_auth(keys)).json()
    # Another project's master key cannot see it, even through its own path.
    other_base = f"/3.0/projects/{other['project_id']}/webhooks"
    assert client.get(f"{other_base}/{hook['id']}", headers=_auth(other)).status_code == 404
    assert client.get(other_base, headers=_auth(other)).json() == {"webhooks": []}


def test_private_urls_refused_unless_allowed(engine, make_settings, db_url) -> None:
    with Session(engine) as session, session.begin():
        keys = create_project(session, "ssrf")
    base = f"/3.0/projects/{keys['project_id']}/webhooks"
    with TestClient(create_app(make_settings(db_url, webhook_allow_private=False))) as client:
        for url in (
            "http://127.0.0.1:9/x",
            "http://localhost/x",
            "http://169.254.169.254/latest/meta-data",
            "http://10.1.2.3/",
            "http://[::1]/",
        ):
            answer = client.post(base, json={"url": url}, headers=_auth(keys))
            assert answer.status_code == 400, url
            assert answer.json()["error_code"] == "InvalidWebhookUrlError"


def test_delivery_log_and_redelivery(api, receiver, engine) -> None:
    client, keys, _other, settings = api
    project = keys["project_id"]
    base = f"/3.0/projects/{project}/webhooks"
    replies = iter([Reply(500, b"nope"), Reply(200, b"thanks")])
    receiver.plan = lambda _r: next(replies, Reply())
    hook = client.post(
        base, json={"url": receiver.url(), "event_types": ["dlq.paused"]}, headers=_auth(keys)
    ).json()
    add_notifications(engine, project, "dlq.paused", [{"collection": "c", "reason": "r"}])
    _run_dispatcher_once(settings, engine)

    log = client.get(f"{base}/{hook['id']}/deliveries", headers=_auth(keys)).json()["deliveries"]
    (delivery,) = log
    assert delivery["status"] == "pending" and delivery["attempts"] == 1
    detail = client.get(f"{base}/{hook['id']}/deliveries/{delivery['id']}", headers=_auth(keys))
    (attempt,) = detail.json()["attempt_log"]
    assert attempt["status_code"] == 500 and attempt["response_excerpt"] == "nope"
    assert attempt["latency_ms"] >= 0
    # Still queued: redelivery is refused until it is delivered or failed.
    path = f"{base}/{hook['id']}/deliveries/{delivery['id']}/redeliver"
    assert client.post(path, headers=_auth(keys)).status_code == 409

    with Session(engine) as session, session.begin():
        from app.store.models import WebhookDelivery

        row = session.get(WebhookDelivery, delivery["id"])
        row.next_attempt_at = row.created_at  # due now instead of in 5 s
    _run_dispatcher_once(settings, engine)
    done = client.get(f"{base}/{hook['id']}/deliveries?status=delivered", headers=_auth(keys))
    assert [d["id"] for d in done.json()["deliveries"]] == [delivery["id"]]

    assert client.post(path, headers=_auth(keys)).status_code == 202
    _run_dispatcher_once(settings, engine)
    got = receiver.wait_for(3)
    assert {r.webhook_id for r in got} == {delivery["id"]}  # same webhook-id each time
    detail = client.get(f"{base}/{hook['id']}/deliveries/{delivery['id']}", headers=_auth(keys))
    assert [a["status_code"] for a in detail.json()["attempt_log"]] == [500, 200, 200]
    assert detail.json()["status"] == "delivered"
