"""Metadata, FindCoordinator and InitProducerId: what a client learns about "the cluster".

The client sees one broker, the gateway itself, leading every partition of its project's
topics and coordinating its groups; it never learns a backend address or another
project's topic.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from kafka.protocol.api_key import ApiKey
from kafka.protocol.metadata import FindCoordinatorResponse, MetadataResponse
from kafka.protocol.producer import InitProducerIdRequest, InitProducerIdResponse

from app.gateway import errors
from app.gateway.backend import BackendError
from app.gateway.creation import Refusal, create_collections
from app.gateway.naming import Kind
from app.gateway.session import GATEWAY_NODE_ID, Reply, Session
from app.gateway.wire import RequestHeader

log = logging.getLogger("inbound.gateway.cluster")

_ZERO_UUID = uuid.UUID(int=0)
# As long as a control request may take on the backend connection (Backend.control_request).
_CONTROL_ANSWER_SECONDS = 30.0
_TXN_REFUSED = "transactions are not allowed on this cluster"
# FindCoordinator key types.
_GROUP_KEY, _TRANSACTION_KEY = 0, 1

T = TypeVar("T")

Broker = MetadataResponse.MetadataResponseBroker
Topic = MetadataResponse.MetadataResponseTopic
Partition = MetadataResponse.MetadataResponseTopic.MetadataResponsePartition


async def once_more_if_cut(call: Callable[[], Awaitable[T]]) -> T:
    """Run a control-connection call again once if its connection was cut mid-request.

    The shared control connection dies with the broker it is on; the next call opens one to
    another broker, so a client is not disconnected for one broker's death.
    """
    try:
        return await call()
    except BackendError as exc:
        log.info("backend control request failed (%s): trying another broker", exc)
        return await call()


def _topic(name: str, code: int, partitions: list[Any] | None = None) -> Any:
    return Topic(
        error_code=code,
        name=name,
        topic_id=_ZERO_UUID,
        is_internal=False,
        partitions=partitions or [],
    )


def _partitions(backend_topic: Any) -> list[Any]:
    out = []
    for p in backend_topic.partitions:
        led = p.leader_id >= 0
        out.append(
            Partition(
                error_code=p.error_code,
                partition_index=p.partition_index,
                leader_id=GATEWAY_NODE_ID if led else -1,
                leader_epoch=p.leader_epoch,
                replica_nodes=[GATEWAY_NODE_ID],
                isr_nodes=[GATEWAY_NODE_ID] if led else [],
                offline_replicas=[],
            )
        )
    return sorted(out, key=lambda p: p.partition_index)


async def handle_metadata(session: Session, header: RequestHeader, req: Any) -> Reply:
    names = session.names
    assert names is not None
    backend = session.backend
    all_topics = req.topics is None or (header.api_version == 0 and not req.topics)
    out: list[Any] = []
    if all_topics:
        resp = await once_more_if_cut(lambda: backend.refresh(None))
        for t in resp.topics:
            customer = names.customer_topic(t.name)
            if customer is not None and t.error_code == errors.NONE:
                out.append(_topic(customer, errors.NONE, _partitions(t)))
    else:
        requested = [t.name for t in req.topics]
        mapped = {name: names.topic(name) for name in requested if name is not None}
        backend_names = [m.backend for m in mapped.values() if m.backend is not None]
        found: dict[str, Any] = {}
        if backend_names:
            resp = await once_more_if_cut(lambda: backend.refresh(backend_names))
            found = {t.name: t for t in resp.topics}
        auto_create = header.api_version < 4 or req.allow_auto_topic_creation
        missing = [
            m.backend
            for m in mapped.values()
            if m.kind is Kind.INBOUND
            and (
                m.backend not in found
                or found[m.backend].error_code == errors.UNKNOWN_TOPIC_OR_PARTITION
            )
        ]
        refused: dict[str, Refusal] = {}
        if missing and auto_create:
            # First use of a valid name creates the collection: no admin rights needed.
            refused = await create_collections(session, missing)
            created = [n for n in missing if n not in refused]
            if created:
                resp = await backend.refresh(created)
                found.update({t.name: t for t in resp.topics})
        for name in requested:
            m = mapped.get(name) if name is not None else None
            if m is None or m.kind is Kind.INVALID:
                out.append(_topic(name or "", errors.INVALID_TOPIC_EXCEPTION))
                continue
            refusal = refused.get(m.backend)  # type: ignore[arg-type]
            if refusal is not None:
                # Metadata has no error message; a client stops at INVALID_TOPIC at once (a
                # Produce to the name says why: POLICY_VIOLATION with a message).
                code = (
                    errors.INVALID_TOPIC_EXCEPTION
                    if refusal.code == errors.POLICY_VIOLATION
                    else refusal.code
                )
                out.append(_topic(name, code))
                continue
            t = found.get(m.backend)
            if t is None:
                out.append(_topic(name, errors.UNKNOWN_TOPIC_OR_PARTITION))
            elif t.error_code != errors.NONE:
                out.append(_topic(name, t.error_code))
            else:
                out.append(_topic(name, errors.NONE, _partitions(t)))
    host, port = session.advertised
    return MetadataResponse(
        throttle_time_ms=0,
        brokers=[Broker(node_id=GATEWAY_NODE_ID, host=host, port=port, rack=None)],
        cluster_id=session.ctx.cluster_id,
        controller_id=GATEWAY_NODE_ID,
        topics=out,
        error_code=errors.NONE,
    )


def _location(code: int, host: str, port: int) -> dict[str, Any]:
    # A found coordinator is always the gateway itself; a failed lookup names no node.
    if code == errors.NONE:
        return {"node_id": GATEWAY_NODE_ID, "host": host, "port": port}
    return {"node_id": -1, "host": "", "port": -1}


async def handle_find_coordinator(session: Session, header: RequestHeader, req: Any) -> Reply:
    names = session.names
    assert names is not None
    host, port = session.advertised
    batched = header.api_version >= 4
    keys = list(req.coordinator_keys) if batched else [req.key]
    found: list[tuple[str, int, str | None]] = []
    for key in keys:
        if req.key_type == _TRANSACTION_KEY:
            found.append((key, errors.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, _TXN_REFUSED))
            continue
        if req.key_type != _GROUP_KEY:
            found.append((key, errors.INVALID_REQUEST, "only consumer groups are served"))
            continue
        code, _node, message = await session.backend.coordinator(names.group(key))
        found.append((key, code, message))
    if batched:
        return FindCoordinatorResponse(
            throttle_time_ms=0,
            coordinators=[
                FindCoordinatorResponse.Coordinator(
                    key=key, error_code=code, error_message=message, **_location(code, host, port)
                )
                for key, code, message in found
            ],
        )
    _key, code, message = found[0]
    return FindCoordinatorResponse(
        throttle_time_ms=0,
        error_code=code,
        error_message=message,
        **_location(code, host, port),
    )


async def handle_init_producer_id(session: Session, header: RequestHeader, req: Any) -> Reply:
    if req.transactional_id is not None:
        return InitProducerIdResponse(
            throttle_time_ms=0,
            error_code=errors.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            producer_id=-1,
            producer_epoch=-1,
        )
    # Idempotent producers get a real producer id from the backend, so its sequence checks
    # (no duplicates, no reordering) apply to records that came through the gateway.
    version = session.backend.version(ApiKey.InitProducerId, header.api_version)
    forward = InitProducerIdRequest(
        transactional_id=None,
        transaction_timeout_ms=req.transaction_timeout_ms,
        producer_id=req.producer_id,
        producer_epoch=req.producer_epoch,
    )
    try:
        fut = await _send_to_a_live_node(session, forward, version)
    except BackendError as exc:
        log.warning("no backend broker for InitProducerId: %s", exc)
        return _no_producer_id()

    async def finish() -> Any:
        try:
            resp = await asyncio.wait_for(fut, _CONTROL_ANSWER_SECONDS)
        except (BackendError, TimeoutError) as exc:
            log.warning("no InitProducerId answer from the backend: %s", exc)
            return _no_producer_id()
        return InitProducerIdResponse(
            throttle_time_ms=resp.throttle_time_ms,
            error_code=resp.error_code,
            producer_id=resp.producer_id,
            producer_epoch=resp.producer_epoch,
        )

    return finish()


def _no_producer_id() -> Any:
    # What Kafka clients retry InitProducerId on (after a back-off), as they would against a
    # broker whose producer-id manager is briefly unavailable.
    return InitProducerIdResponse(
        throttle_time_ms=0,
        error_code=errors.COORDINATOR_NOT_AVAILABLE,
        producer_id=-1,
        producer_epoch=-1,
    )


async def _send_to_a_live_node(session: Session, request: Any, version: int) -> asyncio.Future:
    """Send to any backend broker that takes the connection: a dead one stays in the
    backend's metadata until it is fenced, and any broker can hand out a producer id."""
    backend = session.backend
    if not backend.nodes:
        await backend.refresh([])
    last: BackendError | None = None
    for node_id in list(backend.nodes):
        try:
            conn = await session.links.node(node_id)
            fut = conn.send(request, version)
            await conn.drain()
        except BackendError as exc:
            last = exc
            continue
        assert fut is not None
        return fut
    raise last or BackendError("the backend lists no brokers")
