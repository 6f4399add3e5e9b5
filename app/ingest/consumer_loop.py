"""The ingest loop: batches from every `in.*` topic, through the pipeline, to the store or the DLQ.

faust's per-message agent machinery costs about twelve times a bare consumer's throughput
(shared/faust-notes.md §6) and its pattern subscription subscribes to nothing, so the inbound
topics are read here by an aiokafka consumer that really uses pattern subscription, one
batch at a time; faust hosts it as a service of the worker app.

Guarantees: offsets are committed only after every record of the batch is stored, or
dead-lettered (acked by the broker) and recorded; any infrastructure failure pauses the
batch, retries it with backoff and marks the worker unhealthy, and rejects nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from app.contract.topics import INBOUND_PATTERN, inbound_parts
from app.gc_tuning import tune_garbage_collector
from app.ingest import metrics
from app.ingest.addons import AddonRegistry
from app.ingest.breaker import CircuitBreaker
from app.ingest.dlq_writer import DlqWriter
from app.ingest.lag import StallTracker
from app.ingest.lookup import DbLookup
from app.ingest.pause import PauseStore
from app.ingest.persist import BatchOutcome, BatchWriter
from app.ingest.records import RawRecord
from app.ingest.router import Batch, BatchRouter, Routed, wanted
from app.kafka.client_options import KafkaClientOptions
from app.settings import Settings

log = logging.getLogger("inbound.worker")

GROUP_ID = "inbound-ingest"
# Enough for the largest record the broker accepts, per partition and fetch.
MAX_PARTITION_FETCH = 2 * 1024 * 1024


class _Listener(ConsumerRebalanceListener):
    def __init__(self, loop: IngestLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Let the batch being written finish and commit before the partitions move.
        await self._loop.drain()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("assigned %d inbound partitions", len(assigned))
        # Another worker may have committed these meanwhile: ask the coordinator again.
        for tp in assigned:
            self._loop._committed.pop(tp, None)
        self._loop.apply_pauses_soon()


@dataclass
class _Batch:
    started: float
    routed: Routed
    outcome: BatchOutcome


class IngestLoop:
    def __init__(self, settings: Settings, engine: Engine, kafka: KafkaClientOptions) -> None:
        self.settings = settings
        self.kafka = kafka
        self.engine = engine
        self._in_flight: asyncio.Task | None = None
        self.healthy = True
        self.last_error: str | None = None
        sessions = sessionmaker(engine, expire_on_commit=False)
        self.lookup = DbLookup(sessions, ttl_seconds=settings.worker_key_cache_seconds)
        self.writer = BatchWriter(
            engine, settings.error_payload_cap, settings.problems_max_per_project
        )
        # Project options (the breaker ratio) are read again as often as keys and projects.
        self.pauses = PauseStore(sessions, ttl_seconds=settings.worker_key_cache_seconds)
        self.addons = AddonRegistry(settings.geoip_database)
        self.breaker = CircuitBreaker(settings.dlq_pause_ratio, settings.dlq_pause_min_events)
        self.dlq = DlqWriter(kafka, settings.dlq_replicas)
        self.router = BatchRouter(self.lookup, self.addons, self.breaker, self.pauses.ratio_for)
        self.consumer: AIOKafkaConsumer | None = None
        self._paused_by_us: set[TopicPartition] = set()
        # Paused in memory but not yet in the database: the refresher must not resume these.
        self._unrecorded_pauses: set[TopicPartition] = set()
        self._pause_version = 0
        self._pauses_dirty = asyncio.Event()
        self._stopping = asyncio.Event()
        self.stall = StallTracker(settings.worker_stall_seconds)
        # What this worker committed, so lag needs the broker only for the log end offsets.
        self._committed: dict[TopicPartition, int] = {}

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(
            **self.kafka.aiokafka(),
            group_id=self.settings.worker_group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # The default is five minutes; a new collection must be queryable in seconds.
            metadata_max_age_ms=self.settings.worker_metadata_max_age_ms,
            max_partition_fetch_bytes=MAX_PARTITION_FETCH,
            fetch_max_bytes=64 * 1024 * 1024,
            fetch_max_wait_ms=self.settings.worker_batch_ms,
            max_poll_records=self.settings.worker_batch_size,
            # A batch retried through a database outage must not cost the partitions.
            max_poll_interval_ms=24 * 3600 * 1000,
        )
        await self.dlq.start()
        await self.consumer.start()
        self.consumer.subscribe(pattern=INBOUND_PATTERN, listener=_Listener(self))
        tune_garbage_collector()

    async def stop(self) -> None:
        self._stopping.set()
        await self.drain()
        if self.consumer:
            await self.consumer.stop()
        await self.dlq.stop()

    def apply_pauses_soon(self) -> None:
        self._pauses_dirty.set()

    def invalidate_caches(self) -> None:
        """Read keys, projects and project options from the database again from the next batch
        on (a revoked key, a deactivated project, a changed option)."""
        self.lookup.clear()
        self.pauses.clear()

    # -- main loop -------------------------------------------------------------------------
    async def run(self) -> None:
        """Fetch and process batch N+1 while batch N is written (the database releases the
        GIL while it works); batches are written and committed strictly in order."""
        assert self.consumer is not None
        pause_task = asyncio.create_task(self._pause_refresher())
        lag_task = asyncio.create_task(self._lag_refresher())
        try:
            while not self._stopping.is_set():
                fetched = await self.consumer.getmany(
                    timeout_ms=self.settings.worker_batch_ms,
                    max_records=self.settings.worker_batch_size,
                )
                if self._stopping.is_set():
                    break
                batch = await self._prepare(fetched) if fetched else None
                await self.drain()
                if batch is not None:
                    self._in_flight = asyncio.create_task(self._finish(batch))
            await self.drain()
        finally:
            pause_task.cancel()
            lag_task.cancel()

    async def drain(self) -> None:
        """Wait until the batch being written is stored and committed."""
        task, self._in_flight = self._in_flight, None
        if task is not None:
            await task

    async def _prepare(self, fetched: dict) -> _Batch:
        """Route every record; nothing is written yet."""
        assert self.consumer is not None
        started = time.perf_counter()
        # A snapshot: a pause the refresher applies during the look-ups waits for the next batch.
        paused = frozenset(self._paused_by_us)
        batch = {tp: [_raw(m) for m in msgs] for tp, msgs in fetched.items()}
        await self._retrying("lookup", self._prefetch, batch, paused)
        routed = self.router.route(batch, datetime.now(UTC), paused)
        for trip in routed.trips:
            # Pausing now keeps the next fetch from handing the tripped records over again.
            self.consumer.pause(trip.tp)
            self.consumer.seek(trip.tp, trip.offset)
            self._paused_by_us.add(trip.tp)
            self._unrecorded_pauses.add(trip.tp)
            self._pause_version += 1
        outcome = BatchOutcome(
            accepted=routed.accepted,
            rejected=routed.rejected,
            replay_outcomes=routed.replay_outcomes,
        )
        return _Batch(started, routed, outcome)

    async def _finish(self, batch: _Batch) -> None:
        """Dead-letter, store, record pauses, then commit: retried until it succeeds."""
        outcome = batch.outcome

        async def persist() -> None:
            if outcome.rejected and not outcome.dlq_coordinates:
                outcome.dlq_coordinates = await self.dlq.write(outcome.rejected)
            await asyncio.to_thread(self.writer.write, outcome)

        await self._retrying("persist", persist)
        for trip in batch.routed.trips:
            await self._retrying("pause", self._record_pause, trip.tp, trip.last_code, trip.offset)
            self._unrecorded_pauses.discard(trip.tp)
        await self._commit(batch.routed.commit)
        metrics.ACCEPTED.inc(len(outcome.accepted))
        codes = Counter(letter.rejection.code for letter in outcome.rejected)
        for code, n in codes.items():
            metrics.REJECTED.labels(code).inc(n)
        # One line per rejection only at DEBUG: building them costs at every rejected record.
        for letter in outcome.rejected if log.isEnabledFor(logging.DEBUG) else ():
            log.debug(
                "rejected topic=%s partition=%d offset=%d code=%s error_id=%s",
                letter.source_topic,
                letter.source_partition,
                letter.source_offset,
                letter.rejection.code,
                letter.error_id,
                extra={
                    "project_id": letter.project_id,
                    "collection": letter.collection,
                    "topic": letter.source_topic,
                    "partition": letter.source_partition,
                    "offset": letter.source_offset,
                    "error_id": letter.error_id,
                    "code": letter.rejection.code,
                },
            )
        size = batch.routed.size
        if outcome.rejected:
            log.info(
                "batch of %d: %d stored, %d dead-lettered (%s)",
                size,
                len(outcome.accepted),
                len(outcome.rejected),
                ", ".join(f"{c}={n}" for c, n in codes.most_common()),
                extra={
                    "batch_size": size,
                    "stored": len(outcome.accepted),
                    "dead_lettered": len(outcome.rejected),
                    "codes": dict(codes),
                    "project_ids": sorted({r.project_id for r in outcome.rejected}),
                    "collections": sorted({r.collection for r in outcome.rejected}),
                },
            )
        metrics.BATCH_SIZE.observe(size)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - batch.started)

    async def _prefetch(self, batch: Batch, paused: frozenset[TopicPartition]) -> None:
        projects, keys = wanted(batch, paused)
        await asyncio.to_thread(self.lookup.prefetch, projects, keys)
        await asyncio.to_thread(self.pauses.prefetch_options, projects)

    async def _record_pause(self, tp: TopicPartition, code: str, offset: int) -> None:
        project_id, collection = inbound_parts(tp.topic)
        reason = (
            f"more than {self.pauses.ratio_for(project_id) or self.breaker.ratio:.0%} of the last "
            f"{self.breaker.min_events} events were rejected (last: {code}); fix the producer, "
            "then resume the stream"
        )
        await asyncio.to_thread(
            self.pauses.pause, project_id, collection, tp.topic, tp.partition, offset, reason
        )
        metrics.PAUSED_PARTITIONS.set(len(self._paused_by_us))
        log.warning(
            "DLQ circuit breaker paused %s[%d] at offset %d",
            tp.topic,
            tp.partition,
            offset,
            extra={
                "project_id": project_id,
                "collection": collection,
                "topic": tp.topic,
                "partition": tp.partition,
                "offset": offset,
                "code": code,
            },
        )

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        assert self.consumer is not None
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
            self._committed.update(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # A rebalance took the partitions: the next owner re-reads the batch and the
            # deterministic ids make that harmless.
            log.warning("offset commit skipped after rebalance: %s", exc)

    async def _retrying(self, cause: str, func, *args) -> None:  # noqa: ANN001
        delay = 0.2
        while True:
            try:
                await func(*args)
                if not self.healthy:
                    log.info("%s recovered; catching up", cause)
                self.healthy = True
                self.last_error = None
                metrics.HEALTHY.set(1)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - an outage must not reject or lose events
                self.healthy = False
                self.last_error = f"{cause}: {type(exc).__name__}: {exc}"
                metrics.HEALTHY.set(0)
                metrics.INFRA_RETRIES.labels(cause).inc()
                log.warning(
                    "%s failed (%s); retrying in %.1fs, nothing committed",
                    cause,
                    self.last_error,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _pause_refresher(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._pauses_dirty.wait(), timeout=2.0)
            except TimeoutError:
                pass
            self._pauses_dirty.clear()
            try:
                await self._apply_pauses()
            except Exception as exc:  # noqa: BLE001 - retried on the next tick
                log.warning("could not refresh paused streams: %s", exc)

    async def _apply_pauses(self) -> None:
        assert self.consumer is not None
        version = self._pause_version
        paused = await asyncio.to_thread(self.pauses.active)
        if version != self._pause_version:
            return  # a pause happened meanwhile; this snapshot may predate it
        assignment = self.consumer.assignment()
        for tp in assignment:
            key = (tp.topic, tp.partition)
            if key in paused and tp not in self._paused_by_us:
                self.consumer.pause(tp)
                self._paused_by_us.add(tp)
            elif (
                key not in paused and tp in self._paused_by_us and tp not in self._unrecorded_pauses
            ):
                self.consumer.resume(tp)
                self._paused_by_us.discard(tp)
                self.breaker.reset(key)
                log.info("resumed %s[%d]", tp.topic, tp.partition)
        self._paused_by_us &= assignment
        metrics.PAUSED_PARTITIONS.set(len(self._paused_by_us))

    async def _lag_refresher(self) -> None:
        interval = max(0.5, min(5.0, self.settings.worker_stall_seconds / 4))
        while True:
            try:
                await self.refresh_lag()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - measured again on the next tick
                log.debug("could not measure consumer lag: %s", exc)
            await asyncio.sleep(interval)

    async def refresh_lag(self) -> None:
        """Lag from the log end offsets and the committed offsets of the assigned partitions,
        whatever the batch loop is doing; then which partitions are stalled."""
        assert self.consumer is not None
        assignment = list(self.consumer.assignment())
        self._committed = {tp: o for tp, o in self._committed.items() if tp in assignment}
        if not assignment:
            ends: dict = {}
        else:
            ends = await self.consumer.end_offsets(assignment)
        unknown = [tp for tp in assignment if tp not in self._committed]
        if unknown:
            # Not committed by this worker yet: the group's offsets, asked once per assignment
            # in one OffsetFetch (``committed()`` asks for one partition per request; there
            # may be thousands). -1: the group never committed the partition.
            found = await self.consumer._coordinator.fetch_committed_offsets(unknown)
            for tp in unknown:
                meta = found.get(tp)
                self._committed[tp] = -1 if meta is None or meta.offset is None else meta.offset
        committed = {tp: self._committed[tp] for tp in assignment}
        missing = [tp for tp, offset in committed.items() if offset < 0]
        starts = await self.consumer.beginning_offsets(missing) if missing else {}
        lag = self.stall.observe(time.monotonic(), ends, committed, starts)
        metrics.CONSUMER_LAG.set(lag)
        metrics.STALLED_PARTITIONS.set(len(self.stalled()))

    def stalled(self) -> list[dict]:
        """Partitions behind whose committed offset has not moved for the stall threshold."""
        now = time.monotonic()
        return [
            {
                "topic": tp.topic,
                "partition": tp.partition,
                "offset": state.committed,
                "lag": state.lag,
                "seconds": round(now - state.since, 1),
                "last_error": self.last_error,
            }
            for tp, state in self.stall.stalled(now, excluded=self._paused_by_us)
        ]


def _raw(message) -> RawRecord:  # noqa: ANN001 - aiokafka ConsumerRecord
    return RawRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=message.timestamp,
        key=message.key,
        value=message.value,
        headers=tuple(message.headers or ()),
    )
