"""One client connection: SASL, then requests dispatched in order, answers written in order.

Kafka clients pipeline requests and expect answers in request order. The reader does each
request's *forwarding* step in arrival order (so an idempotent producer's batches reach the
backend in its order) and queues an awaitable for the answer; the writer awaits those in
order. Backpressure comes from the bounded queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kafka.protocol.api_key import ApiKey
from kafka.protocol.api_message import ApiMessage
from kafka.protocol.metadata import ApiVersionsResponse
from kafka.protocol.sasl import SaslAuthenticateResponse, SaslHandshakeResponse

from app.gateway import errors
from app.gateway.auth import KeyStoreUnavailable, KeyVerifier, PlainError, Principal, parse_plain
from app.gateway.backend import Backend, BackendError, SessionLinks
from app.gateway.logsafe import shown
from app.gateway.naming import ProjectNames
from app.gateway.ratelimit import AuthFailures, ProduceQuota
from app.gateway.wire import (
    FrameTimeout,
    FrameTooLarge,
    MalformedFrame,
    RequestHeader,
    decode_request,
    encode_response,
    parse_request_header,
    read_frame,
)

if TYPE_CHECKING:
    from app.gateway.policy import Api

log = logging.getLogger("inbound.gateway")

# The one broker the gateway presents itself as: every partition's leader and every
# group's coordinator is this node, and the gateway forwards to the real one.
GATEWAY_NODE_ID = 1

Reply = ApiMessage | Awaitable[ApiMessage | None] | None
# Success of an unframed (SaslHandshake v0) exchange is a zero-length frame.
_EMPTY_FRAME = b"\x00\x00\x00\x00"
TOO_MANY_FAILURES = (
    "Authentication failed: too many failed logins from this address; try again in a minute"
)
Handler = Callable[["Session", RequestHeader, Any], Awaitable[Reply]]


@dataclass(frozen=True)
class EdgeLimits:
    """What one client may cost the edge (the INBOUND_GATEWAY_* limits)."""

    max_preauth_bytes: int = 524288
    max_request_bytes: int = 1048588 + 65536
    idle_seconds: float = 600.0
    frame_seconds: float = 30.0
    auth_seconds: float = 10.0
    max_decompressed_bytes: int = 4 * 1024 * 1024
    auth_failure_delay_seconds: float = 1.0
    max_collections: int = 1000
    max_topics_created_per_request: int = 5


@dataclass
class GatewayContext:
    """What every session shares."""

    backend: Backend
    verifier: KeyVerifier
    quota: ProduceQuota
    versions: dict[int, tuple[int, int]]
    cluster_id: str
    message_max_bytes: int
    limits: EdgeLimits = field(default_factory=EdgeLimits)
    auth_failures: AuthFailures = field(default_factory=lambda: AuthFailures(30))
    # Counting a project's collections and creating new ones is done one request at a time.
    create_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class CloseConnection(Exception):
    """Stop serving this client (after writing whatever was already queued)."""


class Session:
    def __init__(
        self,
        ctx: GatewayContext,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        advertised: tuple[str, int],
        apis: Mapping[int, Api],
    ) -> None:
        self.ctx = ctx
        self.backend = ctx.backend
        self._reader = reader
        self._writer = writer
        self.advertised = advertised
        self._apis = apis
        self.principal: Principal | None = None
        self.names: ProjectNames | None = None
        self.links = SessionLinks(ctx.backend, "inbound-gateway")
        self.peer = writer.get_extra_info("peername")
        self.address = str(self.peer[0]) if isinstance(self.peer, tuple) else str(self.peer)
        self._auth_deadline = time.monotonic() + ctx.limits.auth_seconds
        self._handshake_version: int | None = None
        self._queue: asyncio.Queue[tuple[RequestHeader | None, Reply | bytes] | None] = (
            asyncio.Queue(64)
        )
        # Set by a handler: pause reading for this long (a quota throttle).
        self.pause_seconds = 0.0

    # ---- the two loops -------------------------------------------------------------------

    async def run(self) -> None:
        writer_task = asyncio.create_task(self._write_loop())
        try:
            await self._read_loop()
        except (FrameTooLarge, MalformedFrame, FrameTimeout) as exc:
            log.warning("closing %s: %s", self.peer, exc)
        except (
            asyncio.IncompleteReadError,
            ConnectionError,
            CloseConnection,
        ) as exc:
            log.debug("closing %s: %s", self.peer, exc)
        except Exception:
            log.exception("error serving %s", self.peer)
        finally:
            try:
                self._queue.put_nowait(None)
            except asyncio.QueueFull:
                writer_task.cancel()
            try:
                await asyncio.wait_for(writer_task, 30)
            except (Exception, asyncio.CancelledError):
                writer_task.cancel()
            # Answers the writer never reached (it stopped early): not awaited, so closed.
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is not None and asyncio.iscoroutine(item[1]):
                    item[1].close()
            self.links.close()
            self._writer.close()

    async def _read_loop(self) -> None:
        limits = self.ctx.limits
        while True:
            if self.principal is None:
                # Before authentication a frame is small and the whole exchange is short.
                left = self._auth_deadline - time.monotonic()
                if left <= 0:
                    raise FrameTimeout(f"not authenticated within {limits.auth_seconds} s")
                try:
                    frame = await read_frame(
                        self._reader,
                        limits.max_preauth_bytes,
                        idle_seconds=left,
                        frame_seconds=min(left, limits.frame_seconds),
                    )
                except FrameTimeout:
                    if time.monotonic() < self._auth_deadline:
                        raise
                    raise FrameTimeout(
                        f"not authenticated within {limits.auth_seconds} s"
                    ) from None
            else:
                frame = await read_frame(
                    self._reader,
                    limits.max_request_bytes,
                    idle_seconds=limits.idle_seconds,
                    frame_seconds=limits.frame_seconds,
                )
            if frame is None:
                return
            if self._handshake_version == 0:
                # SaslHandshake v0: the next frame is a bare PLAIN token, no Kafka header.
                await self._raw_sasl(frame)
                continue
            header = parse_request_header(frame)
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "%s: API %s v%s client %s",
                    self.peer,
                    header.api_key,
                    header.api_version,
                    shown(header.client_id),
                )
            reply = await self._dispatch(header, frame)
            if reply is not None:
                await self._queue.put((header, reply))
            if self.pause_seconds > 0:
                pause, self.pause_seconds = self.pause_seconds, 0.0
                await asyncio.sleep(pause)

    async def _write_loop(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            header, reply = item
            if isinstance(reply, bytes):
                self._writer.write(reply)
                continue
            assert header is not None
            try:
                if not isinstance(reply, ApiMessage):
                    reply = await reply
            except CloseConnection:
                self._writer.close()
                return
            except Exception:
                log.exception("request %s from %s failed", header.api_key, self.peer)
                self._writer.close()
                return
            if reply is None:
                continue
            try:
                frame = encode_response(header, reply)
            except Exception:
                log.exception("cannot encode answer to API %s for %s", header.api_key, self.peer)
                self._writer.close()
                return
            self._writer.write(frame)
            await self._writer.drain()

    # ---- dispatch --------------------------------------------------------------------------

    async def _dispatch(self, header: RequestHeader, frame: bytes) -> Reply:
        key, version = header.api_key, header.api_version
        if key == ApiKey.ApiVersions:
            # Answered at any version, its body unread (Kafka's rule): a client learns the
            # versions even from a request version the gateway does not know.
            return await self.api_versions(header, None)
        api = self._apis.get(key)
        supported = self.ctx.versions.get(key)
        if api is None or supported is None:
            raise CloseConnection(f"API {key} is not served by the gateway")
        if not supported[0] <= version <= supported[1]:
            raise CloseConnection(f"API {key} v{version} is not served by the gateway")
        if self.principal is None and not api.pre_auth:
            raise CloseConnection(f"API {key} before authentication")
        request = decode_request(header, frame)
        if not api.pre_auth:
            # A revoked key stops working on open connections too, not only on new ones.
            assert self.principal is not None
            try:
                valid = await self.ctx.verifier.still_valid(self.principal)
            except KeyStoreUnavailable:
                log.warning(
                    "cannot check key %s of project %s (database unavailable): closing",
                    self.principal.key_id,
                    self.principal.project_id,
                )
                raise CloseConnection("key store unavailable") from None
            if not valid:
                log.info(
                    "key %s of project %s no longer valid: closing",
                    self.principal.key_id,
                    self.principal.project_id,
                )
                raise CloseConnection("key revoked")
        try:
            return await api.handler(self, header, request)
        except BackendError as exc:
            log.warning("backend unavailable for %s: %s", self.peer, exc)
            raise CloseConnection(str(exc)) from exc

    async def api_versions(self, header: RequestHeader, request: Any) -> Reply:
        low, high = self.ctx.versions[ApiKey.ApiVersions]
        keys = [
            ApiVersionsResponse.ApiVersion(api_key=k, min_version=v[0], max_version=v[1])
            for k, v in sorted(self.ctx.versions.items())
        ]
        if not low <= header.api_version <= high:
            # Kafka's rule: answer an unknown ApiVersions version with v0 and the error, so
            # the client can retry with a version from the list.
            header.api_version = 0
            return ApiVersionsResponse(error_code=errors.UNSUPPORTED_VERSION, api_keys=keys)
        return ApiVersionsResponse(
            error_code=errors.NONE,
            api_keys=keys,
            throttle_time_ms=0,
            supported_features=[],
            finalized_features_epoch=-1,
            finalized_features=[],
            zk_migration_ready=False,
        )

    # ---- SASL ------------------------------------------------------------------------------

    async def sasl_handshake(self, header: RequestHeader, request: Any) -> Reply:
        if self.principal is not None:
            raise CloseConnection("SASL handshake after authentication")
        if request.mechanism != "PLAIN":
            return SaslHandshakeResponse(
                error_code=errors.UNSUPPORTED_SASL_MECHANISM, mechanisms=["PLAIN"]
            )
        self._handshake_version = header.api_version
        return SaslHandshakeResponse(error_code=errors.NONE, mechanisms=["PLAIN"])

    async def _authenticate(self, token: bytes) -> str | None:
        """None on success, else the failure message (after the failure delay)."""
        failures = self.ctx.auth_failures
        if failures.blocked(self.address):
            # Refused at once, without looking the key up; the connection is closed after.
            log.info("too many failed logins from %s: refused", self.peer)
            return TOO_MANY_FAILURES
        failures.begin(self.address)
        failed = True
        try:
            try:
                username, password = parse_plain(token)
            except PlainError as exc:
                failure = f"Authentication failed: {exc}"
                username = None
            else:
                try:
                    result = await self.ctx.verifier.authenticate(username, password)
                except KeyStoreUnavailable as exc:
                    # Not the client's fault: not counted against its address.
                    failed = False
                    result = str(exc)
                if not isinstance(result, str):
                    failed = False
                    return self._authenticated(result)
                failure = result
        finally:
            failures.finish(self.address, failed)
        log.info("authentication failed for %s from %s: %s", shown(username), self.peer, failure)
        # A guesser waits for each answer (the connection is closed after it anyway).
        await asyncio.sleep(self.ctx.limits.auth_failure_delay_seconds)
        return failure

    def _authenticated(self, result: Principal) -> None:
        self.principal = result
        self.names = ProjectNames(result.project_id)
        log.info(
            "project %s authenticated (key %s) from %s", result.project_id, result.key_id, self.peer
        )
        return None

    async def sasl_authenticate(self, header: RequestHeader, request: Any) -> Reply:
        if self._handshake_version is None or self.principal is not None:
            raise CloseConnection("SaslAuthenticate without a handshake")
        failure = await self._authenticate(bytes(request.auth_bytes or b""))
        if failure is None:
            return SaslAuthenticateResponse(
                error_code=errors.NONE, error_message=None, auth_bytes=b"", session_lifetime_ms=0
            )
        reply = SaslAuthenticateResponse(
            error_code=errors.SASL_AUTHENTICATION_FAILED,
            error_message=failure,
            auth_bytes=b"",
            session_lifetime_ms=0,
        )
        await self._queue.put((header, reply))
        # Like a broker: answer the failure, then close.
        raise CloseConnection("authentication failed")

    async def _raw_sasl(self, token: bytes) -> None:
        self._handshake_version = None
        failure = await self._authenticate(token)
        if failure is not None:
            raise CloseConnection(failure)
        # Success of a v0 (unframed) exchange is an empty frame.
        await self._queue.put((None, _EMPTY_FRAME))
