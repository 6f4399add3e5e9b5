"""The API's one Kafka producer (acks=all), started in the app lifespan.

When the broker is down at start-up the API still serves queries and errors; producing
endpoints answer 503 and the next produce tries to start the producer again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from app.api.problems import ApiError
from app.kafka.client_options import KafkaClientOptions
from app.kafka.connect_check import BackendUnavailable, check_backend

log = logging.getLogger(__name__)

# The broker's message.max.bytes (1048588) bounds a record batch; the 900 KB event limit is
# checked by the worker, so the producer must let anything up to the broker limit through.
MAX_REQUEST_SIZE = 1048576


class KafkaProducerHolder:
    def __init__(self, options: KafkaClientOptions | None, *, start_timeout: float = 10.0) -> None:
        self.options = options
        self.start_timeout = start_timeout
        # Set when the start-up check found settings that cannot work (a wrong password or
        # CA): producing endpoints answer 503 with it instead of retrying forever.
        self.config_error: str | None = None
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    @property
    def configured(self) -> bool:
        return self.options is not None

    @property
    def bootstrap(self) -> str | None:
        return self.options.bootstrap if self.options else None

    async def start(self) -> None:
        """Start if configured; a failure is logged, not raised (the next produce retries)."""
        if self.options is None:
            return
        try:
            await check_backend(self.options, self.start_timeout)
        except BackendUnavailable as exc:
            if exc.permanent:
                self.config_error = str(exc)
                log.error("Kafka producer not started: %s", exc)
            else:
                log.warning("Kafka producer not started (%s); producing endpoints will retry", exc)
            return
        try:
            await self._ensure()
        except ApiError:
            log.warning("Kafka producer not started; producing endpoints will retry")

    async def _ensure(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        if self.options is None:
            raise ApiError(
                503, "ServiceUnavailableError", "No Kafka is configured (INBOUND_KAFKA_BOOTSTRAP)."
            )
        if self.config_error is not None:
            raise ApiError(
                503,
                "ServiceUnavailableError",
                f"The backend Kafka settings do not work; the operator must fix them: "
                f"{self.config_error}",
            )
        async with self._lock:
            if self._producer is not None:
                return self._producer
            producer = AIOKafkaProducer(
                **self.options.aiokafka(),
                acks="all",
                enable_idempotence=True,
                max_request_size=MAX_REQUEST_SIZE,
                linger_ms=2,
            )
            try:
                await asyncio.wait_for(producer.start(), self.start_timeout)
            except Exception as exc:
                await _quiet_stop(producer)
                raise ApiError(
                    503, "ServiceUnavailableError", "Kafka is unavailable; retry later."
                ) from exc
            self._producer = producer
            return producer

    async def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        timeout: float = 15.0,
    ) -> RecordMetadata:
        """Produce one record and wait for the broker's acknowledgement (acks=all)."""
        producer = await self._ensure()
        try:
            future = await producer.send(topic, value=value, key=key, headers=headers or [])
            return await asyncio.wait_for(future, timeout)
        except ApiError:
            raise
        except Exception as exc:
            raise ApiError(
                503,
                "ServiceUnavailableError",
                f"Kafka did not accept the event: {type(exc).__name__}",
            ) from exc

    async def send_many(
        self,
        records: Sequence[OutgoingRecord],
        *,
        timeout: float = 30.0,
    ) -> list[RecordMetadata | ApiError]:
        """Produce every record without waiting for each acknowledgement in turn (the client
        batches them per partition, in order), then wait for all: per record, its metadata or
        the ApiError saying why the broker did not take it."""
        producer = await self._ensure()
        pending: list[asyncio.Future | ApiError] = []
        for record in records:
            try:
                pending.append(
                    await producer.send(
                        record.topic, value=record.value, key=record.key, headers=record.headers
                    )
                )
            except Exception as exc:
                pending.append(_unavailable(exc))
        waited = await asyncio.gather(
            *(_wait(item, timeout) for item in pending), return_exceptions=True
        )
        return [
            item if isinstance(item, RecordMetadata | ApiError) else _unavailable(item)
            for item in waited
        ]

    async def ping(self, timeout: float = 3.0) -> bool:
        """Whether the cluster answers a metadata request now."""
        try:
            producer = await self._ensure()
            await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout)
            return True
        except Exception:
            return False

    async def stop(self) -> None:
        if self._producer is not None:
            await _quiet_stop(self._producer)
            self._producer = None


class OutgoingRecord(Protocol):
    """What ``send_many`` reads of each record (app.api.replay.Prepared is one)."""

    @property
    def topic(self) -> str: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def headers(self) -> list[tuple[str, bytes]]: ...


def _unavailable(exc: BaseException) -> ApiError:
    return ApiError(
        503, "ServiceUnavailableError", f"Kafka did not accept the event: {type(exc).__name__}"
    )


async def _wait(item: asyncio.Future | ApiError, timeout: float) -> RecordMetadata | ApiError:
    if isinstance(item, ApiError):
        return item
    return await asyncio.wait_for(item, timeout)


async def _quiet_stop(producer: AIOKafkaProducer) -> None:
    try:
        await producer.stop()
    except Exception:  # stopping a half-started producer can fail; nothing left to do
        log.debug("producer stop failed", exc_info=True)
