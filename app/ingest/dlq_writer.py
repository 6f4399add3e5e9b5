"""Writes dead letters to their DLQ topics, creating topics on demand, and waits for the acks."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from app.ingest.dlq import DLQ_MAX_MESSAGE_BYTES, DeadLetter

log = logging.getLogger(__name__)


class DlqWriter:
    def __init__(self, bootstrap: str, replicas: int, **client_args: object) -> None:
        self._bootstrap = bootstrap
        self._replicas = replicas
        self._client_args = client_args
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._known: set[str] = set()

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            enable_idempotence=True,
            max_request_size=DLQ_MAX_MESSAGE_BYTES + 64 * 1024,
            linger_ms=5,
            **self._client_args,
        )
        await self._producer.start()
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, **self._client_args)
        await self._admin.start()

    async def stop(self) -> None:
        if self._producer:
            await self._producer.stop()
        if self._admin:
            await self._admin.close()

    async def _ensure_topics(self, topics: set[str]) -> None:
        missing = topics - self._known
        if not missing:
            return
        assert self._admin is not None
        existing = set(await self._admin.list_topics())
        to_create = missing - existing
        if to_create:
            try:
                await self._admin.create_topics(
                    [
                        NewTopic(
                            name,
                            num_partitions=1,
                            replication_factor=self._replicas,
                            topic_configs={"max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES)},
                        )
                        for name in sorted(to_create)
                    ]
                )
                log.info("created DLQ topics %s", sorted(to_create))
            except TopicAlreadyExistsError:
                pass  # another worker made it first
        self._known |= missing

    async def write(self, letters: list[DeadLetter]) -> dict[str, tuple[int, int]]:
        """Produce every letter and wait for all acks; returns error_id -> (partition, offset).

        Raises on any broker refusal: the caller retries the whole batch, nothing is committed.
        """
        if not letters:
            return {}
        assert self._producer is not None
        await self._ensure_topics({letter.topic for letter in letters})
        futures = []
        for letter in letters:
            fut = await self._producer.send(
                letter.topic,
                value=letter.record.value,
                key=letter.record.key,
                headers=letter.headers(),
            )
            futures.append((letter.error_id, fut))
        results = await asyncio.gather(*(f for _, f in futures))
        return {
            eid: (md.partition, md.offset) for (eid, _), md in zip(futures, results, strict=True)
        }
