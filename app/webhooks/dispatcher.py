"""The webhook dispatcher process (`inbound webhooks`): outbox → deliveries → signed POSTs.

Each pass: turn ready notifications into deliveries (one transaction), claim due deliveries
(a lease), send them concurrently, record each outcome. Blocking database work runs in
threads so slow receivers never stall the loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.secret_box import box_for
from app.webhooks.delivery import Job, Limits, Outcome, Policy, claim_due, record_outcome, send
from app.webhooks.outbox import BatchWindows, OutboxRace, dispatch_outbox
from app.webhooks.url_safety import Resolver, delivery_transport

log = logging.getLogger("inbound.webhooks")

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PassResult:
    deliveries_created: int = 0
    attempts: int = 0


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        engine: Engine | None = None,
        clock: Clock = utc_now,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.settings = settings
        self.resolver = resolver  # None: the system's; re-asked at every connection
        self.engine = engine or engine_for(settings.effective_database_url)
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.windows = BatchWindows()
        self.limits = Limits(
            connect_timeout=settings.webhook_connect_timeout,
            read_timeout=settings.webhook_read_timeout,
            response_cap=settings.webhook_response_cap,
        )
        self.policy = Policy(
            disable_after_failures=settings.webhook_disable_after_failures,
            disable_after=timedelta(seconds=settings.webhook_disable_after_seconds),
        )
        self._client: httpx.AsyncClient | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=delivery_transport(self.settings.webhook_allow_private, self.resolver),
                follow_redirects=False,  # a redirect could lead anywhere, private nets too
                timeout=self.limits.timeout(),
            )
        return self._client

    async def aclose(self) -> None:
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- the steps, each its own transaction ------------------------------------------

    def outbox_pass(self) -> int:
        now = self.clock()
        try:
            with session_scope(self.engine) as session:
                return dispatch_outbox(
                    session,
                    now,
                    timedelta(milliseconds=self.settings.webhook_batch_window_ms),
                    self.windows,
                    self.settings.webhook_sample_errors,
                    self.settings.webhook_link_base,
                )
        except OutboxRace as exc:
            log.info("outbox pass rolled back, will retry: %s", exc)
            return 0

    def claim(self, limit: int) -> list[Job]:
        now = self.clock()
        with session_scope(self.engine) as session:
            return claim_due(session, now, limit, self.limits.lease, box_for(self.settings))

    def record(self, job: Job, outcome: Outcome) -> str:
        with session_scope(self.engine) as session:
            return record_outcome(session, job, outcome, self.clock(), self.policy, self.rng)

    async def attempt(self, job: Job) -> None:
        outcome = await send(self.client, job, self.clock(), self.limits)
        status = await asyncio.to_thread(self.record, job, outcome)
        # Only the kind of failure is logged: error texts may quote the URL and its tokens.
        log.info(
            "delivery %s to webhook %s: %s (%s, %d ms) -> %s",
            job.delivery_id,
            job.webhook_id,
            outcome.status_code or "-",
            (outcome.error or ("ok" if outcome.ok else "not 2xx")).split(":", 1)[0],
            outcome.latency_ms,
            status,
        )

    # -- driving ------------------------------------------------------------------------

    async def run_once(self) -> PassResult:
        """One full pass, waiting for its attempts (tests and benchmarks drive this)."""
        created = await asyncio.to_thread(self.outbox_pass)
        jobs = await asyncio.to_thread(self.claim, self.settings.webhook_concurrency)
        await asyncio.gather(*(self.attempt(job) for job in jobs))
        return PassResult(deliveries_created=created, attempts=len(jobs))

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; in-flight attempts are finished before returning."""
        poll = self.settings.webhook_poll_ms / 1000
        backoff = poll
        try:
            while not stop.is_set():
                try:
                    await asyncio.to_thread(self.outbox_pass)
                    free = self.settings.webhook_concurrency - len(self._in_flight)
                    for job in await asyncio.to_thread(self.claim, free):
                        task = asyncio.create_task(self._guarded_attempt(job))
                        self._in_flight.add(task)
                        task.add_done_callback(self._in_flight.discard)
                    backoff = poll
                except SQLAlchemyError as exc:
                    # Database down: nothing is lost (it is all in the database); wait and retry.
                    backoff = min(backoff * 2, 10.0)
                    log.warning("dispatcher database error, retrying in %.1fs: %s", backoff, exc)
                await _wait(stop, backoff, self.sleep)
        finally:
            await self.aclose()

    async def _guarded_attempt(self, job: Job) -> None:
        try:
            await self.attempt(job)
        except Exception:  # noqa: BLE001 - the lease expires and the delivery is retried
            log.exception(
                "delivery %s could not be recorded; retried after its lease", job.delivery_id
            )


async def _wait(stop: asyncio.Event, seconds: float, sleep: Sleep) -> None:
    if sleep is asyncio.sleep:
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            pass
    else:
        await sleep(seconds)


def run_dispatcher(settings: Settings) -> None:
    """Blocking entry point of `inbound webhooks`; SIGTERM/SIGINT stop it cleanly."""
    from app import logs

    logs.setup_from_settings("webhooks", settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info(
            "webhook dispatcher started (poll %d ms, batch window %d ms)",
            settings.webhook_poll_ms,
            settings.webhook_batch_window_ms,
        )
        logs.ready("webhooks")
        await Dispatcher(settings).run_forever(stop)
        log.info("webhook dispatcher stopped")

    asyncio.run(main())
