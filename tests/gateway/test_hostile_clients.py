"""Hostile clients: what one connection (or address) may cost the edge is bounded (issue #9)."""

from __future__ import annotations

import logging
import socket
import struct
import time

import pytest

from app.contract.topics import inbound_topic
from app.gateway import errors
from app.gateway.auth import AUTH_FAILED
from app.gateway.session import TOO_MANY_FAILURES
from tests.gateway.conftest import Edge, backend_records, make_edge
from tests.gateway.helpers import key_id_of, producer_for
from tests.gateway.rawclient import Raw, batch

pytestmark = pytest.mark.kafka

_ZSTD, _GZIP = 4, 1
_RETRIABLE = {
    errors.NOT_LEADER_OR_FOLLOWER,
    errors.LEADER_NOT_AVAILABLE,
    errors.UNKNOWN_TOPIC_OR_PARTITION,
}


@pytest.fixture
def hostile_edge(make_settings, sqlite_url: str, kafka_bootstrap: str, dev_certs: dict):  # noqa: ANN001, ANN201
    """An edge with tiny limits, so each one is reached quickly."""
    thread, edge = make_edge(
        make_settings,
        sqlite_url,
        kafka_bootstrap,
        dev_certs,
        gateway_key_cache_seconds=1.0,
        gateway_frame_seconds=0.5,
        gateway_auth_seconds=2.0,
        gateway_idle_seconds=1.0,
        gateway_auth_failure_delay_seconds=0.05,
        gateway_auth_failures_per_minute=3,
        gateway_max_connections_per_ip=4,
        gateway_max_collections=2,
        gateway_max_decompressed_bytes=1024 * 1024,
    )
    try:
        yield edge
    finally:
        thread.stop()


def _authed(edge: Edge, p: dict) -> Raw:
    raw = Raw(edge.plain_port)
    answer = raw.sasl(p["project_id"], p["write_key"])
    assert answer.error_code == 0, answer
    return raw


def _produce(raw: Raw, topic: str, records: bytes) -> object:
    """The produce result, retried while it is retriable (a new topic's leader settling)."""
    deadline = time.monotonic() + 20
    while True:
        result = raw.produce(topic, records)
        if result.error_code not in _RETRIABLE or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def test_oversized_preauth_length_prefix_closes_at_once(hostile_edge: Edge) -> None:
    raw = Raw(hostile_edge.plain_port)
    try:
        # 100 MB announced, a few bytes sent: the gateway must not wait for (or buffer) the rest.
        raw.send_bytes(struct.pack(">i", 100 * 1024 * 1024) + b"\x00" * 16)
        assert raw.closed_within(1.5)
    finally:
        raw.close()
    # Just over the pre-auth limit (512 KB) is refused too.
    raw = Raw(hostile_edge.plain_port)
    try:
        raw.send_bytes(struct.pack(">i", 524288 + 1))
        assert raw.closed_within(1.5)
    finally:
        raw.close()


def test_partial_frame_then_silence_is_closed(hostile_edge: Edge, new_project) -> None:
    raw = Raw(hostile_edge.plain_port)
    try:
        raw.send_bytes(struct.pack(">i", 100) + b"\x00" * 10)
        assert raw.closed_within(10)
    finally:
        raw.close()
    # After authentication too: a frame started and never finished.
    raw = _authed(hostile_edge, new_project())
    try:
        raw.send_bytes(struct.pack(">i", 1000) + b"\x00\x03")
        assert raw.closed_within(10)
    finally:
        raw.close()


def test_silent_connections_are_closed(hostile_edge: Edge, new_project) -> None:
    # Never authenticating: closed after the auth timeout.
    raw = Raw(hostile_edge.plain_port)
    try:
        assert raw.closed_within(15)
    finally:
        raw.close()
    # Authenticated, then idle longer than gateway_idle_seconds.
    raw = _authed(hostile_edge, new_project())
    try:
        assert raw.closed_within(15)
    finally:
        raw.close()


def test_connections_per_address_are_limited(hostile_edge: Edge) -> None:
    from kafka.protocol.metadata import ApiVersionsRequest

    socks = [Raw(hostile_edge.plain_port) for _ in range(6)]
    try:
        # The limit is 4 per address: the later ones are closed on accept...
        assert all(r.closed_within(1) for r in socks[4:])
        # ...while the first four are served.
        for r in socks[:4]:
            assert r.request(ApiVersionsRequest(), 0).error_code == 0
    finally:
        for r in socks:
            r.close()
    # Closed connections no longer count (once the gateway has seen them go).
    deadline = time.monotonic() + 10
    while True:
        raw = Raw(hostile_edge.plain_port)
        try:
            assert raw.request(ApiVersionsRequest(), 0).error_code == 0
            break
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        finally:
            raw.close()


@pytest.mark.parametrize("codec", [_ZSTD, _GZIP])
def test_decompression_bomb_is_refused(
    hostile_edge: Edge, new_project, codec: int, caplog: pytest.LogCaptureFixture
) -> None:
    p = new_project()
    bomb = batch([b"\x00" * (64 * 1024 * 1024)], codec)
    assert len(bomb) < 200_000  # 64 MiB of zeros compresses to next to nothing
    raw = _authed(hostile_edge, p)
    try:
        result = raw.produce("bombs", bomb)
        assert result.error_code == errors.CORRUPT_MESSAGE
        assert "decompresses to more than" in (result.error_message or "")
        # The same connection still serves a valid (compressed) batch.
        ok = _produce(raw, "bombs", batch([b'{"fine": 1}'], codec))
        assert ok.error_code == 0, ok
    finally:
        raw.close()
    # And another connection too.
    raw = _authed(hostile_edge, p)
    try:
        assert _produce(raw, "bombs", batch([b'{"fine": 2}'])).error_code == 0
    finally:
        raw.close()


