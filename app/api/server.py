"""`inbound api`: serve the FastAPI app with uvicorn."""

from __future__ import annotations

import logging
import socket

import uvicorn

from app import logs
from app.api import access_log
from app.api.app import create_app
from app.gc_tuning import tune_garbage_collector
from app.settings import Settings

log = logging.getLogger("inbound.api")


class _Server(uvicorn.Server):
    """uvicorn's server, saying in Inbound's log (and to `inbound up`) when it serves."""

    def __init__(self, config: uvicorn.Config, settings: Settings) -> None:
        super().__init__(config)
        self.settings = settings

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            # Routes, models and the GeoIP reader are loaded now: keep them out of collection.
            tune_garbage_collector()
            base = f"http://{self.settings.api_host}:{self.settings.api_port}"
            log.info("API ready on %s (docs at %s/docs)", base, base)
            logs.ready("api")


def run_api(settings: Settings) -> None:
    logs.setup_from_settings("api", settings)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        # app.logs configured logging; uvicorn's loggers propagate to its handler.
        log_config=None,
        access_log=settings.api_access_log,
    )
    own = logs.parse_level(settings.log_level)
    logging.getLogger("uvicorn.error").setLevel(logs.third_party_level(own))
    # The access log is Inbound's own record of requests: INFO when on.
    logging.getLogger("uvicorn.access").setLevel(
        own if settings.api_access_log else logs.third_party_level(own)
    )
    # The access log never shows a key.
    access_log.install()
    _Server(config, settings).run()
