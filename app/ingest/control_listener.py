"""Every worker reads every command on `inbound.control`.

A consumer group would hand each command to one worker of the group, so each worker reads
the topic on its own: no group, every partition assigned, from the end as of start-up (a
worker that starts has no stale state to fix, and the database poll covers anything sent
while it was down). Commands are best effort: the handler's effects are also reached by
the workers' periodic database reads, only later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from app.ingest.control import CONTROL_TOPIC
from app.kafka.client_options import KafkaClientOptions

log = logging.getLogger("inbound.worker")

Handler = Callable[[dict], None]


async def ensure_control_topic(kafka: KafkaClientOptions, replicas: int) -> list[int]:
    """Create `inbound.control` (one partition) unless it exists, as production brokers often
    refuse to create topics on first use; returns its partitions."""
    admin = AIOKafkaAdminClient(**kafka.aiokafka())
    await admin.start()
    try:
        if CONTROL_TOPIC not in set(await admin.list_topics()):
            try:
                await admin.create_topics([NewTopic(CONTROL_TOPIC, 1, replicas)])
                log.info("created the control topic %s", CONTROL_TOPIC)
            except TopicAlreadyExistsError:
                pass  # another worker made it first
        [described] = await admin.describe_topics([CONTROL_TOPIC])
        return sorted(p["partition"] for p in described["partitions"]) or [0]
    finally:
        await admin.close()


class ControlListener:
    """Reads `inbound.control` from its end and calls ``handler`` with each JSON command."""

    def __init__(self, kafka: KafkaClientOptions, replicas: int, handler: Handler) -> None:
        self._kafka = kafka
        self._replicas = replicas
        self._handler = handler
        self._consumer: AIOKafkaConsumer | None = None
        self.stopping = False

    async def start(self) -> None:
        """Fix the start position now, so a command sent once start() returned is seen. A
        broker not reachable yet is only logged: ``run_forever`` tries again."""
        try:
            await self._open()
        except Exception as exc:  # noqa: BLE001 - the worker must start without its commands
            log.warning("control topic not readable yet (%s); retrying", exc)

    async def _open(self) -> None:
        partitions = await ensure_control_topic(self._kafka, self._replicas)
        consumer = AIOKafkaConsumer(
            **self._kafka.aiokafka(), group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            tps = [TopicPartition(CONTROL_TOPIC, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            for tp in tps:
                await consumer.position(tp)  # the end offset now, not at the first fetch
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer

    async def stop(self) -> None:
        self.stopping = True
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def run(self) -> None:
        if self._consumer is None:
            await self._open()
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=1000)
            for messages in batch.values():
                for message in messages:
                    self._dispatch(message.value)

    def _dispatch(self, value: bytes | None) -> None:
        try:
            command = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            log.warning("ignored a control message that is not JSON")
            return
        if not isinstance(command, dict):
            log.warning("ignored a control message that is not a JSON object")
            return
        log.info("control command %s received", command.get("type"))
        try:
            self._handler(command)
        except Exception:  # one bad command must not stop the next ones
            log.exception("control command %s failed", command.get("type"))


async def run_forever(listener: ControlListener) -> None:
    """``listener.run`` restarted after a broker failure (the commands are best effort)."""
    delay = 1.0
    while not listener.stopping:
        try:
            await listener.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - retried; the database poll is the fallback
            if listener.stopping:
                return
            log.warning("control topic read failed (%s); retrying in %.0fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
