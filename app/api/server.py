"""`inbound api`: serve the FastAPI app with uvicorn."""

from __future__ import annotations

import uvicorn

from app.api import access_log
from app.api.app import create_app
from app.settings import Settings


def run_api(settings: Settings) -> None:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
    )
    # After uvicorn configured its loggers: the access log never shows a key.
    access_log.install()
    uvicorn.Server(config).run()
