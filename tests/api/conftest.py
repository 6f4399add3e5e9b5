"""Fixtures of the HTTP API tests: an app on a real database, two projects, event rows."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api.app import create_app
from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.models import Event, IngestError
from app.store.projects import create_project

ADMIN_TOKEN = "test-admin-token-0123456789"


@pytest.fixture
def api_settings(db_url: str, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(db_url, admin_token=ADMIN_TOKEN)


@pytest.fixture
def client(api_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings)) as c:
        yield c
    engine_for(api_settings.effective_database_url).dispose()


@pytest.fixture
def projects(api_settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """Two projects, A and B, each with master, write and read keys."""
    with session_scope(engine_for(api_settings.effective_database_url)) as session:
        a = create_project(session, "project A")
        b = create_project(session, "project B")
    return a, b


def auth(key: str) -> dict[str, str]:
    return {"Authorization": key}


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def insert_events(
    url: str, project_id: str, collection: str, events: list[tuple[datetime, dict[str, Any]]]
) -> list[str]:
    """Event rows as the worker writes them: body = the event plus its `keen` object."""
    ids = []
    with session_scope(engine_for(url)) as session:
        for at, props in events:
            keen_id = uuid.uuid4().hex
            created = datetime.now(UTC)
            body = dict(props)
            body["keen"] = {"id": keen_id, "timestamp": iso(at), "created_at": iso(created)}
            session.add(
                Event(
                    project_id=project_id,
                    collection=collection,
                    keen_id=keen_id,
                    keen_timestamp=at,
                    created_at=created,
                    body=body,
                )
            )
            ids.append(keen_id)
    return ids


def insert_error(
    url: str,
    project_id: str,
    *,
    collection: str = "purchases",
    code: str = "invalid_json",
    stage: str = "decode",
    payload: bytes = b'{"price": 1',
    created_at: datetime | None = None,
    status: str = "open",
    source: tuple[str, int, int] | None = None,
    dlq: tuple[str, int, int] | None = None,
    headers: list[tuple[str, bytes]] | None = None,
    key: bytes | None = b"k-1",
    replay_count: int = 0,
    cap: int = 65536,
) -> str:
    error_id = uuid.uuid4().hex
    at = created_at or datetime.now(UTC)
    source = source or (f"in.{project_id}.{collection}", 0, abs(hash(error_id)) % 10**9)
    with session_scope(engine_for(url)) as session:
        session.add(
            IngestError(
                id=error_id,
                project_id=project_id,
                collection=collection,
                code=code,
                stage=stage,
                message=f"{code} happened",
                detail={"where": "test"},
                source_topic=source[0],
                source_partition=source[1],
                source_offset=source[2],
                record_timestamp=at,
                payload=payload[:cap],
                payload_size=len(payload),
                payload_sha256=hashlib.sha256(payload).hexdigest(),
                record_key=key,
                headers=[[n, base64.b64encode(v).decode()] for n, v in (headers or [])],
                key_id=None,
                status=status,
                replay_count=replay_count,
                dlq_topic=dlq[0] if dlq else f"dlq.{project_id}.{collection}",
                dlq_partition=dlq[1] if dlq else 0,
                dlq_offset=dlq[2] if dlq else 7,
                created_at=at,
                updated_at=at,
            )
        )
    return error_id


@pytest.fixture
def kafka_settings(
    db_url: str, make_settings: Callable[..., Settings], kafka_bootstrap: str
) -> Settings:
    return make_settings(db_url, kafka_bootstrap=kafka_bootstrap, admin_token=ADMIN_TOKEN)


@pytest.fixture
def kafka_client(kafka_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(kafka_settings)) as c:
        yield c
    engine_for(kafka_settings.effective_database_url).dispose()


def read_records(bootstrap: str, topic: str, count: int, timeout: float = 20.0) -> list[Any]:
    """The first ``count`` records of a topic, read back with a real consumer."""
    import asyncio

    from aiokafka import AIOKafkaConsumer

    async def _read() -> list[Any]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
            metadata_max_age_ms=500,
        )
        await consumer.start()
        out: list[Any] = []
        try:
            deadline = asyncio.get_running_loop().time() + timeout
            while len(out) < count and asyncio.get_running_loop().time() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    out.extend(records)
        finally:
            await consumer.stop()
        return out

    return asyncio.run(_read())


def read_all(bootstrap: str, topic: str, timeout: float = 20.0) -> list[Any]:
    """Every record a topic holds now (none when it does not exist yet), read to its end."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def _read() -> list[Any]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        out: list[Any] = []
        try:
            if topic not in await consumer.topics():
                return out
            await consumer._client.force_metadata_update()  # the topic's partitions
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            deadline = asyncio.get_running_loop().time() + timeout
            while asyncio.get_running_loop().time() < deadline:
                positions = [await consumer.position(tp) for tp in parts]
                if all(at >= ends[tp] for at, tp in zip(positions, parts, strict=True)):
                    break
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    out.extend(records)
        finally:
            await consumer.stop()
        return out

    return asyncio.run(_read())
