"""The FastAPI application factory."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.docs_assets import install_docs
from app.api.metrics import HTTP_LATENCY, HTTP_REQUESTS
from app.api.problems import ApiError
from app.api.producer import KafkaProducerHolder
from app.api.replay_limit import ReplayLimiter
from app.kafka.client_options import kafka_options
from app.settings import Settings, get_settings
from app.store.db import engine_for, session_factory

log = logging.getLogger(__name__)

DESCRIPTION = """Kafka inbound ingest for event analytics (Keen-compatible), with a real
dead-letter queue and error reporting.

Project keys go in the `Authorization` header (or the `api_key` query parameter); support
staff use `Authorization: Bearer <INBOUND_ADMIN_TOKEN>` on `/admin/...`. Every error has the
body `{"error_code": ..., "message": ...}`: 401 for a missing or unknown key, 403 for a key of
another project or without the permission."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    producer = KafkaProducerHolder(kafka_options(settings))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await producer.start()
        try:
            yield
        finally:
            await producer.stop()

    app = FastAPI(
        title="Inbound",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's own pages load their assets from a CDN: install_docs serves /docs offline
        # (and says why /redoc is off).
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app)
    app.state.settings = settings
    app.state.session_factory = session_factory(engine_for(settings.effective_database_url))
    app.state.producer = producer
    app.state.replay_limiter = ReplayLimiter(settings.replay_rate_per_second, settings.replay_burst)

    from app.api.console.mount import console_error, install_console
    from app.api.console.security import is_console

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        if is_console(request.url.path):  # the console's pages answer with a page
            return console_error(request, exc.status_code, exc.detail["message"])
        return JSONResponse(status_code=exc.status_code, content=exc.detail, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if is_console(request.url.path):
            return console_error(request, exc.status_code, str(exc.detail))
        # Routing errors (unknown path, wrong method) in the one error shape too.
        code = {404: "ResourceNotFoundError", 405: "MethodNotAllowedError"}.get(
            exc.status_code, "HttpError"
        )
        return JSONResponse(
            status_code=exc.status_code,
            content={"error_code": code, "message": str(exc.detail)},
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        # Keen answers a bad request with 400, not FastAPI's 422.
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
        if is_console(request.url.path):
            return console_error(request, 400, message)
        return JSONResponse(
            status_code=400, content={"error_code": "InvalidParameterError", "message": message}
        )

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> Response:
        # A bug or an unexpected failure: still the one JSON error shape, never plain text.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        if is_console(request.url.path):
            return console_error(request, 500, "An internal error occurred; it has been logged.")
        return JSONResponse(
            status_code=500,
            content={
                "error_code": "InternalServerError",
                "message": "An internal error occurred; it has been logged.",
            },
        )

    @app.middleware("http")
    async def _measure(request: Request, call_next):  # noqa: ANN001, ANN202 - Starlette hook
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        HTTP_REQUESTS.labels(template, request.method, str(response.status_code)).inc()
        HTTP_LATENCY.labels(template).observe(time.perf_counter() - started)
        return response

    from app.api import (
        health,
        routes_admin,
        routes_collections,
        routes_errors,
        routes_fixes,
        routes_keys,
        routes_problems,
        routes_queries,
        routes_stream,
        routes_webhooks,
    )

    app.include_router(routes_stream.router)
    app.include_router(routes_collections.router)
    app.include_router(routes_queries.router)
    app.include_router(routes_errors.router)
    app.include_router(routes_fixes.router)
    app.include_router(routes_problems.router)
    app.include_router(routes_keys.router)
    app.include_router(routes_admin.router)
    app.include_router(health.router)
    app.include_router(routes_webhooks.router)
    # The error console (/console): server-rendered pages over the same view functions.
    install_console(app, settings)
    _document_errors(app)
    return app


def _document_errors(app: FastAPI) -> None:
    """Make the document say what the app does with errors, for routes of every module.

    Validation failures are answered 400 (not FastAPI's 422) in the one error shape, and every
    key- or token-authenticated route can answer 401/403: patched in once here, so no router
    can forget it and schemathesis holds every route to it.
    """
    from fastapi.openapi.utils import get_openapi

    from app.api.problems import ErrorBody, error_responses

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault(
            "ErrorBody", ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        ref = {"$ref": "#/components/schemas/ErrorBody"}
        for path, item in spec.get("paths", {}).items():
            for op in item.values():
                responses = op.setdefault("responses", {})
                responses.pop("422", None)
                needed = [400]
                if path.startswith("/3.0/projects/"):
                    needed += [401, 403, 503]
                elif path.startswith("/admin/"):
                    needed += [401, 404, 503]
                if path.replace("{project_id}", "").count("{"):
                    needed.append(404)  # a named resource may not exist (in this project)
                for status, entry in error_responses(*needed).items():
                    if str(status) not in responses:
                        responses[str(status)] = {
                            "description": entry["description"],
                            "content": {
                                "application/json": {
                                    "schema": ref,
                                    "example": entry["content"]["application/json"]["example"],
                                }
                            },
                        }
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
