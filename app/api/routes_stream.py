"""Keen's stream API: events in by HTTP, produced to the same backend topic Kafka clients use."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker

from app.api.auth import WRITE_KEY, Caller
from app.api.deps import ProducerDep, SessionsDep, SettingsDep
from app.api.http_rejections import check_event, keen_name, refuse
from app.api.metrics import EVENTS_PRODUCED, EVENTS_REFUSED
from app.api.problems import KEY_ERRORS, ApiError, ErrorBody, error_responses
from app.api.producer import KafkaProducerHolder
from app.api.schemas.stream import Created, ItemResult
from app.contract import headers as h
from app.contract.errors import Rejection
from app.contract.topics import inbound_topic
from app.settings import Settings


async def read_capped(request: Request, cap: int) -> bytes:
    """The request body, read in chunks and refused (413) as soon as it passes ``cap`` bytes,
    so a huge body never sits in memory whole."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise _too_large(cap)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise _too_large(cap)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(cap: int) -> ApiError:
    return ApiError(
        413,
        "RequestTooLargeError",
        f"The request body is over {cap:,} bytes (INBOUND_HTTP_MAX_BODY_BYTES); send fewer "
        "events per request.",
    )


router = APIRouter(tags=["stream"])


_EVENT_EXAMPLE = {"item": "golden widget", "price": 25.5, "user": {"id": "u-17", "plan": "pro"}}


def _headers(caller: Caller) -> list[tuple[str, bytes]]:
    # The worker trusts this header: it says which key wrote the record (for autofill, audit).
    return [(h.KEY_ID, caller.key.id.encode())]


@dataclass(frozen=True)
class _Ingest:
    """What producing and refusing need, gathered once per request."""

    caller: Caller
    settings: Settings
    sessions: sessionmaker[Session]
    producer: KafkaProducerHolder


async def _ingest(
    settings: SettingsDep,
    sessions: SessionsDep,
    producer: ProducerDep,
    caller: Caller = Depends(WRITE_KEY),
) -> _Ingest:
    return _Ingest(caller, settings, sessions, producer)


_IngestDep = Annotated[_Ingest, Depends(_ingest)]


async def _refuse(
    ctx: _Ingest, collection: str, payload: bytes, rejection: Rejection
) -> dict[str, Any]:
    caller, settings = ctx.caller, ctx.settings
    refused = await refuse(
        sessions=ctx.sessions,
        producer=ctx.producer,
        project_id=caller.project_id,
        collection=collection,
        key_id=caller.key.id,
        payload=payload,
        rejection=rejection,
        payload_cap=settings.error_payload_cap,
        max_problems=settings.problems_max_per_project,
    )
    EVENTS_REFUSED.labels(rejection.code).inc()
    return refused.body()


@router.post(
    "/3.0/projects/{project_id}/events/{collection}",
    summary="Record one event",
    description="Body: one event (a JSON object). It is produced to the backend topic "
    "`in.<project_id>.<collection>` and stored by the ingest worker; the response means Kafka "
    "has it (acks=all). An event the ingest worker would reject from its bytes alone (not "
    "UTF-8 or JSON, not an object, too large, an invalid collection or property name, nesting "
    "over 32 levels, `keen` holding more than `timestamp` and `addons`, a `keen.timestamp` "
    "that is not ISO-8601, a malformed `keen.addons` list) is refused at once with the "
    "worker's `error_code`, Keen's error `name` and the `error_id` of its error row; it is "
    "recorded as any rejection (error row, problem, webhook, DLQ record).",
    status_code=201,
    response_model=Created,
    responses={**error_responses(*KEY_ERRORS, 413), 400: {"model": ErrorBody}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}, "example": _EVENT_EXAMPLE}
            },
        }
    },
)
async def add_event(request: Request, collection: str, ctx: _IngestDep) -> Any:
    raw = await read_capped(request, ctx.settings.http_max_body_bytes)
    rejection = check_event(ctx.caller.project_id, collection, raw)
    if rejection is not None:
        return JSONResponse(status_code=400, content=await _refuse(ctx, collection, raw, rejection))
    # The original bytes go to Kafka unchanged: the worker decodes them as it does Kafka's.
    await ctx.producer.send(
        inbound_topic(ctx.caller.project_id, collection), raw, headers=_headers(ctx.caller)
    )
    EVENTS_PRODUCED.inc()
    return {"created": True}


