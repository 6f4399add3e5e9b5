"""Reading a backend topic with any backend client options (a secured broker's too)."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from app.kafka.client_options import KafkaClientOptions


async def read_records(
    options: KafkaClientOptions, topic: str, count: int, timeout: float = 30.0
) -> list[ConsumerRecord]:
    """Up to ``count`` records of ``topic`` from the beginning, read with ``options``; what
    arrived by ``timeout`` (the test's assertion shows a shortfall)."""
    consumer = AIOKafkaConsumer(
        topic, **options.aiokafka(), auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: list[ConsumerRecord] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while len(out) < count and loop.time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(records)
    finally:
        await consumer.stop()
    return out


def read_records_sync(
    options: KafkaClientOptions, topic: str, count: int, timeout: float = 30.0
) -> list[ConsumerRecord]:
    return asyncio.run(read_records(options, topic, count, timeout))
