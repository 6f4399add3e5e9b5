"""The soak's customer producers, each a real client through the Kafka edge (SASL_SSL, PLAIN,
project id + write key), each telling exactly which records the broker acknowledged:

- librdkafka (confluent-kafka) without compression, with lz4 and with zstd, idempotent;
- the official Java producer (bench/java/SoakProducer.java, run from source by the JDK);
- an idempotent aiokafka producer.

Every producer has ``send(topic, soak_id, value)`` (never blocks for an acknowledgement),
``acked`` / ``failed`` (soak ids, filled from delivery callbacks), ``in_flight()``,
``acked_at`` (the times of acknowledgements, for the fault table) and ``close(timeout)``
(flush, then stop).
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.kafka.jars import classpath

JAVA_SOURCE = Path(__file__).resolve().parent / "java" / "SoakProducer.java"


@dataclass(frozen=True)
class Edge:
    """Where and as whom the producers connect."""

    host: str
    port: int
    project_id: str
    write_key: str
    ca_file: str


@dataclass
class Tally:
    """What one producer sent and what its delivery reports said, guarded by one lock."""

    name: str
    sent: int = 0
    acked: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)
    acked_at: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, soak_id: str) -> None:
        with self.lock:
            self.acked.add(soak_id)
            self.acked_at.append(time.monotonic())

    def fail(self, soak_id: str, reason: str) -> None:
        with self.lock:
            self.failed[soak_id] = reason

    def in_flight(self) -> int:
        with self.lock:
            return self.sent - len(self.acked) - len(self.failed)


class LibrdkafkaProducer:
    def __init__(self, name: str, edge: Edge, compression: str) -> None:
        from confluent_kafka import Producer

        self.tally = Tally(name)
        self._producer = Producer(
            {
                "bootstrap.servers": f"{edge.host}:{edge.port}",
                "security.protocol": "SASL_SSL",
                "sasl.mechanisms": "PLAIN",
                "sasl.username": edge.project_id,
                "sasl.password": edge.write_key,
                "ssl.ca.location": edge.ca_file,
                "acks": "all",
                "enable.idempotence": True,
                "compression.type": compression,
                "linger.ms": 20,
                # Deliver through any outage the soak makes: a record fails only after this.
                "message.timeout.ms": 300_000,
                "log_level": 2,  # connection churn during faults is expected; results say more
            }
        )
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name=f"poll-{name}", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def _report(self, soak_id: str):  # noqa: ANN202 - a delivery callback
        def done(error, _message) -> None:  # noqa: ANN001
            if error is None:
                self.tally.ack(soak_id)
            else:
                self.tally.fail(soak_id, str(error.name()))

        return done

    def send(self, topic: str, soak_id: str, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(topic, value, on_delivery=self._report(soak_id))
                break
            except BufferError:  # the local queue is full during an outage: wait for room
                time.sleep(0.05)
        with self.tally.lock:
            self.tally.sent += 1

    def close(self, timeout: float) -> None:
        self._producer.flush(timeout)
        self._stop.set()
        self._poller.join(5)


class JavaProducer:
    """The official Java client, fed one line per record; it prints ACK/FAIL per callback."""

    def __init__(self, name: str, edge: Edge, cache_dir: Path, work_dir: Path) -> None:
        self.tally = Tally(name)
        work_dir.mkdir(parents=True, exist_ok=True)
        config = work_dir / f"{name}.properties"
        config.write_text(
            "\n".join(
                [
                    f"bootstrap.servers={edge.host}:{edge.port}",
                    "security.protocol=SASL_SSL",
                    "sasl.mechanism=PLAIN",
                    "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule "
                    f'required username="{edge.project_id}" password="{edge.write_key}";',
                    "ssl.truststore.type=PEM",
                    f"ssl.truststore.location={edge.ca_file}",
                    "acks=all",
                    "enable.idempotence=true",
                    "linger.ms=20",
                    "delivery.timeout.ms=300000",
                    "request.timeout.ms=30000",
                ]
            )
            + "\n"
        )
        self._proc = subprocess.Popen(
            ["java", "-Xmx256m", "-cp", classpath(cache_dir), str(JAVA_SOURCE), str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(work_dir / f"{name}.log", "ab"),  # noqa: SIM115 - the child's for its life
            text=True,
            bufsize=1,
        )
        self._done = threading.Event()
        self._reader = threading.Thread(target=self._read, name=f"read-{name}", daemon=True)
        self._reader.start()
        self._write_lock = threading.Lock()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            kind, _, rest = line.strip().partition(" ")
            if kind == "ACK":
                self.tally.ack(rest)
            elif kind == "FAIL":
                soak_id, _, reason = rest.partition(" ")
                self.tally.fail(soak_id, reason)
            elif kind == "DONE":
                break
        self._done.set()

    def send(self, topic: str, soak_id: str, value: bytes) -> None:
        assert self._proc.stdin is not None
        with self._write_lock:
            self._proc.stdin.write(f"{topic}\t{soak_id}\t{value.decode()}\n")
        with self.tally.lock:
            self.tally.sent += 1

    def close(self, timeout: float) -> None:
        assert self._proc.stdin is not None
        with self._write_lock:
            self._proc.stdin.close()
        self._done.wait(timeout)
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()


class AiokafkaProducer:
    """An idempotent aiokafka producer on its own event loop thread."""

    def __init__(self, name: str, edge: Edge) -> None:
        self.tally = Tally(name)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()
        self._producer = asyncio.run_coroutine_threadsafe(self._start(edge), self._loop).result(60)
        self._pending: set[asyncio.Future] = set()

    async def _start(self, edge: Edge):  # noqa: ANN202
        from aiokafka import AIOKafkaProducer
        from aiokafka.helpers import create_ssl_context

        producer = AIOKafkaProducer(
            bootstrap_servers=f"{edge.host}:{edge.port}",
            security_protocol="SASL_SSL",
            sasl_mechanism="PLAIN",
            sasl_plain_username=edge.project_id,
            sasl_plain_password=edge.write_key,
            ssl_context=create_ssl_context(cafile=edge.ca_file),
            acks="all",
            enable_idempotence=True,
            linger_ms=20,
            # A batch expires after this: long enough for every outage the soak makes.
            request_timeout_ms=120_000,
        )
        await producer.start()
        return producer

    async def _send(self, topic: str, soak_id: str, value: bytes) -> None:
        # No retry here: a record re-sent after an error could be stored twice, which would
        # be the client's doing. aiokafka retries within request_timeout_ms by itself.
        try:
            await (await self._producer.send(topic, value))
        except Exception as exc:  # noqa: BLE001 - reported as failed (maybe stored, once)
            self.tally.fail(soak_id, type(exc).__name__)
        else:
            self.tally.ack(soak_id)

    def send(self, topic: str, soak_id: str, value: bytes) -> None:
        future = asyncio.run_coroutine_threadsafe(self._send(topic, soak_id, value), self._loop)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        with self.tally.lock:
            self.tally.sent += 1

    def close(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            time.sleep(0.1)
        asyncio.run_coroutine_threadsafe(self._producer.stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