def test_failed_logins_are_throttled_and_read_keys_get_the_same_answer(
    hostile_edge: Edge, new_project
) -> None:
    p = new_project()
    answers = []
    for password in ["0" * 64, p["read_key"], "1" * 64, "2" * 64, p["write_key"]]:
        raw = Raw(hostile_edge.plain_port)
        try:
            answers.append(raw.sasl(p["project_id"], password))
            assert raw.closed_within(5)
        finally:
            raw.close()
    assert [a.error_code for a in answers] == [errors.SASL_AUTHENTICATION_FAILED] * 5
    # A wrong password and a key that may not write: one message.
    assert answers[0].error_message == answers[1].error_message == AUTH_FAILED
    # Past 3 failures a minute from this address, refused at once (the right key too).
    assert answers[3].error_message == answers[4].error_message == TOO_MANY_FAILURES


def test_collection_limit_gives_a_clear_error(hostile_edge: Edge, new_project) -> None:
    p = new_project()
    raw = _authed(hostile_edge, p)
    try:
        for name in ("one", "two"):
            assert _produce(raw, name, batch([b"{}"])).error_code == 0
        meta = raw.metadata("three")
        assert meta.topics[0].error_code == errors.INVALID_TOPIC_EXCEPTION
        result = raw.produce("three", batch([b"{}"]))
        assert result.error_code == errors.POLICY_VIOLATION
        assert "limit of 2 collections" in (result.error_message or "")
        # Existing collections still work.
        assert _produce(raw, "one", batch([b"{}"])).error_code == 0
    finally:
        raw.close()


def test_one_metadata_request_creates_a_handful_of_topics(edge: Edge, new_project) -> None:
    raw = _authed(edge, new_project())
    try:
        names = [f"t{i}" for i in range(8)]
        meta = raw.metadata(*names)
        codes = [t.error_code for t in meta.topics]
        # The default is 5 per request; the rest are retriable and come with a later request.
        assert codes.count(0) == 5
        assert codes.count(errors.UNKNOWN_TOPIC_OR_PARTITION) == 3
        again = raw.metadata(*names)
        assert [t.error_code for t in again.topics] == [0] * 8
    finally:
        raw.close()


def test_topic_with_a_newline_is_an_invalid_topic(edge: Edge, new_project) -> None:
    raw = _authed(edge, new_project())
    try:
        assert raw.metadata("x\n").topics[0].error_code == errors.INVALID_TOPIC_EXCEPTION
        result = raw.produce("x\n", batch([b"{}"]))
        assert result.error_code == errors.INVALID_TOPIC_EXCEPTION
    finally:
        raw.close()


async def test_mixed_case_inbound_headers_are_stripped(
    edge: Edge, new_project, sqlite_url: str
) -> None:
    p = new_project()
    producer = producer_for(edge, p["project_id"], p["write_key"])
    await producer.start()
    try:
        await producer.send_and_wait(
            "headers",
            b'{"h": 1}',
            headers=[
                ("Inbound.Key_Id", b"forged"),
                ("INBOUND.replay.count", b"9"),
                ("keep", b"me"),
            ],
        )
    finally:
        await producer.stop()
    import asyncio

    records = await asyncio.to_thread(
        backend_records, edge.backend, inbound_topic(p["project_id"], "headers"), 1
    )
    assert len(records) == 1
    assert list(records[0].headers) == [
        ("keep", b"me"),
        ("inbound.key_id", key_id_of(sqlite_url, p["write_key"]).encode()),
    ]


def test_client_text_cannot_forge_log_lines(
    edge: Edge, new_project, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="inbound.gateway")
    raw = Raw(edge.plain_port)
    try:
        raw.sasl("evil\n2026-01-01 INFO inbound.gateway project x authenticated", "0" * 64)
    finally:
        raw.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any("evil" in r.getMessage() for r in caplog.records):
        time.sleep(0.05)
    lines = [r.getMessage() for r in caplog.records if "evil" in r.getMessage()]
    assert lines, "the failed login was not logged"
    assert all("\n" not in line for line in lines)
    assert "evil\\n2026" in lines[0]


@pytest.mark.parametrize("frame", [b"", b"\x00\x12\x00"], ids=["0-byte", "3-byte"])
def test_malformed_frames_close_without_a_traceback(
    edge: Edge, frame: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="inbound.gateway")
    raw = Raw(edge.plain_port)
    try:
        raw.send_bytes(struct.pack(">i", len(frame)) + frame)
        assert raw.closed_within(10)
    finally:
        raw.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(
        "malformed" in r.getMessage() for r in caplog.records
    ):
        time.sleep(0.05)
    warnings = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert not any(r.exc_info for r in caplog.records)
    # The gateway still serves.
    with socket.create_connection(("127.0.0.1", edge.plain_port), timeout=5):
        pass
