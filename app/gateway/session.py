"""One client connection: SASL, then requests dispatched in order, answers written in order.

Kafka clients pipeline requests and expect answers in request order. The reader does each
request's *forwarding* step in arrival order (so an idempotent producer's batches reach the
backend in its order) and queues an awaitable for the answer; the writer awaits those in
order. Backpressure comes from the bounded queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kafka.protocol.api_key import ApiKey
from kafka.protocol.api_message import ApiMessage
from kafka.protocol.metadata import ApiVersionsResponse
from kafka.protocol.sasl import SaslAuthenticateResponse, SaslHandshakeResponse

from app.gateway import errors
from app.gateway.auth import KeyVerifier, PlainError, Principal, parse_plain
from app.gateway.backend import Backend, BackendError, SessionLinks
from app.gateway.naming import ProjectNames
from app.gateway.ratelimit import ProduceQuota
from app.gateway.versions import PRE_AUTH
from app.gateway.wire import (
    FrameTooLarge,
    RequestHeader,
    decode_request,
    encode_response,
    parse_request_header,
    read_frame,
    request_class,
)

log = logging.getLogger("inbound.gateway")

# The one broker the gateway presents itself as: every partition's leader and every
# group's coordinator is this node, and the gateway forwards to the real one.
GATEWAY_NODE_ID = 1

Reply = ApiMessage | Awaitable[ApiMessage | None] | None
# Success of an unframed (SaslHandshake v0) exchange is a zero-length frame.
_EMPTY_FRAME = b"\x00\x00\x00\x00"
Handler = Callable[["Session", RequestHeader, Any], Awaitable[Reply]]


@dataclass
class GatewayContext:
    """What every session shares."""

    backend: Backend
    verifier: KeyVerifier
    quota: ProduceQuota
    versions: dict[int, tuple[int, int]]
    cluster_id: str
    message_max_bytes: int


class CloseConnection(Exception):
    """Stop serving this client (after writing whatever was already queued)."""


class Session:
    def __init__(
        self,
        ctx: GatewayContext,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        advertised: tuple[str, int],
        handlers: dict[int, Handler],
    ) -> None:
        self.ctx = ctx
        self.backend = ctx.backend
        self._reader = reader
        self._writer = writer
        self.advertised = advertised
        self._handlers = handlers
        self.principal: Principal | None = None
        self.names: ProjectNames | None = None
        self.links = SessionLinks(ctx.backend, "inbound-gateway")
        self.peer = writer.get_extra_info("peername")
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
        except (
            FrameTooLarge,
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
            self.links.close()
            self._writer.close()

    async def _read_loop(self) -> None:
        while True:
            frame = await read_frame(self._reader)
            if frame is None:
                return
            if self._handshake_version == 0:
                # SaslHandshake v0: the next frame is a bare PLAIN token, no Kafka header.
                await self._raw_sasl(frame)
                continue
            header = parse_request_header(frame)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s: API %s v%s", self.peer, header.api_key, header.api_version)
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
            return self._api_versions(header)
        supported = self.ctx.versions.get(key)
        if supported is None or request_class(key) is None:
            raise CloseConnection(f"API {key} is not served by the gateway")
        if not supported[0] <= version <= supported[1]:
            raise CloseConnection(f"API {key} v{version} is not served by the gateway")
        if self.principal is None and key not in PRE_AUTH:
            raise CloseConnection(f"API {key} before authentication")
        request = decode_request(header, frame)
        if key == ApiKey.SaslHandshake:
            return self._sasl_handshake(header, request)
        if key == ApiKey.SaslAuthenticate:
            return await self._sasl_authenticate(header, request)
        # A revoked key stops working on open connections too, not only on new ones.
        assert self.principal is not None
        if not await self.ctx.verifier.still_valid(self.principal):
            log.info(
                "key %s of project %s no longer valid: closing",
                self.principal.key_id,
                self.principal.project_id,
            )
            raise CloseConnection("key revoked")
        handler = self._handlers.get(key)
        if handler is None:
            raise CloseConnection(f"API {key} has no handler")
        try:
            return await handler(self, header, request)
        except BackendError as exc:
            log.warning("backend unavailable for %s: %s", self.peer, exc)
            raise CloseConnection(str(exc)) from exc

    def _api_versions(self, header: RequestHeader) -> ApiMessage:
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

    def _sasl_handshake(self, header: RequestHeader, request: Any) -> ApiMessage:
        if self.principal is not None:
            raise CloseConnection("SASL handshake after authentication")
        if request.mechanism != "PLAIN":
            return SaslHandshakeResponse(
                error_code=errors.UNSUPPORTED_SASL_MECHANISM, mechanisms=["PLAIN"]
            )
        self._handshake_version = header.api_version
        return SaslHandshakeResponse(error_code=errors.NONE, mechanisms=["PLAIN"])

    async def _authenticate(self, token: bytes) -> str | None:
        """None on success, else the failure message."""
        try:
            username, password = parse_plain(token)
        except PlainError as exc:
            return f"Authentication failed: {exc}"
        result = await self.ctx.verifier.authenticate(username, password)
        if isinstance(result, str):
            log.info("authentication failed for %s from %s: %s", username, self.peer, result)
            return result
        self.principal = result
        self.names = ProjectNames(result.project_id)
        log.info(
            "project %s authenticated (key %s) from %s", result.project_id, result.key_id, self.peer
        )
        return None

    async def _sasl_authenticate(self, header: RequestHeader, request: Any) -> Reply:
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
