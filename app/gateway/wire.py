"""Kafka wire framing: size-prefixed frames, request/response headers, body codecs.

Bodies are decoded and encoded with kafka-python's codecs, generated from Kafka's own JSON
schemas, so flexible (tagged-field) versions work the same as the old ones. Headers are
parsed here by hand because the header version depends on the API and version, and an
ApiVersions request for a version we do not know must still be answerable.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

from kafka.protocol.admin import (
    CreatePartitionsRequest,
    CreatePartitionsResponse,
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
)
from kafka.protocol.api_key import ApiKey
from kafka.protocol.api_message import ApiMessage
from kafka.protocol.consumer import (
    FetchRequest,
    FetchResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
    SyncGroupRequest,
    SyncGroupResponse,
)
from kafka.protocol.metadata import (
    ApiVersionsRequest,
    ApiVersionsResponse,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    MetadataRequest,
    MetadataResponse,
)
from kafka.protocol.producer import (
    AddOffsetsToTxnRequest,
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
    EndTxnRequest,
    EndTxnResponse,
    InitProducerIdRequest,
    InitProducerIdResponse,
    ProduceRequest,
    ProduceResponse,
    TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
)
from kafka.protocol.sasl import (
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
)

# Kafka's default socket.request.max.bytes: a frame larger than this is a broken or hostile
# client, and the connection is closed rather than buffering it.
MAX_FRAME_BYTES = 100 * 1024 * 1024

MESSAGES: dict[int, tuple[type[ApiMessage], type[ApiMessage]]] = {
    ApiKey.Produce: (ProduceRequest, ProduceResponse),
    ApiKey.Fetch: (FetchRequest, FetchResponse),
    ApiKey.ListOffsets: (ListOffsetsRequest, ListOffsetsResponse),
    ApiKey.Metadata: (MetadataRequest, MetadataResponse),
    ApiKey.OffsetCommit: (OffsetCommitRequest, OffsetCommitResponse),
    ApiKey.OffsetFetch: (OffsetFetchRequest, OffsetFetchResponse),
    ApiKey.FindCoordinator: (FindCoordinatorRequest, FindCoordinatorResponse),
    ApiKey.JoinGroup: (JoinGroupRequest, JoinGroupResponse),
    ApiKey.Heartbeat: (HeartbeatRequest, HeartbeatResponse),
    ApiKey.LeaveGroup: (LeaveGroupRequest, LeaveGroupResponse),
    ApiKey.SyncGroup: (SyncGroupRequest, SyncGroupResponse),
    ApiKey.SaslHandshake: (SaslHandshakeRequest, SaslHandshakeResponse),
    ApiKey.ApiVersions: (ApiVersionsRequest, ApiVersionsResponse),
    ApiKey.CreateTopics: (CreateTopicsRequest, CreateTopicsResponse),
    ApiKey.DeleteTopics: (DeleteTopicsRequest, DeleteTopicsResponse),
    ApiKey.InitProducerId: (InitProducerIdRequest, InitProducerIdResponse),
    ApiKey.AddPartitionsToTxn: (AddPartitionsToTxnRequest, AddPartitionsToTxnResponse),
    ApiKey.AddOffsetsToTxn: (AddOffsetsToTxnRequest, AddOffsetsToTxnResponse),
    ApiKey.EndTxn: (EndTxnRequest, EndTxnResponse),
    ApiKey.TxnOffsetCommit: (TxnOffsetCommitRequest, TxnOffsetCommitResponse),
    ApiKey.SaslAuthenticate: (SaslAuthenticateRequest, SaslAuthenticateResponse),
    ApiKey.CreatePartitions: (CreatePartitionsRequest, CreatePartitionsResponse),
}

_HEADER = struct.Struct(">hhih")
_SIZE = struct.Struct(">i")


def request_class(api_key: int) -> type[ApiMessage] | None:
    pair = MESSAGES.get(api_key)
    return pair[0] if pair else None


def response_class(api_key: int) -> type[ApiMessage]:
    return MESSAGES[api_key][1]


def is_flexible(api_key: int, version: int) -> bool:
    if api_key == ApiKey.ApiVersions:
        # Any ApiVersions from v3 on is flexible, even a version newer than we know.
        return version >= 3
    cls = request_class(api_key)
    return cls is not None and cls.flexible_version_q(version)


@dataclass(slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    body_offset: int


def _read_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def parse_request_header(frame: bytes) -> RequestHeader:
    """Header v1 (or v2 with tagged fields for flexible versions) of one request frame."""
    try:
        header = _parse_request_header(frame)
    except (struct.error, IndexError, ValueError) as exc:
        raise MalformedFrame(f"malformed request header ({len(frame)} bytes): {exc}") from None
    if header.body_offset > len(frame):
        raise MalformedFrame(f"malformed request header ({len(frame)} bytes)")
    return header


def _parse_request_header(frame: bytes) -> RequestHeader:
    api_key, api_version, correlation_id, id_len = _HEADER.unpack_from(frame, 0)
    pos = _HEADER.size
    client_id = None
    if id_len >= 0:
        client_id = frame[pos : pos + id_len].decode("utf-8", "replace")
        pos += id_len
    if is_flexible(api_key, api_version):
        count, pos = _read_uvarint(frame, pos)
        for _ in range(count):
            _tag, pos = _read_uvarint(frame, pos)
            size, pos = _read_uvarint(frame, pos)
            pos += size
    return RequestHeader(api_key, api_version, correlation_id, client_id, pos)


def decode_request(header: RequestHeader, frame: bytes) -> ApiMessage:
    cls = request_class(header.api_key)
    assert cls is not None
    try:
        return cls.decode(memoryview(frame)[header.body_offset :], version=header.api_version)
    except Exception as exc:
        raise MalformedFrame(
            f"malformed API {header.api_key} v{header.api_version} request body: "
            f"{type(exc).__name__}"
        ) from None


def _ensure_header_slot(message: ApiMessage) -> None:
    # A decoded message (forwarded as-is) never ran __init__, so its `_header` slot is empty,
    # and encode() reads it when setting the version.
    try:
        message._header  # noqa: B018
    except AttributeError:
        message._header = None


def encode_response(
    header: RequestHeader, response: ApiMessage, version: int | None = None
) -> bytes:
    """A complete size-prefixed response frame for ``header``'s request."""
    version = header.api_version if version is None else version
    _ensure_header_slot(response)
    body = response.encode(version=version)
    # ApiVersions answers with header v0 whatever its version: the client may not know yet
    # which header the server speaks.
    flexible = header.api_key != ApiKey.ApiVersions and is_flexible(header.api_key, version)
    head = struct.pack(">i", header.correlation_id) + (b"\x00" if flexible else b"")
    return _SIZE.pack(len(head) + len(body)) + head + body


