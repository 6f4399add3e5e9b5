"""Consuming: only the project's own ``-DLQ`` topics, with ordinary consumer groups.

Requests are forwarded at the client's own version after renaming; topics that are not the
project's DLQ topics are answered with TOPIC_AUTHORIZATION_FAILED and never forwarded.
Group ids are prefixed with the project id on the way in (see ``naming``), so two
projects' groups of the same name are different backend groups.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

from kafka.protocol.consumer import (
    FetchRequest,
    FetchResponse,
    HeartbeatResponse,
    JoinGroupResponse,
    LeaveGroupResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    OffsetCommitResponse,
    OffsetFetchResponse,
    SyncGroupResponse,
)

from app.gateway import errors
from app.gateway.backend import BackendError
from app.gateway.naming import Kind, ProjectNames
from app.gateway.session import Reply, Session
from app.gateway.wire import RequestHeader

# The backend's partition leadership moved: its cached leaders are stale.
_REFRESH_ERRORS = {
    errors.NOT_LEADER_OR_FOLLOWER,
    errors.UNKNOWN_TOPIC_OR_PARTITION,
    errors.FENCED_LEADER_EPOCH,
    errors.UNKNOWN_LEADER_EPOCH,
}
_COORDINATOR_ERRORS = {errors.NOT_COORDINATOR, errors.COORDINATOR_NOT_AVAILABLE}


def _dlq(names: ProjectNames, customer: str) -> str | None:
    mapped = names.topic(customer)
    return mapped.backend if mapped.kind is Kind.DLQ else None


# ---- Fetch -----------------------------------------------------------------------------


def _fetch_error(index: int, code: int) -> Any:
    return FetchResponse.FetchableTopicResponse.PartitionData(
        partition_index=index,
        error_code=code,
        high_watermark=-1,
        last_stable_offset=-1,
        log_start_offset=-1,
        aborted_transactions=None,
        preferred_read_replica=-1,
        records=None,
    )


class _ByLeader:
    """One Fetch or ListOffsets split by backend partition leader and forwarded.

    Answers the gateway gives itself (refused topics, partitions without a leader, brokers
    lost on the way) are collected per customer topic in ``merged``, ahead of the backend's.
    """

    def __init__(
        self,
        session: Session,
        partition_of: Callable[[Any], int],
        error: Callable[[int, int], Any],
    ) -> None:
        self.session = session
        self._partition_of = partition_of
        self._error = error  # (partition, error code) -> that partition's answer
        self.merged: dict[str, list[Any]] = defaultdict(list)
        self._allowed: dict[str, tuple[str, Any]] = {}  # backend -> (customer, topic request)
        self._sent: list[tuple[dict[str, list[Any]], asyncio.Future]] = []
        self.throttle_ms = 0  # the longest throttle among the answers read so far

    def _fail(self, customer: str, parts: Any, code: int) -> None:
        self.merged[customer].extend(self._error(self._partition_of(p), code) for p in parts)

    def admit(self, customer: str, topic: Any) -> None:
        """Take one requested topic: forwarded if it is one of the project's DLQ topics."""
        names = self.session.names
        assert names is not None
        backend_topic = _dlq(names, customer)
        if backend_topic is None:
            self._fail(customer, topic.partitions, errors.TOPIC_AUTHORIZATION_FAILED)
        else:
            self._allowed[backend_topic] = (customer, topic)

    def customer(self, backend_topic: str) -> str | None:
        return self._allowed.get(backend_topic, (None,))[0]

    async def send(self, build: Callable[[dict[str, list[Any]]], Any], version: int) -> None:
        """Send ``build(backend topic -> partition requests)`` to each leader."""
        session = self.session
        allowed = self._allowed
        leaders = await session.backend.leaders(list(allowed)) if allowed else {}
        by_node = _group_by_leader(
            allowed,
            leaders,
            self._partition_of,
            lambda c, i, code: self.merged[c].append(self._error(i, code)),
        )
        for node, topics in by_node.items():
            conn = await session.links.node(node)
            fut = conn.send(build(topics), version)
            await conn.drain()
            self._sent.append((topics, fut))

    async def answers(self) -> AsyncIterator[Any]:
        """Each leader's answer in turn; a broker lost on the way has its partitions answered
        NOT_LEADER_OR_FOLLOWER instead (and its leaders forgotten)."""
        for topics, fut in self._sent:
            try:
                resp = await fut
            except BackendError:
                for bt, parts in topics.items():
                    self.session.backend.forget(bt)
                    self._fail(self._allowed[bt][0], parts, errors.NOT_LEADER_OR_FOLLOWER)
                continue
            self.throttle_ms = max(self.throttle_ms, resp.throttle_time_ms or 0)
            yield resp


