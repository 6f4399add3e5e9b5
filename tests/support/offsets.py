"""Whether a consumer group has committed everything in a topic (the worker is caught up)."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

WORKER_GROUP = "inbound-ingest"


async def _lag(bootstrap: str, topic: str, group: str) -> dict[int, tuple[int, int]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        [described] = await admin.describe_topics([topic])
        tps = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        ends = await consumer.end_offsets(tps)
        committed = await admin.list_consumer_group_offsets(group, partitions=tps)
        return {
            tp.partition: (committed[tp].offset if tp in committed else -1, ends[tp]) for tp in tps
        }
    finally:
        await consumer.stop()
        await admin.close()


def committed_and_end(bootstrap: str, topic: str, group: str = WORKER_GROUP) -> dict:
    """partition -> (committed offset or -1, log end offset)."""
    return asyncio.run(_lag(bootstrap, topic, group))


def caught_up(bootstrap: str, topic: str, group: str = WORKER_GROUP) -> bool:
    """True once ``group``'s committed offsets reach the end of every partition of ``topic``:
    every record, redelivered ones included, has been processed and committed."""
    offsets = committed_and_end(bootstrap, topic, group)
    return bool(offsets) and all(end == 0 or done >= end for done, end in offsets.values())
