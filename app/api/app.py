"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.api.problems import ApiError
from app.settings import Settings, get_settings
from app.store.db import engine_for, session_factory


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Inbound",
        version="0.1.0",
        description="Kafka inbound ingest for event analytics, with a real dead-letter queue.",
    )
    app.state.settings = settings
    app.state.session_factory = session_factory(engine_for(settings.effective_database_url))

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content=exc.detail)

    from app.webhooks.routes import router as webhooks_router

    app.include_router(webhooks_router)
    return app
