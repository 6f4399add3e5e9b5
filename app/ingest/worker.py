"""`inbound worker`: the faust-streaming app that hosts the ingest loop.

The app runs three things: the ingest loop (a service: pattern-subscribed, batched; see
consumer_loop.py for why it is not a per-message agent), a reader of the `inbound.control`
topic (resume a paused stream or drop cached keys right away, instead of at the next poll;
each worker reads every command, see control_listener.py), and a small web server with
/metrics (Prometheus) and /healthz.
"""

from __future__ import annotations

import asyncio
import logging

import faust
import mode
from faust.app.base import BootStrategy
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app import logs
from app.ingest.consumer_loop import IngestLoop
from app.ingest.control_listener import ControlListener, run_forever
from app.kafka.client_options import KafkaConfigError, kafka_options
from app.kafka.connect_check import BackendUnavailable, check_backend_sync
from app.settings import Settings
from app.store.db import make_engine
from app.store.problem_lifecycle import resolve_quiet_problems

log = logging.getLogger("inbound.worker")
# How often the worker looks for problems to resolve after their quiet time.
QUIET_CHECK_SECONDS = 60.0


class _NoFaustKafka(BootStrategy):
    """faust hosts the services, timer and web pages but reads and writes no topic itself:
    the ingest loop and the control listener have their own clients (and faust's consumer
    refuses to start with nothing to subscribe to)."""

    enable_kafka = False


class _App(faust.App):
    BootStrategy = _NoFaustKafka
    # mode names a service's logger after the module its class is in, which would make
    # faust's own start/stop lines Inbound's (INFO); they stay faust's (WARNING).
    logger = logging.getLogger("faust.inbound.App")


def build_app(settings: Settings) -> faust.App:
    if not settings.kafka_bootstrap:
        # Logged, so it is a JSON line like the rest with INBOUND_LOG_FORMAT=json.
        log.error(
            "INBOUND_KAFKA_BOOTSTRAP is not set; start Kafka with `inbound kafka start` "
            "and export the address it prints, or use `inbound up`"
        )
        raise SystemExit(1)
    try:
        kafka = kafka_options(settings)
        assert kafka is not None
        check_backend_sync(kafka)
    except KafkaConfigError as exc:
        log.error("backend Kafka settings: %s", exc)
        raise SystemExit(1) from None
    except BackendUnavailable as exc:
        if exc.permanent:
            # Retrying cannot fix a wrong password or CA: say so once and stop.
            log.error("cannot use the backend Kafka: %s", exc)
            raise SystemExit(1) from None
        log.warning("backend Kafka not reachable yet (%s); the worker keeps trying", exc)
    engine = make_engine(settings.effective_database_url)
    brokers = [f"kafka://{hostport}" for hostport in settings.kafka_bootstrap.split(",")]
    app = _App(
        "inbound-worker",
        broker=brokers,
        broker_credentials=kafka.faust_credentials(),
        store="memory://",
        # faust keeps its own state in `<app id>-data` under the working directory by default.
        datadir=str(settings.data_dir / "faust"),
        web_enabled=settings.worker_metrics_port > 0,
        web_port=settings.worker_metrics_port or 6066,
        web_bind="127.0.0.1",
        topic_disable_leader=True,
        topic_replication_factor=settings.dlq_replicas,
        topic_partitions=1,
        consumer_metadata_max_age_ms=settings.worker_metadata_max_age_ms,
        logging_config=None,
    )
    loop = IngestLoop(settings, engine, kafka)

    def on_command(command: dict) -> None:
        kind = command.get("type")
        if kind == "resume":
            loop.apply_pauses_soon()
        elif kind in ("invalidate_keys", "invalidate_projects"):
            loop.invalidate_caches()
        else:
            log.info("ignored an unknown control command %r", kind)

    listener = ControlListener(kafka, settings.dlq_replicas, on_command)

    class IngestService(mode.Service):
        """Runs the ingest loop for as long as the worker lives."""

        # mode logs each service's start and stop at INFO: with faust's, not as ours.
        logger = logging.getLogger("mode.inbound.IngestService")

        async def on_start(self) -> None:
            await loop.start()
            self.add_future(loop.run())

        async def on_stop(self) -> None:
            await loop.stop()

    class ControlService(mode.Service):
        """Every control command, on every worker (not one worker of a consumer group)."""

        logger = logging.getLogger("mode.inbound.ControlService")

        async def on_start(self) -> None:
            await listener.start()
            self.add_future(run_forever(listener))

        async def on_stop(self) -> None:
            await listener.stop()

    app.service(IngestService)
    app.service(ControlService)

    @app.timer(interval=QUIET_CHECK_SECONDS)
    async def resolve_quiet() -> None:
        # Problems quiet for their project's resolve_after_quiet_hours resolve by themselves.
        try:
            done = await asyncio.to_thread(
                resolve_quiet_problems, engine, settings.problem_resolve_after_quiet_hours
            )
        except Exception:  # the database may be away; the next tick tries again
            log.warning("could not resolve quiet problems", exc_info=True)
            return
        if done:
            log.info("resolved %d problems quiet for their resolve_after_quiet_hours", done)

    @app.page("/metrics")
    async def metrics_page(web, request):  # noqa: ANN001, ANN202 - faust view signature
        # aiohttp refuses a charset inside content_type=, so the header is set whole.
        return web.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/healthz")
    async def health_page(web, request):  # noqa: ANN001, ANN202 - faust view signature
        stalled = loop.stalled()
        status = "stalled" if stalled else "ok" if loop.healthy else "unhealthy"
        body = {"status": status, "last_error": loop.last_error}
        if stalled:
            body["stalled"] = stalled
        return web.json(body, status=200 if status == "ok" else 503)

    return app


class _Worker(faust.Worker):
    """faust's worker without its banner, spinner or logging set-up; says when it is ready."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        # override_logging=False: app.logs configured logging; faust would replace the
        # handlers with its own format (and redirect stdout into the log).
        super().__init__(app, quiet=True, override_logging=False, redirect_stdouts=False)
        self.spinner = None  # it draws on a terminal; a log line says ready instead
        self.settings = settings

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        port = self.settings.worker_metrics_port
        where = f"; metrics at http://127.0.0.1:{port}/metrics" if port else ""
        kafka = kafka_options(self.settings)
        source = kafka.describe() if kafka else self.settings.kafka_bootstrap
        log.info("worker ready: ingesting in.* from %s%s", source, where)
        logs.ready("worker")


def run_worker(settings: Settings) -> None:
    logs.setup_from_settings("worker", settings)
    app = build_app(settings)
    _Worker(app, settings).execute_from_commandline()
