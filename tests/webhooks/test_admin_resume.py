"""Resuming a paused stream from /admin tells the project's webhooks with dlq.resumed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook as StandardVerifier

from app.api.app import create_app
from app.store.models import StreamPause
from app.store.projects import create_project
from app.webhooks.dispatcher import Dispatcher
from tests.webhooks.helpers import new_webhook

TOKEN = "admin-token-for-resume-0123456789"


def test_admin_resume_delivers_dlq_resumed(engine, hook_settings, receiver) -> None:  # noqa: ANN001
    settings = hook_settings(admin_token=TOKEN)
    with Session(engine) as session, session.begin():
        keys = create_project(session, "paused")
        pid = keys["project_id"]
        pause = StreamPause(
            project_id=pid,
            collection="orders",
            topic=f"in.{pid}.orders",
            partition=2,
            reason="95% rejected",
            paused_at=datetime.now(UTC),
        )
        session.add(pause)
        session.flush()
        pause_id = pause.id
    _hook_id, secret = new_webhook(engine, pid, receiver.url(), ["dlq.resumed"])
    with TestClient(create_app(settings)) as client:
        r = client.post(
            f"/admin/projects/{pid}/pauses/{pause_id}/resume",
            headers={"Authorization": f"Bearer {TOKEN}", "X-Inbound-Actor": "sam"},
        )
        assert r.status_code == 200, r.text

    async def dispatch() -> None:
        dispatcher = Dispatcher(settings, engine)
        try:
            for _ in range(2):  # outbox -> delivery, then the delivery is sent
                await dispatcher.run_once()
        finally:
            await dispatcher.aclose()

    asyncio.run(dispatch())
    (got,) = receiver.wait_for(1)
    event = StandardVerifier(secret).verify(got.body, got.headers)
    assert event["type"] == "dlq.resumed"
    assert event["data"]["collection"] == "orders"
    assert event["data"]["partitions"] == [2]
    assert event["data"]["resumed_by"] == "admin:sam"
