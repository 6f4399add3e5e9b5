"""What the edge refuses: bad credentials, revoked keys, consuming, admin, transactions, size."""

from __future__ import annotations

import asyncio
import subprocess
import time
from datetime import UTC, datetime

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    TransactionalIdAuthorizationFailed,
)

from app.contract.topics import dlq_topic
from app.store.db import engine_for, session_scope
from app.store.keys import hash_key
from app.store.models import ApiKey
from tests.gateway.conftest import Edge, kcat, kcat_sasl
from tests.gateway.helpers import client_options, consumer_for, producer_for, put_in_backend

pytestmark = pytest.mark.kafka


def kcat_for(seconds: float, *args: str, input: bytes | None = None) -> tuple[str, str]:
    """kcat's (stdout, stderr) after it exits or ``seconds`` pass (a refused client may keep
    retrying). Consumed records go to stdout, errors to stderr: check each where it goes."""
    proc = subprocess.Popen(
        ["kcat", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = proc.communicate(input=input, timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return out.decode(errors="replace"), err.decode(errors="replace")


def kcat_auth_error(edge: Edge, user: str, password: str) -> str:
    """kcat's output when listing metadata with these credentials (it should fail)."""
    result = kcat(*kcat_sasl(edge, user, password), "-L", "-m", "5", timeout=30)
    assert result.returncode != 0
    return result.stderr.decode()


@pytest.mark.parametrize(
    "case", ["bad_password", "unknown_project", "other_projects_key", "read_key"]
)
def test_authentication_failures(edge: Edge, new_project, case: str) -> None:
    a, b = new_project("a"), new_project("b")
    user, password = {
        "bad_password": (a["project_id"], "0" * 64),
        "unknown_project": ("f" * 24, a["write_key"]),
        # Project A's write key presented with project B's id.
        "other_projects_key": (b["project_id"], a["write_key"]),
        "read_key": (a["project_id"], a["read_key"]),
    }[case]
    message = kcat_auth_error(edge, user, password)
    assert "Authentication failed" in message, message[-2000:]
    if case == "read_key":
        assert "may not write" in message


async def test_revoked_key_stops_within_seconds(edge: Edge, new_project, sqlite_url: str) -> None:
    p = new_project()
    producer = producer_for(edge, p["project_id"], p["write_key"], request_timeout_ms=5000)
    await producer.start()
    try:
        await producer.send_and_wait("revocation", b'{"before": true}')
        with session_scope(engine_for(sqlite_url)) as session:
            key = session.query(ApiKey).filter_by(key_hash=hash_key(p["write_key"])).one()
            key.is_active = False
            key.revoked_at = datetime.now(UTC)
        # The edge's key cache is 1 s in these tests: the open connection is cut once it
        # expires. Poll: sends may succeed until then, and one must fail within seconds.
        deadline = time.monotonic() + 15
        refused = False
        while not refused and time.monotonic() < deadline:
            try:
                await asyncio.wait_for(producer.send_and_wait("revocation", b'{"after": 1}'), 10)
            except (KafkaError, TimeoutError):
                refused = True
        assert refused, "a revoked key kept producing on its open connection"
    finally:
        await producer.stop()
    fresh = producer_for(edge, p["project_id"], p["write_key"])
    with pytest.raises(KafkaError):
        await fresh.start()
    await fresh.stop()


async def test_consuming_an_inbound_topic_is_refused(edge: Edge, new_project) -> None:
    p = new_project()
    producer = producer_for(edge, p["project_id"], p["write_key"])
    await producer.start()
    await producer.send_and_wait("purchases", b'{"x": 1}')
    await producer.stop()
    args = kcat_sasl(edge, p["project_id"], p["write_key"])
    out, err = await asyncio.to_thread(
        kcat_for, 10, *args, "-C", "-t", "purchases", "-o", "beginning", "-e"
    )
    assert "authorization failed" in err.lower(), err[-2000:]
    assert '{"x": 1}' not in out


async def test_own_dlq_is_consumable_with_a_group_and_others_are_not(
    edge: Edge, new_project
) -> None:
    a, b = new_project("a"), new_project("b")
    await put_in_backend(
        edge.backend, dlq_topic(a["project_id"], "purchases"), [b"bad-1", b"bad-2"]
    )

    consumer = consumer_for(
        edge,
        a["project_id"],
        a["write_key"],
        "purchases-DLQ",
        group_id="fixers",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        got: list = []
        async with asyncio.timeout(30):
            while len(got) < 2:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    got.extend(records)
        assert sorted(r.value for r in got) == [b"bad-1", b"bad-2"]
        assert all(r.topic == "purchases-DLQ" for r in got)
        await consumer.commit()
        committed = await consumer.committed(TopicPartition(got[0].topic, got[0].partition))
        assert committed is not None and committed >= 1
    finally:
        await consumer.stop()

    # Project B: its own "purchases-DLQ" is a different (empty) topic, and A's backend name is
    # just an ordinary inbound name for B, never A's DLQ.
    await put_in_backend(edge.backend, dlq_topic(b["project_id"], "purchases"), [b"b-only"])
    other = consumer_for(
        edge,
        b["project_id"],
        b["write_key"],
        "purchases-DLQ",
        group_id="fixers",
        auto_offset_reset="earliest",
    )
    await other.start()
    try:
        record = await asyncio.wait_for(other.getone(), 30)
        assert record.value == b"b-only"
    finally:
        await other.stop()
    args = kcat_sasl(edge, b["project_id"], b["write_key"])
    sneaky = dlq_topic(a["project_id"], "purchases")
    out, err = await asyncio.to_thread(
        kcat_for, 10, *args, "-C", "-t", sneaky, "-o", "beginning", "-e"
    )
    # For B that name is just one of B's own (nonexistent) names: A's DLQ is unreachable.
    assert "unknown topic" in err.lower() or "authorization failed" in err.lower(), err[-2000:]
    assert "bad-1" not in out and "bad-1" not in err


async def test_transactional_producer_is_refused(edge: Edge, new_project) -> None:
    p = new_project()
    producer = producer_for(edge, p["project_id"], p["write_key"], transactional_id="tx-1")
    with pytest.raises(TransactionalIdAuthorizationFailed):
        await asyncio.wait_for(producer.start(), 30)
    await producer.stop()


async def test_create_topic_is_refused(edge: Edge, new_project) -> None:
    p = new_project()
    options = client_options(edge, p["project_id"], p["master_key"])
    options.pop("request_timeout_ms")
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        result = await admin.create_topics([NewTopic("made-by-admin", 1, 1)])
        codes = [t[1] for t in result.topic_errors]
        assert codes == [29]  # TOPIC_AUTHORIZATION_FAILED
    finally:
        await admin.close()


async def test_oversize_batch_is_refused_with_record_too_large(edge: Edge, new_project) -> None:
    p = new_project()
    producer = producer_for(
        edge,
        p["project_id"],
        p["write_key"],
        max_request_size=4 * 1024 * 1024,
        max_batch_size=4 * 1024 * 1024,
    )
    await producer.start()
    try:
        await producer.send_and_wait("big", b"{}")
        with pytest.raises(MessageSizeTooLargeError):
            await producer.send_and_wait("big", b'{"x": "' + b"a" * 1_100_000 + b'"}')
    finally:
        await producer.stop()


def test_invalid_topic_name_is_refused(edge: Edge, new_project) -> None:
    p = new_project()
    args = kcat_sasl(edge, p["project_id"], p["write_key"])
    # The -DLQ produce is answered TOPIC_AUTHORIZATION_FAILED; librdkafka retries that until
    # its message timeout, so only the failed delivery is visible to kcat.
    for name, expected in (
        ("x" * 65, "invalid"),
        ("orders-DLQ", "delivery failed for message: local: message timed out"),
    ):
        _out, err = kcat_for(
            10, *args, "-X", "message.timeout.ms=5000", "-P", "-t", name, input=b"{}\n"
        )
        assert expected in err.lower(), err[-2000:]


def test_produce_rate_limit_answers_kafka_throttle_time(
    make_settings, sqlite_url, kafka_bootstrap, dev_certs, new_project
) -> None:  # noqa: ANN001
    """Over its byte rate a project's produce answers carry throttle_time_ms (KIP-219), so
    the client backs off itself; within the burst they carry 0."""
    from tests.gateway.conftest import make_edge
    from tests.gateway.rawclient import Raw, batch

    thread, edge = make_edge(
        make_settings, sqlite_url, kafka_bootstrap, dev_certs, gateway_project_rate_bytes=200_000
    )
    raw = Raw(edge.plain_port)
    try:
        p = new_project()
        assert raw.sasl(p["project_id"], p["write_key"]).error_code == 0
        value = b'{"v": "' + b"x" * 50_000 + b'"}'
        # ~400 KB against a 200 KB/s rate with a 200 KB burst, sent without honouring the
        # throttle: the answers' throttle time must grow past 0.
        throttles = [_raw_produce_answer(raw, "limited", batch([value])).throttle_time_ms]
        for _ in range(7):
            throttles.append(_raw_produce_answer(raw, "limited", batch([value])).throttle_time_ms)
        assert throttles[0] == 0, throttles
        assert throttles[-1] > 0, throttles
    finally:
        raw.close()
        thread.stop()


def _raw_produce_answer(raw, topic: str, records: bytes):  # noqa: ANN001, ANN202
    """The whole Produce v9 answer, retried while the new topic's leader settles."""
    from kafka.protocol.producer import ProduceRequest

    req = ProduceRequest(
        transactional_id=None,
        acks=-1,
        timeout_ms=15000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name=topic,
                partition_data=[
                    ProduceRequest.TopicProduceData.PartitionProduceData(index=0, records=records)
                ],
            )
        ],
    )
    deadline = time.monotonic() + 20
    while True:
        answer = raw.request(req, 9)
        code = answer.responses[0].partition_responses[0].error_code
        if code == 0 or time.monotonic() > deadline:
            assert code == 0, answer
            return answer
