"""The worker and the API on a SASL_SSL backend with SCRAM (issue #15): events produced to the
backend over SCRAM are stored, rejects reach their DLQ topic, the API produces over it, and a
wrong password or CA stops the worker at start with one error naming the setting."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.api.app import create_app
from app.kafka.secured_local import SecuredKafka
from app.store.db import engine_for, session_scope
from app.store.keys import find_key
from app.store.migrate import upgrade
from app.store.models import Event, IngestError
from app.store.projects import create_project
from tests.support.secured_kafka import read_records_sync
from tests.support.worker import WorkerProcess, wait_until

MECHANISM = "SCRAM-SHA-512"


def _project(url: str) -> tuple[str, str, str]:
    upgrade(url)
    with session_scope(engine_for(url)) as session:
        project = create_project(session, f"secured-{uuid.uuid4().hex[:6]}")
        key = find_key(session, project["write_key"])
        assert key is not None
        return project["project_id"], project["write_key"], key.id


def _count(url: str, model: type, project_id: str) -> int:
    with engine_for(url).connect() as conn:
        return int(
            conn.scalar(
                select(func.count()).select_from(model).where(model.project_id == project_id)
            )
            or 0
        )


async def _produce(secured: SecuredKafka, topic: str, values: list[bytes], key_id: str) -> None:
    producer = AIOKafkaProducer(acks="all", **secured.options(MECHANISM).aiokafka())
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(
                topic, value, headers=[("inbound.key_id", key_id.encode())]
            )
    finally:
        await producer.stop()


def test_worker_and_api_ingest_over_sasl_ssl_scram(
    secured_kafka: SecuredKafka, sqlite_url: str, tmp_path: Path, make_settings: object
) -> None:
    project_id, write_key, key_id = _project(sqlite_url)
    worker = WorkerProcess(
        sqlite_url, secured_kafka.bootstrap, tmp_path / "worker", **secured_kafka.env(MECHANISM)
    ).start()
    try:
        topic = f"in.{project_id}.orders"
        asyncio.run(_produce(secured_kafka, topic, [b'{"item": "book"}', b'{"$bad": 1}'], key_id))
        wait_until(lambda: _count(sqlite_url, Event, project_id) == 1, 60, worker.tail)
        wait_until(lambda: _count(sqlite_url, IngestError, project_id) == 1, 60, worker.tail)
        [dead] = read_records_sync(secured_kafka.options(MECHANISM), f"dlq.{project_id}.orders", 1)
        assert dead.value == b'{"$bad": 1}'
        assert dict(dead.headers)["inbound.error.code"] == b"invalid_property_name"

        # The API's producer over the same SCRAM connection; the worker stores what it sent.
        settings = make_settings(sqlite_url, **secured_kafka.settings(MECHANISM))  # type: ignore[operator]
        with TestClient(create_app(settings)) as client:
            r = client.post(
                f"/3.0/projects/{project_id}/events/orders",
                headers={"Authorization": write_key},
                json={"item": "pen"},
            )
            assert r.status_code == 201, r.text
        wait_until(lambda: _count(sqlite_url, Event, project_id) == 2, 60, worker.tail)
        with session_scope(engine_for(sqlite_url)) as s:
            items = sorted(
                e.body["item"] for e in s.scalars(select(Event)).all() if e.project_id == project_id
            )
        assert items == ["book", "pen"]
        assert "over SASL_SSL as inbound512 (SCRAM-SHA-512)" in worker.tail(200)
    finally:
        worker.stop()


def _worker_exit(url: str, tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "app.cli.main", "worker"],
        env={
            **os.environ,
            "INBOUND_DATABASE_URL": url,
            "INBOUND_DATA_DIR": str(tmp_path),
            "INBOUND_WORKER_METRICS_PORT": "0",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_wrong_password_stops_the_worker_with_one_error(
    secured_kafka: SecuredKafka, sqlite_url: str, tmp_path: Path
) -> None:
    env = {**secured_kafka.env(MECHANISM), "INBOUND_KAFKA_SASL_PASSWORD": "not-the-password"}
    result = _worker_exit(sqlite_url, tmp_path, env)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "SASL authentication as 'inbound512' (SCRAM-SHA-512) failed" in out
    assert out.count("INBOUND_KAFKA_SASL_PASSWORD") == 1
    assert "not-the-password" not in out


def test_a_wrong_ca_stops_the_worker_with_one_error(
    secured_kafka: SecuredKafka, sqlite_url: str, tmp_path: Path
) -> None:
    from app.tls.dev_certs import make_dev_certs

    other = make_dev_certs(tmp_path / "other-ca")
    env = {**secured_kafka.env(MECHANISM), "INBOUND_KAFKA_SSL_CAFILE": str(other["ca_cert"])}
    result = _worker_exit(sqlite_url, tmp_path, env)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "TLS certificate is not trusted" in out
    assert "INBOUND_KAFKA_SSL_CAFILE" in out


def test_the_api_answers_503_naming_the_setting_on_a_wrong_password(
    secured_kafka: SecuredKafka, sqlite_url: str, make_settings: object
) -> None:
    project_id, write_key, _ = _project(sqlite_url)
    settings = make_settings(  # type: ignore[operator]
        sqlite_url,
        **{**secured_kafka.settings(MECHANISM), "kafka_sasl_password": "pw-that-fails-42"},
    )
    with TestClient(create_app(settings)) as client:
        r = client.post(
            f"/3.0/projects/{project_id}/events/orders",
            headers={"Authorization": write_key},
            json={"item": "pen"},
        )
    assert r.status_code == 503
    body = r.json()
    assert body["error_code"] == "ServiceUnavailableError"
    assert "INBOUND_KAFKA_SASL_PASSWORD" in body["message"]
    assert "pw-that-fails-42" not in body["message"]


pytestmark = pytest.mark.kafka
