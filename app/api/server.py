"""`inbound api`: serve the FastAPI app with uvicorn."""

from __future__ import annotations

import uvicorn

from app.api.app import create_app
from app.settings import Settings


def run_api(settings: Settings) -> None:
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
    )