async def handle_fetch(session: Session, header: RequestHeader, req: Any) -> Reply:
    split = _ByLeader(session, lambda p: p.partition, _fetch_error)
    for t in req.topics:
        split.admit(t.topic, t)

    def build(topics: dict[str, list[Any]]) -> Any:
        return FetchRequest(
            cluster_id=None,
            replica_id=-1,
            max_wait_ms=req.max_wait_ms,
            min_bytes=req.min_bytes,
            max_bytes=req.max_bytes,
            isolation_level=req.isolation_level,
            # Sessionless full fetches: the gateway may split a request across backend
            # brokers, which a fetch session (bound to one broker connection) cannot follow.
            session_id=0,
            session_epoch=-1,
            topics=[
                FetchRequest.FetchTopic(topic=bt, partitions=parts) for bt, parts in topics.items()
            ],
            forgotten_topics_data=[],
            rack_id="",
        )

    await split.send(build, header.api_version)

    async def finish() -> Any:
        merged = split.merged
        async for resp in split.answers():
            for t in resp.responses:
                customer = split.customer(t.topic)
                if customer is None:
                    continue
                for p in t.partitions:
                    if p.error_code in _REFRESH_ERRORS:
                        session.backend.forget(t.topic)
                    # Never point the client at a backend replica or leader.
                    p.preferred_read_replica = -1
                    if p.tags:
                        p.tags.discard("current_leader")
                    merged[customer].append(p)
        return FetchResponse(
            throttle_time_ms=split.throttle_ms,
            error_code=errors.NONE,
            session_id=0,
            responses=[
                FetchResponse.FetchableTopicResponse(topic=name, partitions=parts)
                for name, parts in merged.items()
            ],
            node_endpoints=[],
        )

    return finish()


# ---- ListOffsets -----------------------------------------------------------------------


async def handle_list_offsets(session: Session, header: RequestHeader, req: Any) -> Reply:
    Resp = ListOffsetsResponse.ListOffsetsTopicResponse
    Part = Resp.ListOffsetsPartitionResponse

    def err(index: int, code: int) -> Any:
        return Part(
            partition_index=index,
            error_code=code,
            old_style_offsets=[],
            timestamp=-1,
            offset=-1,
            leader_epoch=-1,
        )

    split = _ByLeader(session, lambda p: p.partition_index, err)
    for t in req.topics:
        split.admit(t.name, t)

    def build(topics: dict[str, list[Any]]) -> Any:
        return ListOffsetsRequest(
            replica_id=-1,
            isolation_level=req.isolation_level,
            topics=[
                ListOffsetsRequest.ListOffsetsTopic(name=bt, partitions=parts)
                for bt, parts in topics.items()
            ],
            timeout_ms=req.timeout_ms,
        )

    await split.send(build, header.api_version)

    async def finish() -> Any:
        merged = split.merged
        async for resp in split.answers():
            for t in resp.topics:
                customer = split.customer(t.name)
                if customer is None:
                    continue
                if any(p.error_code in _REFRESH_ERRORS for p in t.partitions):
                    session.backend.forget(t.name)
                merged[customer].extend(t.partitions)
        return ListOffsetsResponse(
            throttle_time_ms=split.throttle_ms,
            topics=[Resp(name=n, partitions=ps) for n, ps in merged.items()],
        )

    return finish()


# ---- consumer groups -------------------------------------------------------------------


async def _coordinator_send(
    session: Session, group: str, req: Any, version: int
) -> tuple[int, asyncio.Future | None]:
    """Send ``req`` to ``group``'s backend coordinator: (error code, future of the answer)."""
    backend = session.backend
    node = backend.group_nodes.get(group)
    if node is None:
        code, node, _message = await backend.coordinator(group)
        if code != errors.NONE:
            return code, None
    conn = await session.links.node(node)
    fut = conn.send(req, version)
    await conn.drain()
    return errors.NONE, fut


def _simple_group_handler(response_cls: Any, **error_fields: Any):  # noqa: ANN202 - handler factory
    """Join/Sync/Heartbeat/Leave: rename the group, forward, pass the answer back."""

    async def handler(session: Session, header: RequestHeader, req: Any) -> Reply:
        names = session.names
        assert names is not None
        group = names.group(req.group_id)
        req.group_id = group
        code, fut = await _coordinator_send(session, group, req, header.api_version)
        if fut is None:
            return response_cls(error_code=code, **error_fields)

        async def finish() -> Any:
            resp = await fut
            if resp.error_code in _COORDINATOR_ERRORS:
                session.backend.group_nodes.pop(group, None)
            return resp

        return finish()

    return handler


