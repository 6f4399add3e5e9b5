"""The seed's verification path end to end, with `inbound worker` as a real subprocess:
produce to Kafka (and POST over HTTP), then count with a filter and extract over HTTP; and a
replay that the worker accepts after the customer fixed the cause."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.api.app import create_app
from app.ingest.pipeline import keen_id_for
from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.keys import create_key
from app.store.models import ApiKey, IngestError
from app.store.projects import create_project
from tests.api.conftest import auth
from tests.support.worker import WorkerProcess, isolated_group

pytestmark = pytest.mark.kafka


def _produce(bootstrap: str, topic: str, value: bytes, key_id: str) -> tuple[int, int]:
    async def _send() -> tuple[int, int]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            meta = await producer.send_and_wait(
                topic, value, headers=[("inbound.key_id", key_id.encode())]
            )
            return meta.partition, meta.offset
        finally:
            await producer.stop()

    return asyncio.run(_send())


def _until(check: Callable[[], object], timeout: float = 30) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("timed out")


def test_produce_then_query_and_replay(
    db_url: str, make_settings: Callable[..., Settings], kafka_bootstrap: str, tmp_path: Path
) -> None:
    with session_scope(engine_for(db_url)) as s:
        project = create_project(s, "e2e")
        pid = project["project_id"]
        write_key_id = s.scalar(
            select(ApiKey.id).where(ApiKey.project_id == pid, ApiKey.kind == "write")
        )
        no_writes = create_key(s, pid, "access", name="not yet", permitted=[]).key.id
    # No key cache: the key fixed below applies to the very next record (no sleep needed).
    worker = WorkerProcess(
        db_url,
        kafka_bootstrap,
        tmp_path / "worker",
        INBOUND_WORKER_KEY_CACHE_SECONDS="0",
        **isolated_group(kafka_bootstrap),
    ).start()
    try:
        settings = make_settings(db_url, kafka_bootstrap=kafka_bootstrap)
        with TestClient(create_app(settings)) as client:
            # The seed's path: a Kafka client produces; queries over HTTP show the event.
            _produce(
                kafka_bootstrap,
                f"in.{pid}.purchases",
                orjson.dumps({"item": "kafka widget", "price": 30}),
                write_key_id,
            )
            r = client.post(
                f"/3.0/projects/{pid}/events/purchases",
                headers=auth(project["write_key"]),
                json={"item": "http widget", "price": 5},
            )
            assert r.status_code == 201
            h = auth(project["read_key"])
            count_url = f"/3.0/projects/{pid}/queries/count"
            query = {
                "event_collection": "purchases",
                "timeframe": "this_1_days",
                "filters": [{"property_name": "price", "operator": "gte", "property_value": 10}],
            }
            _until(lambda: client.post(count_url, headers=h, json=query).json()["result"] == 1)
            everything = {"event_collection": "purchases", "timeframe": "this_1_days"}
            _until(lambda: client.post(count_url, headers=h, json=everything).json()["result"] == 2)
            extracted = client.post(
                f"/3.0/projects/{pid}/queries/extraction", headers=h, json=query
            ).json()["result"]
            assert [e["item"] for e in extracted] == ["kafka widget"]
            assert set(extracted[0]["keen"]) >= {"id", "timestamp", "created_at"}

            # A key without writes: rejected. Fix the key, replay, and the worker stores it
            # under the original record's keen.id.
            topic = f"in.{pid}.refunds"
            coords = _produce(kafka_bootstrap, topic, b'{"amount": 3}', no_writes)

            def error_row() -> IngestError | None:
                with session_scope(engine_for(db_url)) as s:
                    return s.scalar(select(IngestError).where(IngestError.project_id == pid))

            row = _until(error_row)
            assert row.code == "key_not_permitted"
            with session_scope(engine_for(db_url)) as s:
                s.get(ApiKey, no_writes).permitted = ["writes"]
            hm = auth(project["master_key"])
            r = client.post(
                f"/3.0/projects/{pid}/errors/replay", headers=hm, json={"error_id": row.id}
            )
            assert r.status_code == 200 and len(r.json()["replayed"]) == 1, r.text
            refunds = {"event_collection": "refunds", "timeframe": "this_1_days"}
            _until(
                lambda: client.post(
                    f"/3.0/projects/{pid}/queries/extraction", headers=h, json=refunds
                ).json()["result"]
            )
            [stored] = client.post(
                f"/3.0/projects/{pid}/queries/extraction", headers=h, json=refunds
            ).json()["result"]
            assert stored["keen"]["id"] == keen_id_for(topic, *coords)

            def outcome() -> dict | None:
                got = client.get(f"/3.0/projects/{pid}/errors/{row.id}", headers=hm).json()
                result = got["replay_outcome"] or {}
                return got if result.get("status") == "accepted" else None

            final = _until(outcome)
            assert final["status"] == "replayed" and final["replay_count"] == 1
    finally:
        worker.stop()
        engine_for(db_url).dispose()
