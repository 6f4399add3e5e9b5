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


async def _commit_ends(bootstrap: str, group: str, prefix: str) -> int:
    from aiokafka.structs import OffsetAndMetadata

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(prefix)]
        described = await admin.describe_topics(topics) if topics else []
    finally:
        await admin.close()
    tps = [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]
    if not tps:
        return 0
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.commit({tp: OffsetAndMetadata(end, "") for tp, end in ends.items()})
    finally:
        await consumer.stop()
    return len(tps)


def start_group_at_end(bootstrap: str, group: str, prefix: str = "in.") -> int:
    """Commit ``group``'s offsets at the end of every topic named ``prefix``… that exists now,
    so a worker of that new group starts with what is produced from here on (and topics made
    later from their start), not with what earlier tests left on the shared broker. Returns
    the partitions committed."""
    return asyncio.run(_commit_ends(bootstrap, group, prefix))
