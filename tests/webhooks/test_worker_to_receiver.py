"""The whole failure path with real processes: an invalid event produced to the real broker,
`inbound worker` rejects it, `inbound webhooks` delivers a signed ingest.failed to a real
receiver, and the error_id in the body is the error table row's.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook as StandardVerifier

from app.api.app import create_app
from app.store.models import IngestError, WebhookDelivery
from app.store.projects import create_project
from tests.support.worker import WorkerProcess, isolated_group, wait_until

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "one key for the API and the dispatcher, e2e"


def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, value)
        finally:
            await producer.stop()

    asyncio.run(send())


@pytest.fixture
def dispatcher_process(db_url: str, tmp_path: Path) -> Iterator[subprocess.Popen]:
    """`inbound webhooks`, started the way `inbound up` starts it: its own process."""
    log = tmp_path / "dispatcher.log"
    env = {
        **os.environ,
        "INBOUND_DATABASE_URL": db_url,
        "INBOUND_DATA_DIR": str(tmp_path / "dispatcher"),
        "INBOUND_SECRET_KEY": SECRET_KEY,
        "INBOUND_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on loopback
        "INBOUND_WEBHOOK_POLL_MS": "100",
        "INBOUND_WEBHOOK_BATCH_WINDOW_MS": "200",
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli.main", "webhooks"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    proc.log_path = log  # type: ignore[attr-defined]
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                # A dispatcher mid-delivery can take its whole timeout to stop: not waited for.
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def test_invalid_event_ends_as_signed_delivery_with_its_error_id(
    db_url, engine, make_settings, kafka_bootstrap, receiver, dispatcher_process, tmp_path
) -> None:
    with Session(engine) as session, session.begin():
        keys = create_project(session, "e2e webhooks")
    project = keys["project_id"]
    # Registered through the API, as a customer does (secret sealed with the shared key).
    settings = make_settings(db_url, webhook_allow_private=True, secret_key=SECRET_KEY)
    with TestClient(create_app(settings)) as client:
        made = client.post(
            f"/3.0/projects/{project}/webhooks",
            json={"url": receiver.url(), "event_types": ["ingest.failed"]},
            headers={"Authorization": keys["master_key"]},
        )
    assert made.status_code == 201, made.text
    hook_id, secret = made.json()["id"], made.json()["secret"]

    worker = WorkerProcess(
        db_url, kafka_bootstrap, tmp_path / "worker", **isolated_group(kafka_bootstrap)
    ).start()
    try:
        _produce(kafka_bootstrap, f"in.{project}.purchases", b"{not json")

        def error_row() -> IngestError | None:
            with Session(engine) as session:
                return session.scalar(select(IngestError).where(IngestError.project_id == project))

        row = wait_until(error_row, 60, lambda: f"no error row\n{worker.tail()}")
        assert row.code == "invalid_json" and row.collection == "purchases"

        def delivered() -> list:
            assert dispatcher_process.poll() is None, dispatcher_process.log_path.read_text()
            return receiver.requests

        (got,) = wait_until(
            delivered,
            60,
            lambda: "nothing delivered\n" + dispatcher_process.log_path.read_text()[-3000:],
        )
    finally:
        worker.stop()

    body = StandardVerifier(secret).verify(got.body, got.headers)
    assert body["type"] == "ingest.failed"
    data = body["data"]
    assert data["project_id"] == project and data["total"] == 1
    assert data["counts"] == [{"code": "invalid_json", "collection": "purchases", "count": 1}]
    assert data["counts_truncated"] is False
    (sample,) = data["samples"]
    assert sample["error_id"] == row.id
    assert sample["code"] == "invalid_json" and sample["collection"] == "purchases"
    assert sample["url"] == f"/3.0/projects/{project}/errors/{row.id}"
    with Session(engine) as session:
        delivery = session.get(WebhookDelivery, got.webhook_id)
        assert delivery is not None and delivery.webhook_id == hook_id

    def status() -> str | None:
        with Session(engine) as session:
            return session.scalar(
                select(WebhookDelivery.status).where(WebhookDelivery.id == got.webhook_id)
            )

    wait_until(lambda: status() == "delivered", 30, lambda: f"delivery is {status()}")
