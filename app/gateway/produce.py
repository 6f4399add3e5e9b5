"""Produce: rename topics, stamp the writing key on every record, forward to each leader."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from kafka.protocol.api_key import ApiKey
from kafka.protocol.api_message import ApiMessage
from kafka.protocol.producer import ProduceRequest, ProduceResponse

from app.gateway import errors
from app.gateway.backend import BackendError
from app.gateway.cluster import once_more_if_cut
from app.gateway.creation import Refusal, create_collections
from app.gateway.naming import Kind
from app.gateway.records import BatchRefused, stamp_records
from app.gateway.session import Reply, Session
from app.gateway.wire import RequestHeader

log = logging.getLogger("inbound.gateway.produce")

# KIP-219: from Produce v6 the client honours throttle_time_ms itself; before that the broker
# delays the answer.
_CLIENT_SIDE_THROTTLE_VERSION = 6

PartitionResult = ProduceResponse.TopicProduceResponse.PartitionProduceResponse


def _result(index: int, code: int, message: str | None = None) -> Any:
    return PartitionResult(
        index=index,
        error_code=code,
        base_offset=-1,
        log_append_time_ms=-1,
        log_start_offset=-1,
        record_errors=[],
        error_message=message,
    )


def _copy_result(p: Any) -> Any:
    # A fresh struct drops the backend's leader hints (KIP-951), which name backend brokers.
    return PartitionResult(
        index=p.index,
        error_code=p.error_code,
        base_offset=p.base_offset,
        log_append_time_ms=p.log_append_time_ms,
        log_start_offset=p.log_start_offset,
        record_errors=list(p.record_errors or []),
        error_message=p.error_message,
    )


def _response(results: dict[str, dict[int, Any]], order: list[str], throttle_ms: int) -> ApiMessage:
    topics = [
        ProduceResponse.TopicProduceResponse(
            name=name, partition_responses=[results[name][i] for i in sorted(results[name])]
        )
        for name in order
        if name in results
    ]
    return ProduceResponse(responses=topics, throttle_time_ms=throttle_ms, node_endpoints=[])


async def handle_produce(session: Session, header: RequestHeader, req: Any) -> Reply:
    names = session.names
    principal = session.principal
    assert names is not None and principal is not None
    acks = req.acks
    order = [t.name for t in req.topic_data]
    results: dict[str, dict[int, Any]] = defaultdict(dict)

    if req.transactional_id is not None:
        for t in req.topic_data:
            for p in t.partition_data:
                results[t.name][p.index] = _result(
                    p.index,
                    errors.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                    "transactions are not allowed on this cluster",
                )
        return None if acks == 0 else _response(results, order, 0)

    size = sum(len(p.records or b"") for t in req.topic_data for p in t.partition_data)
    throttle_ms = session.ctx.quota.charge(principal.project_id, size)

    # customer topic -> backend topic, for the valid inbound ones
    wanted: dict[str, str] = {}
    for t in req.topic_data:
        mapped = names.topic(t.name)
        if mapped.kind is Kind.INBOUND:
            wanted[t.name] = mapped.backend  # type: ignore[assignment]
            continue
        code, message = (
            (errors.TOPIC_AUTHORIZATION_FAILED, "-DLQ topics are read-only")
            if mapped.kind is Kind.DLQ
            else (errors.INVALID_TOPIC_EXCEPTION, f"invalid collection name {t.name!r}")
        )
        for p in t.partition_data:
            results[t.name][p.index] = _result(p.index, code, message)

    leaders = (
        await once_more_if_cut(lambda: session.backend.leaders(list(wanted.values())))
        if wanted
        else {}
    )
    missing = [b for b in wanted.values() if b not in leaders]
    refused: dict[str, Refusal] = {}
    if missing:
        # The first produce to a new valid name creates the collection's topic.
        refused = await create_collections(session, missing)
        created = [b for b in missing if b not in refused]
        if created:
            leaders.update(await session.backend.leaders(created))

    # leader node -> backend topic -> [(partition, stamped records)]
    by_node: dict[int, dict[str, list[tuple[int, bytes]]]] = defaultdict(lambda: defaultdict(list))
    customer_of: dict[str, str] = {}
    max_bytes = session.ctx.message_max_bytes
    for t in req.topic_data:
        backend_topic = wanted.get(t.name)
        if backend_topic is None:
            continue
        customer_of[backend_topic] = t.name
        refusal = refused.get(backend_topic)
        if refusal is not None:
            for p in t.partition_data:
                results[t.name][p.index] = _result(p.index, refusal.code, refusal.message)
            continue
        info = leaders.get(backend_topic)
        for p in t.partition_data:
            records = bytes(p.records or b"")
            if len(records) > max_bytes:
                results[t.name][p.index] = _result(
                    p.index,
                    errors.MESSAGE_TOO_LARGE,
                    f"the record batch is {len(records)} bytes, over message.max.bytes={max_bytes}",
                )
                continue
            leader = info.partitions.get(p.index) if info else None
            if leader is None:
                results[t.name][p.index] = _result(p.index, errors.UNKNOWN_TOPIC_OR_PARTITION)
                continue
            if leader < 0:
                results[t.name][p.index] = _result(p.index, errors.LEADER_NOT_AVAILABLE)
                continue
            try:
                stamped = stamp_records(
                    records, principal.key_id, session.ctx.limits.max_decompressed_bytes
                )
            except BatchRefused as exc:
                results[t.name][p.index] = _result(p.index, exc.code, str(exc))
                continue
            by_node[leader][backend_topic].append((p.index, stamped))

    version = session.backend.version(ApiKey.Produce, 12, floor=3)
    sent: list[tuple[int, dict[str, list[tuple[int, bytes]]], asyncio.Future | None]] = []
    for node, topics in by_node.items():
        request = ProduceRequest(
            transactional_id=None,
            acks=acks,
            timeout_ms=req.timeout_ms,
            topic_data=[
                ProduceRequest.TopicProduceData(
                    name=bt,
                    partition_data=[
                        ProduceRequest.TopicProduceData.PartitionProduceData(index=i, records=r)
                        for i, r in parts
                    ],
                )
                for bt, parts in topics.items()
            ],
        )
        try:
            conn = await session.links.node(node)
            fut = conn.send(request, version, expect_response=acks != 0)
            await conn.drain()
        except BackendError as exc:
            log.warning("produce to backend node %s failed: %s", node, exc)
            fut = asyncio.get_running_loop().create_future()
            fut.set_exception(exc)
        sent.append((node, topics, fut))

    if acks == 0:
        # No answer is expected; a quota is enforced by reading this client's next request later.
        session.pause_seconds = throttle_ms / 1000
        return None
    if header.api_version >= _CLIENT_SIDE_THROTTLE_VERSION:
        session.pause_seconds = throttle_ms / 1000

    async def finish() -> ApiMessage:
        backend_throttle = 0
        for node, topics, fut in sent:
            try:
                resp = await asyncio.wait_for(fut, req.timeout_ms / 1000 + 30)
            except (BackendError, TimeoutError) as exc:
                log.warning("no produce answer from backend node %s: %s", node, exc)
                for bt, parts in topics.items():
                    session.backend.forget(bt)
                    for i, _ in parts:
                        results[customer_of[bt]][i] = _result(i, errors.NOT_LEADER_OR_FOLLOWER)
                continue
            backend_throttle = max(backend_throttle, resp.throttle_time_ms or 0)
            for topic in resp.responses:
                customer = customer_of.get(topic.name)
                if customer is None:
                    continue
                for p in topic.partition_responses:
                    if p.error_code in (
                        errors.NOT_LEADER_OR_FOLLOWER,
                        errors.UNKNOWN_TOPIC_OR_PARTITION,
                    ):
                        session.backend.forget(topic.name)
                    results[customer][p.index] = _copy_result(p)
        total_throttle = max(throttle_ms, backend_throttle)
        if header.api_version < _CLIENT_SIDE_THROTTLE_VERSION and throttle_ms:
            await asyncio.sleep(throttle_ms / 1000)
        return _response(results, order, total_throttle)

    return finish()
