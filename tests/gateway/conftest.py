"""Fixtures: dev certificates, a gateway in a background thread, projects, client helpers."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.gateway.server import Gateway
from app.kafka.jars import classpath
from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.projects import create_project
from app.tls.dev_certs import make_dev_certs
from tests.support.ports import free_port


class GatewayThread:
    """A real gateway on its own event loop, so tests may use blocking clients."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.gateway = Gateway(settings)
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.gateway.start())
        except BaseException as exc:  # surfaced to the test by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.gateway.stop())
        # As asyncio.run does: finish what is still pending before the loop closes, so no
        # connection task is destroyed mid-read.
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def start(self) -> GatewayThread:
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)


@dataclass
class Edge:
    settings: Settings
    tls_port: int
    plain_port: int
    certs: dict
    backend: str

    @property
    def tls_bootstrap(self) -> str:
        return f"127.0.0.1:{self.tls_port}"

    @property
    def plain_bootstrap(self) -> str:
        return f"127.0.0.1:{self.plain_port}"


@pytest.fixture(scope="session")
def dev_certs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_dev_certs(tmp_path_factory.mktemp("certs"))


def make_edge(
    make_settings, sqlite_url: str, kafka_bootstrap: str, dev_certs: dict, **overrides: object
):  # noqa: ANN001, ANN201
    settings = make_settings(
        sqlite_url,
        kafka_bootstrap,
        gateway_port=free_port(),
        gateway_plain_port=free_port(),
        gateway_tls_cert=Path(dev_certs["server_cert"]),
        gateway_tls_key=Path(dev_certs["server_key"]),
        **overrides,
    )
    thread = GatewayThread(settings).start()
    edge = Edge(
        settings, thread.gateway.tls_port, thread.gateway.plain_port, dev_certs, kafka_bootstrap
    )
    return thread, edge


@pytest.fixture
def edge(make_settings, sqlite_url: str, kafka_bootstrap: str, dev_certs: dict) -> Iterator[Edge]:  # noqa: ANN001
    thread, edge = make_edge(
        make_settings, sqlite_url, kafka_bootstrap, dev_certs, gateway_key_cache_seconds=1.0
    )
    try:
        yield edge
    finally:
        thread.stop()


@pytest.fixture
def new_project(sqlite_url: str):  # noqa: ANN201 - factory
    def _make(name: str = "test") -> dict[str, str]:
        with session_scope(engine_for(sqlite_url)) as session:
            return create_project(session, name)

    return _make


# ---- client helpers ------------------------------------------------------------------------


def kcat(
    *args: str, input: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(["kcat", *args], input=input, capture_output=True, timeout=timeout)


def kcat_sasl(edge: Edge, user: str, password: str, *, tls: bool = True) -> list[str]:
    args = ["-b", edge.tls_bootstrap if tls else edge.plain_bootstrap]
    args += ["-X", f"security.protocol={'SASL_SSL' if tls else 'SASL_PLAINTEXT'}"]
    args += [
        "-X",
        "sasl.mechanisms=PLAIN",
        "-X",
        f"sasl.username={user}",
        "-X",
        f"sasl.password={password}",
    ]
    if tls:
        args += ["-X", f"ssl.ca.location={edge.certs['ca_cert']}"]
    return args


def java_client_config(
    edge: Edge, tmp: Path, user: str, password: str, extra: dict | None = None
) -> Path:
    props = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{user}" password="{password}";',
        "ssl.truststore.location": edge.certs["truststore"],
        "ssl.truststore.type": "PKCS12",
        "ssl.truststore.password": edge.certs["truststore_password"],
        **(extra or {}),
    }
    path = tmp / f"client-{user[:6]}-{len(list(tmp.iterdir()))}.properties"
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    return path


def java_tool(
    edge: Edge, main: str, *args: str, input: bytes | None = None, timeout: float = 90
) -> subprocess.CompletedProcess:
    cp = classpath(edge.settings.cache_dir)
    return subprocess.run(
        ["java", "-Xmx256m", "-cp", cp, main, *args],
        input=input,
        capture_output=True,
        timeout=timeout,
    )


def backend_records(bootstrap: str, topic: str, count: int, timeout: float = 30) -> list:
    """Read ``count`` records from a backend topic directly (not through the gateway)."""
    from aiokafka import AIOKafkaConsumer

    async def read() -> list:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        out: list = []
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            # Returns what arrived by the deadline: the test's assertion shows the shortfall.
            while len(out) < count and asyncio.get_running_loop().time() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    out.extend(records)
        finally:
            await consumer.stop()
        return out

    return asyncio.run(read())
