"""The codec: frames and headers built here agree with kafka-python's own encoders."""

from __future__ import annotations

import asyncio
import struct

import pytest
from kafka.protocol.old import api_versions as old_api_versions
from kafka.protocol.old import find_coordinator as old_find_coordinator
from kafka.protocol.old import group as old_group
from kafka.protocol.old import metadata as old_metadata
from kafka.protocol.old import produce as old_produce
from kafka.protocol.old import sasl_handshake as old_sasl_handshake

from app.gateway.policy import APIS
from app.gateway.wire import (
    MESSAGES,
    FrameTooLarge,
    MalformedFrame,
    RequestHeader,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    parse_request_header,
    read_frame,
)

SERVED = [
    (key, v) for key, api in APIS.items() for v in range(api.versions[0], api.versions[1] + 1)
]


def _ids(case: tuple[int, int]) -> str:
    return f"{APIS[case[0]].key.name}-v{case[1]}"


@pytest.mark.parametrize("case", SERVED, ids=_ids)
def test_request_frames_match_kafka_python(case: tuple[int, int]) -> None:
    key, version = case
    request = MESSAGES[key][0]()
    frame = encode_request(request, version, correlation_id=7, client_id="probe")
    reference = MESSAGES[key][0]()
    reference.with_header(correlation_id=7, client_id="probe")
    assert frame == reference.encode(version=version, header=True, framed=True)

    header = parse_request_header(frame[4:])
    assert (header.api_key, header.api_version, header.correlation_id) == (key, version, 7)
    assert header.client_id == "probe"
    # Decoded and encoded again (as a forwarded request is), the same bytes.
    decoded = decode_request(header, frame[4:])
    assert encode_request(decoded, version, correlation_id=7, client_id="probe") == frame


@pytest.mark.parametrize("case", SERVED, ids=_ids)
def test_response_frames_match_kafka_python(case: tuple[int, int]) -> None:
    key, version = case
    cls = MESSAGES[key][1]
    header = RequestHeader(key, version, 41, "probe", 0)
    frame = encode_response(header, cls())
    reference = cls()
    # Version first: kafka-python's setter assumes a request header once one is attached.
    reference.API_VERSION = version
    reference.with_header(correlation_id=41)
    assert frame == reference.encode(header=True, framed=True)
    correlation_id, decoded = decode_response(key, version, frame[4:])
    assert correlation_id == 41
    assert encode_response(header, decoded) == frame


def test_api_versions_answers_with_header_v0_even_when_flexible() -> None:
    # ApiVersions v3+ is flexible, but its response header never has tagged fields (KIP-511).
    cls = MESSAGES[18][1]
    frame = encode_response(RequestHeader(18, 3, 5, None, 0), cls())
    assert frame[4:8] == struct.pack(">i", 5)
    assert frame[8:] == cls().encode(version=3)


def _body(frame: bytes, key: int, version: int, client_id: str = "probe") -> bytes:
    # An old-style (non-flexible) header v1 in front of ``frame``'s body.
    cid = client_id.encode()
    return struct.pack(">hhih", key, version, 9, len(cid)) + cid + frame


@pytest.mark.parametrize("version", range(0, 9))
def test_produce_from_kafka_pythons_hand_written_codec(version: int) -> None:
    old = getattr(old_produce, f"ProduceRequest_v{version}")
    fields = {"required_acks": -1, "timeout": 1500, "topics": [("orders", [(2, b"batch")])]}
    if version >= 3:
        fields["transactional_id"] = None
    frame = _body(old(**fields).encode(), 0, version)
    request = decode_request(parse_request_header(frame), frame)
    assert (request.acks, request.timeout_ms) == (-1, 1500)
    [topic] = request.topic_data
    assert topic.name == "orders"
    assert [(p.index, bytes(p.records)) for p in topic.partition_data] == [(2, b"batch")]


