"""Writes dead letters to their DLQ topics, creating topics on demand, and waits for the acks."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAlreadyExistsError,
)

from app.ingest.dlq import DLQ_MAX_MESSAGE_BYTES, DeadLetter, DlqRecord
from app.kafka.client_options import KafkaClientOptions

log = logging.getLogger(__name__)

# The producer or the broker refusing one record for what it is (its size, a null key and
# value, a header it cannot encode): retrying it unchanged would fail forever and stall every
# tenant behind it, so the letter is produced again in its reduced form. Anything else
# (connections, timeouts, leader changes, missing replicas) is the broker being unavailable:
# it propagates and the caller retries the batch.
RECORD_FAULTS: tuple[type[BaseException], ...] = (
    AssertionError,
    TypeError,
    ValueError,
    UnicodeError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
    InvalidTimestampError,
)


class DlqWriter:
    def __init__(self, kafka: KafkaClientOptions, replicas: int) -> None:
        self._kafka = kafka
        self._replicas = replicas
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._known: set[str] = set()

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            **self._kafka.aiokafka(),
            acks="all",
            enable_idempotence=True,
            max_request_size=DLQ_MAX_MESSAGE_BYTES + 64 * 1024,
            linger_ms=5,
        )
        await self._producer.start()
        self._admin = AIOKafkaAdminClient(**self._kafka.aiokafka())
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

        A letter refused for what it is (see RECORD_FAULTS) is produced again with an empty
        value and only the error headers. Raises on broker unavailability: the caller retries
        the whole batch, nothing is committed.
        """
        if not letters:
            return {}
        assert self._producer is not None
        await self._ensure_topics({letter.dlq_topic for letter in letters})
        sent: list[asyncio.Future | BaseException] = []
        for letter in letters:
            sent.append(await self._send(letter, letter.dlq_record()))
        waiting = [s for s in sent if not isinstance(s, BaseException)]
        acked = iter(await asyncio.gather(*waiting, return_exceptions=True))
        coordinates: dict[str, tuple[int, int]] = {}
        for letter, attempt in zip(letters, sent, strict=True):
            result = attempt if isinstance(attempt, BaseException) else next(acked)
            if isinstance(result, BaseException):
                if not isinstance(result, RECORD_FAULTS):
                    raise result
                reason = f"{type(result).__name__}: {result}"
                log.warning(
                    "DLQ refused the dead letter of %s[%d]@%d (%s); producing it without value",
                    letter.source_topic,
                    letter.source_partition,
                    letter.source_offset,
                    reason,
                )
                fut = await self._send(letter, letter.dlq_record(refused=reason))
                if isinstance(fut, BaseException):
                    raise fut
                result = await fut
            coordinates[letter.error_id] = (result.partition, result.offset)
        return coordinates

    async def _send(self, letter: DeadLetter, record: DlqRecord) -> asyncio.Future | BaseException:
        """The ack future, or the record fault ``send`` raised for this record at once."""
        assert self._producer is not None
        try:
            return await self._producer.send(
                letter.dlq_topic, value=record.value, key=record.key, headers=record.headers
            )
        except RECORD_FAULTS as exc:
            return exc
