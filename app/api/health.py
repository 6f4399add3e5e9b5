"""Liveness of the API's dependencies, and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from app.api.deps import ProducerDep, SessionsDep
from app.api.schemas.health import Health

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    summary="Database and Kafka reachability",
    response_model=Health,
    responses={503: {"model": Health, "description": "A dependency is unreachable."}},
)
async def healthz(sessions: SessionsDep, producer: ProducerDep) -> Any:
    def _db() -> bool:
        try:
            with sessions() as session:
                session.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    db_ok, kafka_ok = await asyncio.gather(
        run_in_threadpool(_db),
        producer.ping() if producer.configured else asyncio.sleep(0, result=None),
    )
    kafka = "not_configured" if kafka_ok is None else ("ok" if kafka_ok else "unavailable")
    healthy = db_ok and kafka != "unavailable"
    body = {
        "status": "ok" if healthy else "degraded",
        "database": "ok" if db_ok else "unavailable",
        "kafka": kafka,
    }
    return JSONResponse(status_code=200 if healthy else 503, content=body)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"example": "inbound_api_requests_total 1.0"}}}},
)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