@router.post(
    "/3.0/projects/{project_id}/events",
    summary="Record events of several collections",
    description="Body: `{collection: [event, ...], ...}`. Answers, per collection and in input "
    "order, `{success: true}` or `{success: false, error: {name, description, error_code, "
    "error_id}}`: each event is checked as a single event is, and refused events are "
    "recorded like any rejection.",
    response_model=dict[str, list[ItemResult]],
    # Keen's answer for a stored event is exactly {"success": true}: no "error": null.
    response_model_exclude_none=True,
    responses=error_responses(*KEY_ERRORS, 413),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": {"type": "array", "items": {}},
                    },
                    "example": {"purchases": [_EVENT_EXAMPLE], "signups": [{"plan": "free"}]},
                }
            },
        }
    },
)
async def add_events(
    request: Request,
    ctx: _IngestDep,
) -> Any:
    raw = await read_capped(request, ctx.settings.http_max_body_bytes)
    try:
        batch = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "InvalidEventError", f"The body is not JSON: {exc}") from exc
    if not isinstance(batch, dict) or not all(isinstance(v, list) for v in batch.values()):
        raise ApiError(
            400, "InvalidEventError", "The body is an object of collection names to event lists."
        )
    limit = ctx.settings.http_max_collections_per_request
    if len(batch) > limit:
        # Every new name is a new topic: refused before anything is produced, so nothing of
        # the batch is half-done and a retry of a smaller batch is safe.
        raise ApiError(
            400,
            "TooManyCollectionsError",
            f"The batch names {len(batch)} collections; send at most {limit} per request.",
        )
    events_limit = ctx.settings.http_max_events_per_request
    total = sum(len(events) for events in batch.values())
    if total > events_limit:
        # Each refused event is recorded on its own: bounded here, before any of that work.
        raise ApiError(
            400,
            "TooManyEventsError",
            f"The batch holds {total} events; send at most {events_limit} per request "
            "(INBOUND_HTTP_MAX_EVENTS_PER_REQUEST).",
        )
    caller, producer = ctx.caller, ctx.producer
    results: dict[str, list[dict | None]] = {}
    sends: list[tuple[str, int, Any]] = []
    for collection, events in batch.items():
        slots: list[dict | None] = [None] * len(events)
        results[collection] = slots
        for i, event in enumerate(events):
            payload = orjson.dumps(event)
            rejection = check_event(caller.project_id, collection, payload)
            if rejection is not None:
                body = await _refuse(ctx, collection, payload, rejection)
                slots[i] = {
                    "success": False,
                    "error": {
                        "name": keen_name(rejection.code),
                        "description": rejection.message,
                        "error_code": rejection.code,
                        "error_id": body["error_id"],
                    },
                }
                continue
            sends.append(
                (
                    collection,
                    i,
                    producer.send(
                        inbound_topic(caller.project_id, collection),
                        payload,
                        headers=_headers(caller),
                    ),
                )
            )
    # Send concurrently; a failed send fails the request (503) so the client retries it.
    outcomes = await asyncio.gather(*(s[2] for s in sends), return_exceptions=True)
    for (collection, i, _), outcome in zip(sends, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            raise (
                outcome
                if isinstance(outcome, ApiError)
                else ApiError(503, "ServiceUnavailableError", "Kafka is unavailable; retry later.")
            )
        results[collection][i] = {"success": True}
        EVENTS_PRODUCED.inc()
    return results