handle_join_group = _simple_group_handler(
    JoinGroupResponse, generation_id=-1, protocol_name=None, leader="", member_id="", members=[]
)
handle_sync_group = _simple_group_handler(SyncGroupResponse, assignment=b"")
handle_heartbeat = _simple_group_handler(HeartbeatResponse)
handle_leave_group = _simple_group_handler(LeaveGroupResponse, members=[])


async def handle_offset_commit(session: Session, header: RequestHeader, req: Any) -> Reply:
    names = session.names
    assert names is not None
    Topic = OffsetCommitResponse.OffsetCommitResponseTopic
    Part = Topic.OffsetCommitResponsePartition
    refused = []
    kept = []
    customer_of: dict[str, str] = {}
    for t in req.topics:
        bt = _dlq(names, t.name)
        if bt is None:
            refused.append(
                Topic(
                    name=t.name,
                    partitions=[
                        Part(
                            partition_index=p.partition_index,
                            error_code=errors.TOPIC_AUTHORIZATION_FAILED,
                        )
                        for p in t.partitions
                    ],
                )
            )
        else:
            customer_of[bt] = t.name
            t.name = bt
            kept.append(t)
    group = names.group(req.group_id)
    req.group_id = group
    req.topics = kept
    if not kept:
        return OffsetCommitResponse(throttle_time_ms=0, topics=refused)
    code, fut = await _coordinator_send(session, group, req, header.api_version)
    if fut is None:
        failed = [
            Topic(
                name=customer_of[t.name],
                partitions=[
                    Part(partition_index=p.partition_index, error_code=code) for p in t.partitions
                ],
            )
            for t in kept
        ]
        return OffsetCommitResponse(throttle_time_ms=0, topics=refused + failed)

    async def finish() -> Any:
        resp = await fut
        for t in resp.topics:
            t.name = customer_of.get(t.name, t.name)
            if any(p.error_code in _COORDINATOR_ERRORS for p in t.partitions):
                session.backend.group_nodes.pop(group, None)
        resp.topics = list(resp.topics) + refused
        return resp

    return finish()


async def handle_offset_fetch(session: Session, header: RequestHeader, req: Any) -> Reply:
    names = session.names
    assert names is not None
    batched = header.api_version >= 8
    if batched:
        if len(req.groups) != 1:
            return OffsetFetchResponse(
                throttle_time_ms=0,
                groups=[
                    OffsetFetchResponse.OffsetFetchResponseGroup(
                        group_id=g.group_id, topics=[], error_code=errors.INVALID_REQUEST
                    )
                    for g in req.groups
                ],
            )
        target = req.groups[0]
    else:
        target = req
    customer_group = target.group_id
    group = names.group(customer_group)
    target.group_id = group
    refused: list[str] = []
    if target.topics is not None:
        kept = []
        for t in target.topics:
            bt = _dlq(names, t.name)
            if bt is None:
                refused.append(t.name)
            else:
                t.name = bt
                kept.append(t)
        target.topics = kept
    code, fut = await _coordinator_send(session, group, req, header.api_version)

    def rename(resp_group: Any) -> None:
        out = []
        for t in resp_group.topics or []:
            customer = names.customer_topic(t.name)
            if customer is not None:
                t.name = customer
                out.append(t)
        resp_group.topics = out

    if fut is None:
        if batched:
            return OffsetFetchResponse(
                throttle_time_ms=0,
                groups=[
                    OffsetFetchResponse.OffsetFetchResponseGroup(
                        group_id=customer_group, topics=[], error_code=code
                    )
                ],
            )
        return OffsetFetchResponse(throttle_time_ms=0, topics=[], error_code=code)

    async def finish() -> Any:
        resp = await fut
        body = resp.groups[0] if batched else resp
        if body.error_code in _COORDINATOR_ERRORS:
            session.backend.group_nodes.pop(group, None)
        rename(body)
        if batched:
            body.group_id = customer_group
        # Offsets of refused topics are simply absent (no commit was ever allowed there).
        return resp

    return finish()


def _group_by_leader(
    allowed: dict[str, tuple[str, Any]],
    leaders: dict[str, Any],
    partition_of: Callable[[Any], int],
    on_missing: Callable[[str, int, int], None],
) -> dict[int, dict[str, list[Any]]]:
    """node -> backend topic -> partition requests; partitions without a leader are reported
    through ``on_missing(customer_topic, partition, error_code)`` instead."""
    by_node: dict[int, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for backend_topic, (customer, t) in allowed.items():
        info = leaders.get(backend_topic)
        for p in t.partitions:
            index = partition_of(p)
            leader = info.partitions.get(index) if info else None
            if leader is None or leader < 0:
                code = (
                    errors.UNKNOWN_TOPIC_OR_PARTITION
                    if leader is None
                    else errors.LEADER_NOT_AVAILABLE
                )
                on_missing(customer, index, code)
            else:
                by_node[leader][backend_topic].append(p)
    return by_node