def encode_request(
    request: ApiMessage, version: int, correlation_id: int, client_id: str = "inbound-gateway"
) -> bytes:
    _ensure_header_slot(request)
    body = request.encode(version=version)
    cid = client_id.encode()
    head = _HEADER.pack(request.API_KEY, version, correlation_id, len(cid)) + cid
    if is_flexible(request.API_KEY, version):
        head += b"\x00"
    return _SIZE.pack(len(head) + len(body)) + head + body


def decode_response(api_key: int, version: int, frame: bytes) -> tuple[int, ApiMessage]:
    """(correlation id, body) of a response frame (without its size prefix)."""
    (correlation_id,) = _SIZE.unpack_from(frame, 0)
    pos = 4
    if api_key != ApiKey.ApiVersions and is_flexible(api_key, version):
        count, pos = _read_uvarint(frame, pos)
        for _ in range(count):
            _tag, pos = _read_uvarint(frame, pos)
            size, pos = _read_uvarint(frame, pos)
            pos += size
    body = response_class(api_key).decode(memoryview(frame)[pos:], version=version)
    return correlation_id, body


class FrameTooLarge(Exception):
    pass


class MalformedFrame(Exception):
    """A request frame that is not a Kafka request (too short, bad header or body)."""


class FrameTimeout(Exception):
    """The client was silent too long, or sent part of a frame and stalled."""


async def read_frame(
    reader: asyncio.StreamReader,
    max_bytes: int = MAX_FRAME_BYTES,
    *,
    idle_seconds: float | None = None,
    frame_seconds: float | None = None,
) -> bytes | None:
    """One frame's payload, or None at a clean end of stream.

    The size is checked from the 4-byte prefix before any of the body is read, so a hostile
    length never makes us buffer it. ``idle_seconds`` bounds the wait for a frame's first byte,
    ``frame_seconds`` the time from that byte to the frame's last one.
    """
    try:
        try:
            async with asyncio.timeout(idle_seconds):
                first = await reader.readexactly(1)
        except TimeoutError:
            raise FrameTimeout(f"no request for {idle_seconds} s") from None
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None
    try:
        async with asyncio.timeout(frame_seconds):
            (size,) = _SIZE.unpack(first + await reader.readexactly(3))
            if size < 0 or size > max_bytes:
                raise FrameTooLarge(f"frame of {size} bytes (limit {max_bytes})")
            return await reader.readexactly(size)
    except TimeoutError:
        raise FrameTimeout(f"frame not complete within {frame_seconds} s") from None
