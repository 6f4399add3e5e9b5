"""Admin and transaction APIs are answered with Kafka's authorization errors."""

from __future__ import annotations

import uuid

import pytest
from kafka.protocol.admin import CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest
from kafka.protocol.producer import (
    AddOffsetsToTxnRequest,
    AddPartitionsToTxnRequest,
    EndTxnRequest,
    TxnOffsetCommitRequest,
)

from app.gateway import refusals
from app.gateway.policy import APIS
from app.gateway.wire import RequestHeader, encode_response

TOPIC_AUTHORIZATION_FAILED = 29
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53


def _versions(key: int) -> range:
    low, high = APIS[key].versions
    return range(low, high + 1)


async def _answer(handler, key: int, version: int, request):  # noqa: ANN001, ANN202
    reply = await handler(None, RequestHeader(key, version, 1, None, 0), request)
    encode_response(RequestHeader(key, version, 1, None, 0), reply)  # encodable as served
    return reply


@pytest.mark.parametrize("version", _versions(19))
async def test_create_topics(version: int) -> None:
    T = CreateTopicsRequest.CreatableTopic
    req = CreateTopicsRequest(
        topics=[T(name="a", num_partitions=1, replication_factor=1, assignments=[], configs=[])],
        timeout_ms=1000,
    )
    reply = await _answer(refusals.refuse_create_topics, 19, version, req)
    [topic] = reply.topics
    assert (topic.name, topic.error_code) == ("a", TOPIC_AUTHORIZATION_FAILED)
    assert topic.error_message == refusals.ADMIN_REFUSED


@pytest.mark.parametrize("version", _versions(20))
async def test_delete_topics(version: int) -> None:
    topic_id = uuid.uuid4()
    req = DeleteTopicsRequest(
        topics=[DeleteTopicsRequest.DeleteTopicState(name="a", topic_id=topic_id)],
        topic_names=["a"],
        timeout_ms=1000,
    )
    reply = await _answer(refusals.refuse_delete_topics, 20, version, req)
    [topic] = reply.responses
    assert (topic.name, topic.error_code) == ("a", TOPIC_AUTHORIZATION_FAILED)
    if version >= 6:
        assert topic.topic_id == topic_id


@pytest.mark.parametrize("version", _versions(37))
async def test_create_partitions(version: int) -> None:
    T = CreatePartitionsRequest.CreatePartitionsTopic
    req = CreatePartitionsRequest(
        topics=[T(name="a", count=3, assignments=None)], timeout_ms=1000, validate_only=False
    )
    reply = await _answer(refusals.refuse_create_partitions, 37, version, req)
    assert [(r.name, r.error_code) for r in reply.results] == [("a", TOPIC_AUTHORIZATION_FAILED)]


@pytest.mark.parametrize("version", _versions(24))
async def test_add_partitions_to_txn(version: int) -> None:
    T = AddPartitionsToTxnRequest.AddPartitionsToTxnTopic
    req = AddPartitionsToTxnRequest(
        v3_and_below_transactional_id="t",
        v3_and_below_producer_id=1,
        v3_and_below_producer_epoch=0,
        v3_and_below_topics=[T(name="a", partitions=[0, 1])],
    )
    reply = await _answer(refusals.refuse_add_partitions_to_txn, 24, version, req)
    assert reply.error_code == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    [topic] = reply.results_by_topic_v3_and_below
    assert [p.partition_error_code for p in topic.results_by_partition] == [53, 53]


@pytest.mark.parametrize("version", _versions(25))
async def test_add_offsets_to_txn(version: int) -> None:
    req = AddOffsetsToTxnRequest(
        transactional_id="t", producer_id=1, producer_epoch=0, group_id="g"
    )
    reply = await _answer(refusals.refuse_add_offsets_to_txn, 25, version, req)
    assert reply.error_code == TRANSACTIONAL_ID_AUTHORIZATION_FAILED


@pytest.mark.parametrize("version", _versions(26))
async def test_end_txn(version: int) -> None:
    req = EndTxnRequest(transactional_id="t", producer_id=1, producer_epoch=0, committed=True)
    reply = await _answer(refusals.refuse_end_txn, 26, version, req)
    assert reply.error_code == TRANSACTIONAL_ID_AUTHORIZATION_FAILED


@pytest.mark.parametrize("version", _versions(28))
async def test_txn_offset_commit(version: int) -> None:
    T = TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic
    P = T.TxnOffsetCommitRequestPartition
    req = TxnOffsetCommitRequest(
        transactional_id="t",
        group_id="g",
        producer_id=1,
        producer_epoch=0,
        topics=[T(name="a", partitions=[P(partition_index=2, committed_offset=5)])],
    )
    reply = await _answer(refusals.refuse_txn_offset_commit, 28, version, req)
    [topic] = reply.topics
    assert [(p.partition_index, p.error_code) for p in topic.partitions] == [(2, 53)]
