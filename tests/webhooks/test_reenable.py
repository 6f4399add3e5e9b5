"""README: `PATCH {"is_active": true}` re-enables a disabled webhook, and it delivers again.

Both ways a webhook gets disabled: by its failures (the dispatcher) and by the user (the API).
The API is the real FastAPI app; the receiver and the dispatcher are real.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook as StandardVerifier

from app.api.app import create_app
from app.store.projects import create_project
from app.webhooks.dispatcher import Dispatcher
from tests.webhooks.helpers import (
    FakeClock,
    NoJitter,
    add_notifications,
    deliveries_of,
    dispatch_once,
)
from tests.webhooks.receiver import Reply


@pytest.mark.parametrize("disabled_by", ["failures", "user"])
def test_patch_is_active_true_delivers_again(
    engine, receiver, hook_settings, disabled_by: str
) -> None:
    clock = FakeClock()
    failing = True
    receiver.plan = lambda _r: Reply(500, b"down") if failing else Reply(200, b"back")
    settings = hook_settings(webhook_disable_after_failures=2, webhook_disable_after_seconds=60)
    with Session(engine) as session, session.begin():
        keys = create_project(session, "re-enable")
    project = keys["project_id"]
    auth = {"Authorization": keys["master_key"]}
    base = f"/3.0/projects/{project}/webhooks"

    def passes(n: int = 1) -> None:
        # A dispatcher per asyncio.run: its HTTP client belongs to one event loop.
        dispatch_once(Dispatcher(settings, engine, clock=clock, rng=NoJitter()), n)

    with TestClient(create_app(settings)) as client:
        made = client.post(
            base, json={"url": receiver.url(), "event_types": ["dlq.paused"]}, headers=auth
        )
        assert made.status_code == 201, made.text
        hook_id, secret = made.json()["id"], made.json()["secret"]
        path = f"{base}/{hook_id}"

        if disabled_by == "failures":
            add_notifications(engine, project, "dlq.paused", [{"collection": "c", "reason": "1"}])
            passes()  # attempt 1 fails
            clock.advance(60)
            passes()  # attempt 2 fails, 2 failures over 60 s: disabled
            shown = client.get(path, headers=auth).json()
            assert shown["is_active"] is False
            assert "consecutive failed attempts" in shown["disabled_reason"]
            assert shown["consecutive_failures"] == 2
        else:
            off = client.patch(path, json={"is_active": False}, headers=auth)
            assert off.status_code == 200 and off.json()["is_active"] is False
        sent_while_active = len(receiver.requests)

        # While disabled: nothing goes out, whatever happens.
        failing = False
        add_notifications(engine, project, "dlq.paused", [{"collection": "c", "reason": "off"}])
        # Past the failing delivery's next retry (30 s after attempt 2); the fake clock stays
        # within the 5 minutes a Standard Webhooks verifier tolerates.
        clock.advance(30)
        passes(2)
        assert len(receiver.requests) == sent_while_active

        on = client.patch(path, json={"is_active": True}, headers=auth)
        assert on.status_code == 200, on.text
        shown = on.json()
        assert shown["is_active"] is True and shown["disabled_reason"] is None
        assert shown["consecutive_failures"] == 0 and shown["failing_since"] is None
        assert client.get(path, headers=auth).json()["is_active"] is True

        add_notifications(engine, project, "dlq.paused", [{"collection": "c", "reason": "on"}])
        passes()

    reasons = [r.json["data"]["reason"] for r in receiver.requests[sent_while_active:]]
    assert "on" in reasons
    got = next(r for r in receiver.requests if r.json["data"]["reason"] == "on")
    assert StandardVerifier(secret).verify(got.body, got.headers)["type"] == "dlq.paused"
    delivered = {d.id for d in deliveries_of(engine, hook_id) if d.status == "delivered"}
    assert got.webhook_id in delivered
    if disabled_by == "failures":
        # The delivery that was failing when the webhook was disabled resumes under its own
        # webhook-id once the webhook is back (it fell due while disabled).
        first = [r for r in receiver.requests if r.json["data"]["reason"] == "1"]
        assert len(first) == 3 and len({r.webhook_id for r in first}) == 1
        assert first[-1].webhook_id in delivered
