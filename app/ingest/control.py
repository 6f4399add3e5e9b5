"""Commands for running workers, sent on the `inbound.control` topic (best effort).

Every worker reads every command (app/ingest/control_listener.py): ``{"type": "resume"}``
(a paused stream was resumed in the database), ``{"type": "invalidate_keys"}`` and
``{"type": "invalidate_projects"}`` (a key revoked, a project deactivated or its options
changed: read keys, projects and options again now). Workers also read pauses every two
seconds and keys, projects and options every INBOUND_WORKER_KEY_CACHE_SECONDS, so a lost
command only delays the effect.
"""

from __future__ import annotations

import asyncio
import logging

import orjson

from app.kafka.client_options import KafkaClientOptions

CONTROL_TOPIC = "inbound.control"
log = logging.getLogger(__name__)


async def _send(kafka: KafkaClientOptions, command: dict) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(request_timeout_ms=5000, **kafka.aiokafka())
    await producer.start()
    try:
        await producer.send_and_wait(CONTROL_TOPIC, orjson.dumps(command))
    finally:
        await producer.stop()


async def send_command_async(kafka: KafkaClientOptions | None, command: dict) -> bool:
    """``send_command`` for a caller already on an event loop (an API route)."""
    if kafka is None:
        return False
    try:
        await asyncio.wait_for(_send(kafka, command), timeout=10)
        return True
    except Exception as exc:  # noqa: BLE001 - the database poll is the fallback
        log.info("control command not sent (%s); workers apply it at their next poll", exc)
        return False


def send_command(kafka: KafkaClientOptions | None, command: dict) -> bool:
    """True when the broker took the command; False (logged) when it could not be sent."""
    if kafka is None:
        return False
    return asyncio.run(send_command_async(kafka, command))
