"""Admin and transaction APIs: answered with Kafka's authorization errors, never forwarded."""

from __future__ import annotations

from typing import Any

from kafka.protocol.admin import (
    CreatePartitionsResponse,
    CreateTopicsResponse,
    DeleteTopicsResponse,
)
from kafka.protocol.producer import (
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnResponse,
    EndTxnResponse,
    TxnOffsetCommitResponse,
)

from app.gateway import errors
from app.gateway.session import Reply, Session
from app.gateway.wire import RequestHeader

ADMIN_REFUSED = (
    "admin operations are not allowed: a topic is created by the first produce to a valid name"
)
TXN = errors.TRANSACTIONAL_ID_AUTHORIZATION_FAILED


def _admin_refused(result: Any, topics: list[dict[str, Any]]) -> list[Any]:
    """One ``result`` per topic (its identifying fields given), each refused with the reason."""
    return [
        result(**fields, error_code=errors.TOPIC_AUTHORIZATION_FAILED, error_message=ADMIN_REFUSED)
        for fields in topics
    ]


async def refuse_create_topics(session: Session, header: RequestHeader, req: Any) -> Reply:
    return CreateTopicsResponse(
        throttle_time_ms=0,
        topics=_admin_refused(
            CreateTopicsResponse.CreatableTopicResult,
            [
                {
                    "name": t.name,
                    "topic_config_error_code": errors.NONE,
                    "num_partitions": -1,
                    "replication_factor": -1,
                    "configs": None,
                }
                for t in req.topics
            ],
        ),
    )


async def refuse_delete_topics(session: Session, header: RequestHeader, req: Any) -> Reply:
    if header.api_version >= 6:
        targets = [{"name": t.name, "topic_id": t.topic_id} for t in req.topics]
    else:
        targets = [{"name": name} for name in req.topic_names]
    return DeleteTopicsResponse(
        throttle_time_ms=0,
        responses=_admin_refused(DeleteTopicsResponse.DeletableTopicResult, targets),
    )


async def refuse_create_partitions(session: Session, header: RequestHeader, req: Any) -> Reply:
    return CreatePartitionsResponse(
        throttle_time_ms=0,
        results=_admin_refused(
            CreatePartitionsResponse.CreatePartitionsTopicResult,
            [{"name": t.name} for t in req.topics],
        ),
    )


async def refuse_add_partitions_to_txn(session: Session, header: RequestHeader, req: Any) -> Reply:
    Topic = AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult
    Part = Topic.AddPartitionsToTxnPartitionResult
    # v0-3 (the versions advertised) carry one transaction's topics at the top level.
    return AddPartitionsToTxnResponse(
        throttle_time_ms=0,
        error_code=TXN,
        results_by_topic_v3_and_below=[
            Topic(
                name=t.name,
                results_by_partition=[
                    Part(partition_index=p, partition_error_code=TXN) for p in t.partitions
                ],
            )
            for t in req.v3_and_below_topics
        ],
    )


async def refuse_add_offsets_to_txn(session: Session, header: RequestHeader, req: Any) -> Reply:
    return AddOffsetsToTxnResponse(throttle_time_ms=0, error_code=TXN)


async def refuse_end_txn(session: Session, header: RequestHeader, req: Any) -> Reply:
    return EndTxnResponse(throttle_time_ms=0, error_code=TXN, producer_id=-1, producer_epoch=-1)


async def refuse_txn_offset_commit(session: Session, header: RequestHeader, req: Any) -> Reply:
    Topic = TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic
    Part = Topic.TxnOffsetCommitResponsePartition
    return TxnOffsetCommitResponse(
        throttle_time_ms=0,
        topics=[
            Topic(
                name=t.name,
                partitions=[
                    Part(partition_index=p.partition_index, error_code=TXN) for p in t.partitions
                ],
            )
            for t in req.topics
        ],
    )