@pytest.mark.parametrize("version", range(0, 9))
def test_metadata_from_kafka_pythons_hand_written_codec(version: int) -> None:
    old = getattr(old_metadata, f"MetadataRequest_v{version}")
    fields: dict = {"topics": [("purchases",)] if version >= 9 else ["purchases"]}
    if version >= 4:
        fields["allow_auto_topic_creation"] = True
    if version >= 8:
        fields["include_cluster_authorized_operations"] = False
        fields["include_topic_authorized_operations"] = False
    frame = _body(old(**fields).encode(), 3, version)
    request = decode_request(parse_request_header(frame), frame)
    assert [t.name for t in request.topics] == ["purchases"]


@pytest.mark.parametrize("version", range(0, 4))
def test_heartbeat_from_kafka_pythons_hand_written_codec(version: int) -> None:
    old = getattr(old_group, f"HeartbeatRequest_v{version}")
    fields = {"group": "g1", "generation_id": 3, "member_id": "m"}
    if version >= 3:
        fields["group_instance_id"] = None
    frame = _body(old(**fields).encode(), 12, version)
    request = decode_request(parse_request_header(frame), frame)
    assert (request.group_id, request.generation_id, request.member_id) == ("g1", 3, "m")


@pytest.mark.parametrize("version", range(0, 2))
def test_sasl_handshake_from_kafka_pythons_hand_written_codec(version: int) -> None:
    old = getattr(old_sasl_handshake, f"SaslHandshakeRequest_v{version}")
    frame = _body(old(mechanism="PLAIN").encode(), 17, version)
    assert decode_request(parse_request_header(frame), frame).mechanism == "PLAIN"


@pytest.mark.parametrize("version", range(0, 3))
def test_find_coordinator_from_kafka_pythons_hand_written_codec(version: int) -> None:
    old = getattr(old_find_coordinator, f"FindCoordinatorRequest_v{version}")
    fields = {"key": "g1"} if version == 0 else {"key": "g1", "key_type": 0}
    frame = _body(old(**fields).encode(), 10, version)
    assert decode_request(parse_request_header(frame), frame).key == "g1"


@pytest.mark.parametrize("version", range(0, 3))
def test_api_versions_request_from_kafka_pythons_hand_written_codec(version: int) -> None:
    old = getattr(old_api_versions, f"ApiVersionsRequest_v{version}")
    frame = _body(old().encode(), 18, version)
    header = parse_request_header(frame)
    assert (header.api_key, header.api_version, header.body_offset) == (18, version, len(frame))


def test_flexible_request_header_skips_tagged_fields() -> None:
    # Produce v9 is flexible: header v2 ends with tagged fields (here one tag of 3 bytes).
    body = MESSAGES[0][0]().encode(version=9)
    head = struct.pack(">hhih", 0, 9, 1, 1) + b"c" + b"\x01" + b"\x05\x03abc"
    header = parse_request_header(head + body)
    assert header.body_offset == len(head)


@pytest.mark.parametrize(
    "frame", [b"", b"\x00\x00", struct.pack(">hhih", 3, 1, 1, 50) + b"short"], ids=repr
)
def test_malformed_headers_are_refused(frame: bytes) -> None:
    with pytest.raises(MalformedFrame):
        parse_request_header(frame)


def test_malformed_body_is_refused() -> None:
    frame = struct.pack(">hhih", 3, 1, 1, -1) + b"\x00\x00"
    with pytest.raises(MalformedFrame):
        decode_request(parse_request_header(frame), frame)


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_read_frame_checks_the_size_before_reading_the_body() -> None:
    assert await read_frame(_reader(struct.pack(">i", 3) + b"abc"), 3) == b"abc"
    assert await read_frame(_reader(b"")) is None
    with pytest.raises(FrameTooLarge):
        await read_frame(_reader(struct.pack(">i", 4)), 3)
    with pytest.raises(FrameTooLarge):
        await read_frame(_reader(struct.pack(">i", -1)))


def test_default_frame_limit_is_kafkas_socket_request_max_bytes() -> None:
    from app.gateway import wire

    assert wire.MAX_FRAME_BYTES == 104857600
