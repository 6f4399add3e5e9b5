"""Talking to the backend Kafka: pipelined connections, and a shared metadata cache.

Every client session gets its own backend connections (one per backend broker it needs),
because a broker answers one request per connection at a time: sharing would queue one
customer's produce behind another's long-polling fetch. Quick control requests (metadata,
topic creation, coordinator lookup, producer ids) share one connection per gateway.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
import time
from collections import deque
from dataclasses import dataclass, field

from kafka.protocol.admin import CreateTopicsRequest
from kafka.protocol.api_key import ApiKey
from kafka.protocol.api_message import ApiMessage
from kafka.protocol.metadata import (
    ApiVersionsRequest,
    FindCoordinatorRequest,
    MetadataRequest,
    MetadataResponse,
)

from app.gateway import errors
from app.gateway.backend_auth import LoginRefused, login
from app.gateway.wire import FrameTooLarge, decode_response, encode_request, read_frame
from app.kafka.client_options import KafkaClientOptions

log = logging.getLogger("inbound.gateway.backend")


# The edge enforces the customer's limit (1048588 bytes a batch) before it adds the key-id
# header to every record, which can grow a full batch by ~50 bytes a record; the backend
# topics it creates accept twice the limit so a batch that passed the edge is never refused.
BACKEND_MAX_MESSAGE_BYTES = 2 * 1048588
# Login answers are small; a bigger "frame" is a TLS alert read as Kafka (a TLS listener
# reached without TLS), not something to buffer.
MAX_LOGIN_FRAME_BYTES = 1 << 20


class BackendError(ConnectionError):
    pass


class BackendSettingsError(BackendError):
    """The backend refused the gateway's TLS or SASL settings: retrying cannot help, and the
    message names the INBOUND_KAFKA_* setting to fix."""


def _protocol_hint(options: KafkaClientOptions | None) -> str:
    protocol = options.security_protocol if options else "PLAINTEXT"
    return (
        f"check INBOUND_KAFKA_SECURITY_PROTOCOL (now {protocol}): it must be what the "
        "listener speaks"
    )


class BackendConnection:
    """One connection to one broker (TLS and a SASL login first when ``options`` say so);
    requests may be pipelined, answers come in order."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str = "inbound-gateway",
        options: KafkaClientOptions | None = None,
    ) -> None:
        self.host, self.port = host, port
        self._client_id = client_id
        self._options = options
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: deque[tuple[int, int, int, asyncio.Future[ApiMessage]]] = deque()
        self._ids = itertools.count(1)
        self._read_task: asyncio.Task[None] | None = None
        self.closed = False

    async def connect(self, timeout: float = 10.0) -> None:
        where = f"backend broker {self.host}:{self.port}"
        try:
            async with asyncio.timeout(timeout):
                await self._open()
        except ssl.SSLCertVerificationError as exc:
            self._abandon()
            why = exc.verify_message or str(exc)
            names_other_host = "hostname" in why.lower() or "IP address" in why
            raise BackendSettingsError(
                f"{where}: its TLS certificate is not trusted ({why}); set "
                "INBOUND_KAFKA_SSL_CAFILE to the CA that signed the brokers' certificates"
                + (
                    " (or INBOUND_KAFKA_SSL_CHECK_HOSTNAME=false if it does not name this host)"
                    if names_other_host
                    else ""
                )
            ) from None
        except ssl.SSLError as exc:
            self._abandon()
            raise BackendSettingsError(
                f"{where}: the TLS handshake failed ({exc.reason or exc}); "
                f"{_protocol_hint(self._options)}, and the INBOUND_KAFKA_SSL_* files"
            ) from None
        except LoginRefused as exc:
            self._abandon()
            raise BackendSettingsError(f"{where}: {exc}") from None
        except BackendSettingsError:
            self._abandon()
            raise
        except (FrameTooLarge, asyncio.IncompleteReadError) as exc:
            self._abandon()
            raise BackendSettingsError(
                f"{where} did not answer the login as Kafka does ({exc}); "
                f"{_protocol_hint(self._options)}"
            ) from None
        except (OSError, TimeoutError) as exc:
            self._abandon()
            raise BackendError(f"cannot reach {where}: {str(exc) or type(exc).__name__}") from exc
        self._read_task = asyncio.create_task(self._read_loop())

    async def _open(self) -> None:
        options = self._options
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        tls = options.ssl_context if options is not None else None
        if tls is not None:
            try:
                await self._writer.start_tls(tls, server_hostname=self.host)
            except ConnectionError as exc:
                # The broker is there (TCP connected) but hung up on the ClientHello: a
                # listener without TLS reads it as an oversized request and closes.
                raise BackendSettingsError(
                    f"backend broker {self.host}:{self.port} closed the connection during the "
                    f"TLS handshake ({type(exc).__name__}); {_protocol_hint(options)}"
                ) from None
        if options is not None and options.uses_sasl:
            await login(self._exchange, options)

    async def _exchange(self, request: ApiMessage, version: int) -> ApiMessage:
        """One request and its answer, before the read loop runs (the SASL login)."""
        assert self._reader is not None and self._writer is not None
        correlation_id = next(self._ids)
        self._writer.write(encode_request(request, version, correlation_id, self._client_id))
        await self._writer.drain()
        frame = await read_frame(self._reader, MAX_LOGIN_FRAME_BYTES)
        if frame is None:
            raise asyncio.IncompleteReadError(b"", None)
        got_id, body = decode_response(request.API_KEY, version, frame)
        if got_id != correlation_id:
            raise LoginRefused(f"backend answered {got_id}, expected {correlation_id}")
        return body

    def _abandon(self) -> None:
        self.closed = True
        if self._writer is not None:
            self._writer.close()

    async def _read_loop(self) -> None:
        assert self._reader is not None
        failure: BaseException = BackendError(
            f"backend {self.host}:{self.port} closed the connection"
        )
        try:
            while True:
                frame = await read_frame(self._reader)
                if frame is None:
                    break
                if not self._pending:
                    raise BackendError("backend answered a request that was not sent")
                correlation_id, api_key, version, fut = self._pending.popleft()
                got_id, body = decode_response(api_key, version, frame)
                if got_id != correlation_id:
                    raise BackendError(f"backend answered {got_id}, expected {correlation_id}")
                if not fut.done():
                    fut.set_result(body)
        except (OSError, asyncio.IncompleteReadError, BackendError) as exc:
            failure = exc if isinstance(exc, BackendError) else BackendError(str(exc))
        except FrameTooLarge as exc:
            failure = BackendSettingsError(
                f"backend {self.host}:{self.port} answered with {exc}: not Kafka as this "
                f"connection speaks it; {_protocol_hint(self._options)}"
            )
        except Exception as exc:  # an undecodable answer: fail loudly, never hang callers
            log.exception("bad answer from backend %s:%s", self.host, self.port)
            failure = BackendError(f"bad answer from backend: {exc!r}")
        except asyncio.CancelledError:
            failure = BackendError("backend connection closed")
        finally:
            self._fail_all(failure)

    def _fail_all(self, exc: BaseException) -> None:
        self.closed = True
        while self._pending:
            fut = self._pending.popleft()[3]
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # mark retrieved: the caller may have gone away
        if self._writer is not None:
            self._writer.close()

    def send(
        self, request: ApiMessage, version: int, expect_response: bool = True
    ) -> asyncio.Future[ApiMessage] | None:
        """Write one request now (so requests keep their order); a future for its answer."""
        if self.closed or self._writer is None:
            raise BackendError(f"backend connection to {self.host}:{self.port} is closed")
        correlation_id = next(self._ids)
        self._writer.write(encode_request(request, version, correlation_id, self._client_id))
        if not expect_response:
            return None
        fut: asyncio.Future[ApiMessage] = asyncio.get_running_loop().create_future()
        self._pending.append((correlation_id, request.API_KEY, version, fut))
        return fut

    async def drain(self) -> None:
        if self._writer is not None:
            await self._writer.drain()

    async def request(self, request: ApiMessage, version: int, timeout: float = 30.0) -> ApiMessage:
        fut = self.send(request, version)
        assert fut is not None
        await self.drain()
        return await asyncio.wait_for(asyncio.shield(fut), timeout)

    def close(self) -> None:
        if self._read_task is not None:
            self._read_task.cancel()
        elif self._writer is not None:
            self._writer.close()
        self.closed = True


