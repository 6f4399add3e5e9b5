"""The soak's exact reconciliation: what the producers' brokers acknowledged against what
Inbound stored, rejected, dead-lettered and notified.

- every acknowledged record is exactly one stored event, or exactly one error row whose
  ``inbound.error.id`` is on at least one DLQ record (DLQ topics are at-least-once by design:
  copies with the same error id are counted apart, as ``dlq_redelivered``);
- a record whose delivery failed may be missing, but never stored twice;
- every error row is in exactly one ``ingest.failed`` delivery: the ``total`` of the distinct
  webhook-ids received adds up to the error rows, and a webhook-id received more than once
  (a retry after a dispatcher kill) always carries the same body.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import select

from app.store.db import engine_for
from app.store.models import Event, IngestError, Notification

SOAK_ID = re.compile(rb'"soak_id":\s*"([^"]+)"')


@dataclass
class Reconciled:
    acked: int = 0
    stored: int = 0
    rejected: int = 0
    dlq: int = 0
    dlq_redelivered: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    no_dlq: list[str] = field(default_factory=list)
    failed_delivery: int = 0
    failed_but_stored: int = 0
    webhook_errors_notified: int = 0
    webhook_deliveries: int = 0
    webhook_redelivered: int = 0
    webhook_conflicts: list[str] = field(default_factory=list)
    notifications_undispatched: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.problems)


def _soak_id(value: bytes | None) -> str | None:
    found = SOAK_ID.search(value or b"")
    return found.group(1).decode() if found else None


def stored_ids(database_url: str, project_id: str) -> tuple[Counter, Counter, dict[str, str]]:
    """Soak ids of stored events, of error rows, and each error row's id by soak id."""
    engine = engine_for(database_url)
    events: Counter = Counter()
    errors: Counter = Counter()
    error_of: dict[str, str] = {}
    with engine.connect() as conn:
        for (body,) in conn.execute(
            select(Event.body).where(Event.project_id == project_id)
        ).yield_per(5000):
            events[(body or {}).get("soak_id")] += 1
        for error_id, payload in conn.execute(
            select(IngestError.id, IngestError.payload).where(IngestError.project_id == project_id)
        ).yield_per(5000):
            soak_id = _soak_id(payload)
            errors[soak_id] += 1
            if soak_id:
                error_of[soak_id] = error_id
    return events, errors, error_of


def undispatched(database_url: str, project_id: str) -> int:
    with engine_for(database_url).connect() as conn:
        return len(
            conn.execute(
                select(Notification.id).where(
                    Notification.project_id == project_id, Notification.dispatched_at.is_(None)
                )
            ).all()
        )


async def dlq_records(kafka: dict, topics: list[str]) -> list[tuple[str | None, str | None]]:
    """(inbound.error.id, soak id) of every record on these DLQ topics, read to their ends."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        described = await admin.describe_topics([t for t in topics if t in existing])
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(enable_auto_commit=False, group_id=None, **kafka)
    await consumer.start()
    out: list[tuple[str | None, str | None]] = []
    try:
        parts = [
            TopicPartition(topic["topic"], part["partition"])
            for topic in described
            for part in topic["partitions"]
        ]
        if not parts:
            return out
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        remaining = {tp for tp in parts if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=2000)
            for tp, records in batch.items():
                for record in records:
                    headers = dict(record.headers or [])
                    error_id = headers.get("inbound.error.id")
                    out.append((error_id.decode() if error_id else None, _soak_id(record.value)))
                    if record.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
            if not batch:
                positions = {tp: await consumer.position(tp) for tp in remaining}
                remaining = {tp for tp in remaining if positions[tp] < ends[tp]}
    finally:
        await consumer.stop()
    return out


def webhook_totals(deliveries: list[tuple[str, bytes]]) -> tuple[int, int, int, list[str]]:
    """(errors notified, distinct deliveries, redelivered copies, conflicting webhook-ids)."""
    bodies: dict[str, set[bytes]] = defaultdict(set)
    copies = Counter()
    for webhook_id, body in deliveries:
        bodies[webhook_id].add(body)
        copies[webhook_id] += 1
    total = 0
    for bodies_of in bodies.values():
        envelope = orjson.loads(next(iter(bodies_of)))
        if envelope.get("type") == "ingest.failed":
            total += int(envelope["data"]["total"])
    conflicts = sorted(w for w, b in bodies.items() if len(b) > 1)
    return total, len(bodies), sum(c - 1 for c in copies.values()), conflicts


def reconcile(
    *,
    acked: set[str],
    failed: set[str],
    database_url: str,
    project_id: str,
    kafka: dict,
    dlq_topics: list[str],
    deliveries: list[tuple[str, bytes]],
) -> Reconciled:
    out = Reconciled(acked=len(acked), failed_delivery=len(failed))
    events, errors, error_of = stored_ids(database_url, project_id)
    out.stored = sum(n for soak_id, n in events.items() if soak_id)
    out.rejected = sum(n for soak_id, n in errors.items() if soak_id)
    if None in events or None in errors:
        out.problems.append(f"rows without a soak_id: {events[None]} events, {errors[None]} errors")
    dead = asyncio.run(dlq_records(kafka, dlq_topics))
    by_error = Counter(error_id for error_id, _ in dead)
    out.dlq = len(by_error)
    out.dlq_redelivered = sum(n - 1 for n in by_error.values())
    for soak_id in acked | failed:
        places = events[soak_id] + errors[soak_id]
        if places > 1:
            out.duplicated.append(soak_id)
        elif places == 0 and soak_id in acked:
            out.lost.append(soak_id)
        elif places == 1 and soak_id in failed:
            out.failed_but_stored += 1
        if errors[soak_id] == 1 and by_error[error_of[soak_id]] == 0:
            out.no_dlq.append(soak_id)
    unknown = set(events) | set(errors)
    unknown -= acked | failed | {None}
    if unknown:
        out.problems.append(f"{len(unknown)} stored soak ids no producer sent")
    if out.no_dlq:
        out.problems.append(f"{len(out.no_dlq)} error rows without a DLQ record")
    notified, distinct, redelivered, conflicts = webhook_totals(deliveries)
    out.webhook_errors_notified, out.webhook_deliveries = notified, distinct
    out.webhook_redelivered, out.webhook_conflicts = redelivered, conflicts
    if conflicts:
        out.problems.append(f"{len(conflicts)} webhook-ids delivered as different notifications")
    all_errors = sum(errors.values())
    if notified != all_errors:
        out.problems.append(
            f"ingest.failed deliveries count {notified} errors; the error table has {all_errors}"
        )
    out.notifications_undispatched = undispatched(database_url, project_id)
    return out
