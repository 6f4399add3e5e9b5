"""A running worker per database backend, a project with keys, and Kafka helpers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import Engine, func, select

from app.store.db import make_engine, session_scope
from app.store.keys import create_key
from app.store.migrate import upgrade
from app.store.models import Event, IngestError
from app.store.projects import create_project
from tests.conftest import fresh_postgres_database
from tests.support.worker import WorkerProcess, wait_until


@dataclass
class Stack:
    db_url: str
    engine: Engine
    bootstrap: str
    project_id: str
    write_key_id: str
    autofill_key_id: str
    read_key_id: str
    worker: WorkerProcess
    data_dir: Path

    def topic(self, collection: str) -> str:
        return f"in.{self.project_id}.{collection}"

    def unique(self, prefix: str = "c") -> str:
        return f"{prefix}_{uuid.uuid4().hex[:8]}"

    def produce(
        self, topic: str, values: list[bytes], headers: list | None = None, key: bytes | None = None
    ) -> list[tuple[int, int]]:
        return asyncio.run(produce(self.bootstrap, topic, values, headers, key))

    def count_events(self, collection: str) -> int:
        with self.engine.connect() as conn:
            return conn.scalar(
                select(func.count())
                .select_from(Event)
                .where(Event.project_id == self.project_id, Event.collection == collection)
            )

    def events(self, collection: str) -> list[Event]:
        with session_scope(self.engine) as s:
            return list(
                s.scalars(select(Event).where(Event.collection == collection).order_by(Event.id))
            )

    def errors(self, collection: str) -> list[IngestError]:
        with session_scope(self.engine) as s:
            return list(
                s.scalars(
                    select(IngestError)
                    .where(IngestError.collection == collection)
                    .order_by(IngestError.source_offset)
                )
            )

    def wait_events(self, collection: str, n: int, timeout: float = 30) -> None:
        wait_until(
            lambda: self.count_events(collection) >= n,
            timeout,
            f"{collection}: {self.count_events(collection)}/{n} events\n{self.worker.tail()}",
        )

    def wait_errors(self, collection: str, n: int, timeout: float = 30) -> None:
        wait_until(
            lambda: len(self.errors(collection)) >= n,
            timeout,
            f"{collection}: {len(self.errors(collection))}/{n} errors\n{self.worker.tail()}",
        )


async def produce(
    bootstrap: str,
    topic: str,
    values: list[bytes],
    headers: list | None = None,
    key: bytes | None = None,
    **producer_args: object,
) -> list[tuple[int, int]]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_request_size=1_100_000, **producer_args
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, v, key=key, headers=headers or []) for v in values]
        done = [await f for f in futures]
        return [(md.partition, md.offset) for md in done]
    finally:
        await producer.stop()


async def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 20) -> list:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=3_000_000,
    )
    await consumer.start()
    out: list = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(out) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for msgs in batch.values():
                out.extend(msgs)
    finally:
        await consumer.stop()
    return out


def make_stack(db_url: str, bootstrap: str, data_dir: Path, **worker_env: str) -> Stack:
    engine = make_engine(db_url)
    with session_scope(engine) as s:
        project = create_project(s, "e2e")
        pid = project["project_id"]
        from app.store.keys import find_key

        write_key = find_key(s, project["write_key"])
        read_key = find_key(s, project["read_key"])
        autofill = create_key(
            s,
            pid,
            "access",
            name="mobile",
            permitted=["writes"],
            options={"writes": {"autofill": {"app": {"name": "ios", "v": 1}, "plan": "free"}}},
        )
        s.flush()
        ids = (write_key.id, autofill.key.id, read_key.id)
    worker = WorkerProcess(db_url, bootstrap, data_dir, **worker_env).start()
    return Stack(db_url, engine, bootstrap, pid, ids[0], ids[1], ids[2], worker, data_dir)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("stack")
    if request.param == "sqlite":
        url = f"sqlite:///{data_dir / 'inbound.db'}"
    else:
        url = fresh_postgres_database(request.getfixturevalue("postgres_server"))
    upgrade(url)
    s = make_stack(url, kafka_bootstrap, data_dir)
    try:
        yield s
    finally:
        s.worker.stop()
        s.engine.dispose()