@dataclass
class TopicInfo:
    partitions: dict[int, int]  # partition -> leader node id
    fetched_at: float = field(default_factory=time.monotonic)


class Backend:
    """What the gateway knows about the backend cluster, shared by all sessions."""

    METADATA_MAX_AGE = 30.0

    def __init__(self, options: KafkaClientOptions) -> None:
        self.options = options  # every backend connection's TLS and SASL settings
        self.bootstrap: list[tuple[str, int]] = options.hosts
        self.versions: dict[int, tuple[int, int]] = {}
        self.nodes: dict[int, tuple[str, int]] = {}
        self.topics: dict[str, TopicInfo] = {}
        self.group_nodes: dict[str, int] = {}  # backend group id -> coordinator node
        self._control: BackendConnection | None = None
        self._control_lock = asyncio.Lock()

    async def start(self) -> None:
        conn = await self.control()
        try:
            # v0 is understood by every broker; its answer lists every API's range.
            resp = await conn.request(ApiVersionsRequest(), 0)
            if resp.error_code:
                raise BackendError(f"backend ApiVersions failed with error {resp.error_code}")
            self.versions = {k.api_key: (k.min_version, k.max_version) for k in resp.api_keys}
            await self.refresh([])
        except BackendSettingsError:
            raise
        except (BackendError, TimeoutError) as exc:
            if not conn.closed:
                raise
            # A SASL listener reached without a login answers ApiVersions, then hangs up.
            raise BackendError(
                f"backend {conn.host}:{conn.port} stopped answering "
                f"({str(exc) or type(exc).__name__}); "
                f"{_protocol_hint(self.options)}"
            ) from None

    def version(self, api_key: int, preferred: int, floor: int = 0) -> int:
        """The version to speak to the backend for a local API: ``preferred`` clamped to the
        backend's range, never below ``floor``."""
        low, high = self.versions.get(api_key, (floor, preferred))
        return max(low, floor, min(preferred, high))

    async def control(self) -> BackendConnection:
        async with self._control_lock:
            if self._control is not None and not self._control.closed:
                return self._control
            last: Exception | None = None
            candidates = list(self.nodes.values()) + self.bootstrap
            for host, port in candidates:
                conn = BackendConnection(host, port, "inbound-gateway-control", self.options)
                try:
                    await conn.connect()
                except BackendSettingsError:
                    raise  # wrong for every broker alike: the message says what to fix
                except BackendError as exc:
                    last = exc
                    continue
                self._control = conn
                return conn
            raise BackendError(f"no backend broker reachable: {last}")

    async def control_request(self, request: ApiMessage, version: int) -> ApiMessage:
        conn = await self.control()
        try:
            return await conn.request(request, version)
        except (BackendError, TimeoutError):
            conn.close()
            raise

    async def refresh(self, topics: list[str] | None) -> MetadataResponse:
        """Backend metadata for ``topics`` (None: all), caching leaders and brokers."""
        version = self.version(ApiKey.Metadata, 12, floor=1)
        req_topics = (
            None
            if topics is None
            else [MetadataRequest.MetadataRequestTopic(name=t) for t in topics]
        )
        request = MetadataRequest(
            topics=req_topics,
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=False,
        )
        resp = await self.control_request(request, version)
        self.nodes = {b.node_id: (b.host, b.port) for b in resp.brokers}
        now = time.monotonic()
        for topic in resp.topics:
            if topic.error_code == errors.NONE:
                self.topics[topic.name] = TopicInfo(
                    {p.partition_index: p.leader_id for p in topic.partitions}, now
                )
            else:
                self.topics.pop(topic.name, None)
        return resp

    def forget(self, topic: str) -> None:
        self.topics.pop(topic, None)

    async def leaders(self, topics: list[str]) -> dict[str, TopicInfo]:
        """Leaders for ``topics`` from the cache, refreshing those missing or stale."""
        now = time.monotonic()
        stale = [
            t
            for t in topics
            if t not in self.topics or now - self.topics[t].fetched_at > self.METADATA_MAX_AGE
        ]
        if stale:
            await self.refresh(stale)
        return {t: self.topics[t] for t in topics if t in self.topics}

    async def create_topics(self, names: list[str]) -> dict[str, tuple[int, str | None]]:
        """Create ``names`` with the backend's default partitions and replication factor."""
        version = self.version(ApiKey.CreateTopics, 5, floor=4)
        req = CreateTopicsRequest(
            topics=[
                CreateTopicsRequest.CreatableTopic(
                    name=name,
                    num_partitions=-1,
                    replication_factor=-1,
                    assignments=[],
                    configs=[
                        CreateTopicsRequest.CreatableTopic.CreatableTopicConfig(
                            name="max.message.bytes", value=str(BACKEND_MAX_MESSAGE_BYTES)
                        )
                    ],
                )
                for name in names
            ],
            timeout_ms=15000,
            validate_only=False,
        )
        resp = await self.control_request(req, version)
        return {t.name: (t.error_code, t.error_message) for t in resp.topics}

    async def ensure_topics(self, names: list[str], attempts: int = 40) -> None:
        """Create missing topics and wait until each has a leader."""
        results = await self.create_topics(names)
        for name, (code, message) in results.items():
            if code not in (errors.NONE, errors.TOPIC_ALREADY_EXISTS):
                log.warning("creating backend topic %s failed: %s %s", name, code, message)
        for _ in range(attempts):
            await self.refresh(names)
            if all(
                n in self.topics
                and all(leader >= 0 for leader in self.topics[n].partitions.values())
                for n in names
                if results.get(n, (errors.NONE,))[0] in (errors.NONE, errors.TOPIC_ALREADY_EXISTS)
            ):
                return
            await asyncio.sleep(0.1)

    async def coordinator(self, group: str) -> tuple[int, int, str | None]:
        """(error code, node id, message) of the backend coordinator for consumer group ``group``."""
        version = self.version(ApiKey.FindCoordinator, 3)
        if version >= 4:
            req = FindCoordinatorRequest(key_type=0, coordinator_keys=[group])
            resp = await self.control_request(req, version)
            c = resp.coordinators[0]
            code, node, message = c.error_code, c.node_id, c.error_message
            host, port = c.host, c.port
        else:
            req = FindCoordinatorRequest(key=group, key_type=0)
            resp = await self.control_request(req, version)
            code, node, message = resp.error_code, resp.node_id, resp.error_message
            host, port = resp.host, resp.port
        if code == errors.NONE:
            self.nodes.setdefault(node, (host, port))
            self.group_nodes[group] = node
        return code, node, message

    async def close(self) -> None:
        if self._control is not None:
            self._control.close()


class SessionLinks:
    """One client session's own connections to backend brokers, opened on demand."""

    def __init__(self, backend: Backend, client_id: str) -> None:
        self.backend = backend
        self._client_id = client_id
        self._conns: dict[int, BackendConnection] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    async def node(self, node_id: int) -> BackendConnection:
        conn = self._conns.get(node_id)
        if conn is not None and not conn.closed:
            return conn
        lock = self._locks.setdefault(node_id, asyncio.Lock())
        async with lock:
            conn = self._conns.get(node_id)
            if conn is not None and not conn.closed:
                return conn
            if node_id not in self.backend.nodes:
                await self.backend.refresh([])
            if node_id not in self.backend.nodes:
                raise BackendError(f"backend broker {node_id} is unknown")
            host, port = self.backend.nodes[node_id]
            conn = BackendConnection(host, port, self._client_id, self.backend.options)
            await conn.connect()
            self._conns[node_id] = conn
            return conn

    async def any_node(self) -> BackendConnection:
        if self._conns:
            for conn in self._conns.values():
                if not conn.closed:
                    return conn
        if not self.backend.nodes:
            await self.backend.refresh([])
        return await self.node(next(iter(self.backend.nodes)))

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
