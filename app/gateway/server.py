"""`inbound gateway`: the Kafka edge's listeners (TLS, optional plaintext for development)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app import logs
from app.gateway.auth import KeyVerifier
from app.gateway.backend import Backend, BackendSettingsError
from app.gateway.policy import APIS, advertised
from app.gateway.ratelimit import AuthFailures, ProduceQuota
from app.gateway.session import EdgeLimits, GatewayContext, Session
from app.kafka.client_options import KafkaClientOptions, KafkaConfigError, kafka_options
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


def backend_options(settings: Settings) -> KafkaClientOptions:
    """The backend address with the INBOUND_KAFKA_* security settings every backend
    connection uses (KafkaConfigError for settings that cannot work together)."""
    options = kafka_options(settings, backend_bootstrap(settings))
    assert options is not None  # backend_bootstrap found an address or raised
    return options


def tls_files(settings: Settings) -> tuple[Path, Path]:
    """The configured certificate and key, or the dev ones (made on first use)."""
    if settings.gateway_tls_cert and settings.gateway_tls_key:
        return settings.gateway_tls_cert, settings.gateway_tls_key
    if settings.gateway_tls_cert or settings.gateway_tls_key:
        raise RuntimeError("set both INBOUND_GATEWAY_TLS_CERT and INBOUND_GATEWAY_TLS_KEY")
    certs = settings.data_dir / "certs"
    cert, key = certs / "server.pem", certs / "server-key.pem"
    if not (cert.exists() and key.exists()):
        from app.tls.dev_certs import make_dev_certs

        make_dev_certs(certs)
        log.warning("made a development TLS certificate in %s (see `inbound certs`)", certs)
    return cert, key


def server_ssl_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


# How often (s) the gateway looks at its certificate and key files for a renewal (`inbound
# certs --renew`, certbot, a rotated secret mount): two stat calls, so cheap. A change is loaded
# once the files have stayed the same for one more look, so a pair written one file after the
# other is not tried half-renewed. SIGHUP reloads at once. A constant, not a setting: nobody
# needs it other than tests.
TLS_RELOAD_SECONDS = 2.0


class TLSReloader:
    """The TLS listener's certificate and key, reloaded from their files when they change.

    asyncio's listener holds one SSLContext (``listener``); its SNI callback, which OpenSSL
    calls on every ClientHello (with or without a server name), hands each new connection the
    most recently loaded context. Connections already open keep the one they started with. A
    reload that fails (a half-written file, a key that is not the certificate's) keeps the
    current context and logs an error; the next change of the files is tried again.
    """

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert, self.key = Path(cert), Path(key)
        self._stamp = self._stat()
        self.current = server_ssl_context(self.cert, self.key)
        self.listener = self.current
        self.listener.sni_callback = self._pick

    def _pick(self, ssl_object: ssl.SSLObject, _server_name: str | None, ctx: ssl.SSLContext):  # noqa: ANN202 - OpenSSL callback
        current = self.current
        if current is not ctx:
            ssl_object.context = current
        return None

    def _stat(self) -> tuple:
        out = []
        for path in (self.cert, self.key):
            try:
                st = os.stat(path)
            except OSError:
                out.append(None)
            else:
                out.append((st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(out)

    def reload(self, why: str) -> bool:
        """Load the files into a fresh context and use it for new connections; False (and the
        current context kept) if they do not load."""
        stamp = self._stat()  # before reading: a change while loading is seen next time
        try:
            ctx = server_ssl_context(self.cert, self.key)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the working certificate
            self._stamp = stamp
            log.error(
                "TLS certificate not reloaded (%s): %s / %s: %s; keeping the current certificate",
                why,
                self.cert,
                self.key,
                exc,
            )
            return False
        self._stamp = stamp
        self.current = ctx
        log.info("TLS certificate reloaded (%s) from %s", why, self.cert)
        return True

    async def watch(self, interval: float) -> None:
        seen = self._stamp
        while True:
            await asyncio.sleep(interval)
            try:
                stamp = self._stat()
                if stamp != self._stamp and stamp == seen:
                    self.reload("the files changed")
                seen = stamp
            except Exception:  # the watcher must outlive any one bad look
                log.exception("watching the TLS certificate files")


class Gateway:
    """The listeners and their shared state; ``start`` then ``serve_forever`` or ``stop``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.backend = Backend(backend_options(settings))
        self.tls_port: int | None = None
        self.plain_port: int | None = None
        self._servers: list[asyncio.Server] = []
        self._sessions: set[asyncio.Task] = set()
        self._per_address: dict[str, int] = {}
        self.ctx: GatewayContext | None = None
        self.tls: TLSReloader | None = None
        self._tls_watch: asyncio.Task | None = None

    async def start(self) -> None:
        s = self.settings
        await self.backend.start()
        self.ctx = GatewayContext(
            backend=self.backend,
            verifier=KeyVerifier(
                engine_for(s.effective_database_url),
                s.gateway_key_cache_seconds,
                stale_seconds=s.gateway_key_stale_seconds,
            ),
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
        self.tls = TLSReloader(*tls_files(s))
        self.tls_port = await self._listen(
            public,
            lambda: self.tls_port,
            s.gateway_port,
            ssl=self.tls.listener,
            # A client that never finishes TLS is dropped as one that never finishes SASL.
            ssl_handshake_timeout=s.gateway_auth_seconds,
        )
        log.info(
            "Kafka edge (SASL_SSL/PLAIN) on %s:%s, backend %s",
            host,
            self.tls_port,
            self.backend.options.describe(),
        )
        self._tls_watch = asyncio.create_task(self.tls.watch(TLS_RELOAD_SECONDS))
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

    def reload_tls(self) -> None:
        """Reload the TLS certificate and key now (SIGHUP), not at the next look."""
        if self.tls is not None:
            self.tls.reload("SIGHUP")

    async def stop(self) -> None:
        if self._tls_watch is not None:
            self._tls_watch.cancel()
        for server in self._servers:
            server.close()
        for task in list(self._sessions):
            task.cancel()
        for server in self._servers:
            await server.wait_closed()
        if self._tls_watch is not None:
            await asyncio.gather(self._tls_watch, return_exceptions=True)
        await self.backend.close()


async def _serve(settings: Settings) -> None:
    gateway = Gateway(settings)
    await gateway.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, gateway.reload_tls)
    logs.ready("gateway")  # its listeners are bound (gateway.start logged where)
    await stop.wait()
    log.info("stopping the Kafka edge")
    await gateway.stop()


def run_gateway(settings: Settings) -> None:
    """Serve the Kafka edge until SIGTERM or SIGINT; SIGHUP reloads the TLS certificate."""
    logs.setup_from_settings("gateway", settings)
    try:
        asyncio.run(_serve(settings))
    except (KafkaConfigError, BackendSettingsError) as exc:
        # Retrying cannot fix a wrong password, CA or protocol: say so once and stop.
        log.error("cannot use the backend Kafka: %s", exc)
        raise SystemExit(1) from None
