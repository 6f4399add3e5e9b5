"""`inbound gateway`: the Kafka edge's listeners (TLS, optional plaintext for development)."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.gateway.auth import KeyVerifier
from app.gateway.backend import Backend
from app.gateway.policy import APIS, advertised
from app.gateway.ratelimit import AuthFailures, ProduceQuota
from app.gateway.session import EdgeLimits, GatewayContext, Session
from app.settings import Settings
from app.store.db import engine_for

log = logging.getLogger("inbound.gateway")

# The seed's limit: Kafka's message.max.bytes for one record batch.
MESSAGE_MAX_BYTES = 1048588
CLUSTER_ID = "inbound-edge"


def backend_bootstrap(settings: Settings) -> str:
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    from app.kafka import local

    state = local.read_state(settings.data_dir)
    if state is not None:
        return state.bootstrap
    raise RuntimeError(
        "no backend Kafka: set INBOUND_KAFKA_BOOTSTRAP or start one with `inbound kafka start`"
    )


def tls_files(settings: Settings) -> tuple[Path, Path]:
    """The configured certificate and key, or the dev ones (made on first use)."""
    if settings.gateway_tls_cert and settings.gateway_tls_key:
        return settings.gateway_tls_cert, settings.gateway_tls_key
    if settings.gateway_tls_cert or settings.gateway_tls_key:
        raise RuntimeError("set both INBOUND_GATEWAY_TLS_CERT and INBOUND_GATEWAY_TLS_KEY")
    certs = settings.data_dir / "certs"
    cert, key = certs / "server.pem", certs / "server-key.pem"
    if not (cert.exists() and key.exists()):
        from app.gateway.certs import make_dev_certs

        make_dev_certs(certs)
        log.warning("made a development TLS certificate in %s (see `inbound certs`)", certs)
    return cert, key


def server_ssl_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


class Gateway:
    """The listeners and their shared state; ``start`` then ``serve_forever`` or ``stop``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.backend = Backend(backend_bootstrap(settings))
        self.tls_port: int | None = None
        self.plain_port: int | None = None
        self._servers: list[asyncio.Server] = []
        self._sessions: set[asyncio.Task] = set()
        self._per_address: dict[str, int] = {}
        self.ctx: GatewayContext | None = None

    async def start(self) -> None:
        s = self.settings
        await self.backend.start()
        self.ctx = GatewayContext(
            backend=self.backend,
            verifier=KeyVerifier(engine_for(s.effective_database_url), s.gateway_key_cache_seconds),
            quota=ProduceQuota(s.gateway_project_rate_bytes),
            versions=advertised(self.backend.versions),
            cluster_id=CLUSTER_ID,
            message_max_bytes=MESSAGE_MAX_BYTES,
            limits=EdgeLimits(
                max_preauth_bytes=s.gateway_max_preauth_bytes,
                max_request_bytes=s.gateway_max_request_bytes,
                idle_seconds=s.gateway_idle_seconds,
                frame_seconds=s.gateway_frame_seconds,
                auth_seconds=s.gateway_auth_seconds,
                max_decompressed_bytes=s.gateway_max_decompressed_bytes,
                auth_failure_delay_seconds=s.gateway_auth_failure_delay_seconds,
                max_collections=s.gateway_max_collections,
                max_topics_created_per_request=s.gateway_max_topics_created_per_request,
            ),
            auth_failures=AuthFailures(s.gateway_auth_failures_per_minute),
        )
        host = s.gateway_host
        public = s.gateway_advertised_host or host
        cert, key = tls_files(s)
        self.tls_port = await self._listen(
            public,
            lambda: self.tls_port,
            s.gateway_port,
            ssl=server_ssl_context(cert, key),
            # A client that never finishes TLS is dropped as one that never finishes SASL.
            ssl_handshake_timeout=s.gateway_auth_seconds,
        )
        log.info(
            "Kafka edge (SASL_SSL/PLAIN) on %s:%s, backend %s",
            host,
            self.tls_port,
            self.backend.bootstrap,
        )
        if s.gateway_plain_port:
            self.plain_port = await self._listen(
                public, lambda: self.plain_port, s.gateway_plain_port
            )
            log.warning(
                "plaintext SASL listener on %s:%s: for local development only",
                host,
                self.plain_port,
            )

    async def _listen(
        self, public_host: str, port_of: Callable[[], int | None], port: int, **tls: Any
    ) -> int:
        """Start one listener; the port it got (``port`` may be 0: any free one)."""
        server = await asyncio.start_server(
            self._acceptor(public_host, port_of), self.settings.gateway_host, port, **tls
        )
        self._servers.append(server)
        return server.sockets[0].getsockname()[1]

    def _acceptor(self, public_host: str, port_of):  # noqa: ANN001, ANN202 - asyncio callback
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            assert self.ctx is not None
            peer = writer.get_extra_info("peername")
            address = str(peer[0]) if isinstance(peer, tuple) else str(peer)
            limit = self.settings.gateway_max_connections_per_ip
            if limit > 0 and self._per_address.get(address, 0) >= limit:
                log.warning("closing %s: already %s connections from %s", peer, limit, address)
                writer.close()
                return
            self._per_address[address] = self._per_address.get(address, 0) + 1
            session = Session(self.ctx, reader, writer, (public_host, port_of()), APIS)
            task = asyncio.current_task()
            assert task is not None
            self._sessions.add(task)
            try:
                await session.run()
            finally:
                self._sessions.discard(task)
                left = self._per_address.get(address, 1) - 1
                if left > 0:
                    self._per_address[address] = left
                else:
                    self._per_address.pop(address, None)

        return accept

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._sessions):
            task.cancel()
        for server in self._servers:
            await server.wait_closed()
        await self.backend.close()


async def _serve(settings: Settings) -> None:
    gateway = Gateway(settings)
    await gateway.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping the Kafka edge")
    await gateway.stop()


def run_gateway(settings: Settings) -> None:
    """Serve the Kafka edge until SIGTERM or SIGINT."""
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(_serve(settings))
