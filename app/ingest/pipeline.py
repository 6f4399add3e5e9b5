"""The per-event ingest pipeline: one Kafka record in, an accepted event or a rejection out.

Pure: no Kafka, no database, no network. The worker hands each record to `process` with a
`Lookup` it has already filled for the batch, the batch's `now`, and one `AddonRegistry`.
The steps run in this order and the first rejection wins, so an event carries one code:

    size -> decode -> collection -> project/key -> property rules -> keen object
         -> autofill -> add-ons

Each step lives in its own module under `app.ingest.steps`.

`validate` runs the steps that need neither a look-up nor the writing key, so the HTTP API
can refuse an invalid event at once with the code the worker would give it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from app.contract.errors import Rejection
from app.ingest.records import Accepted, Lookup, ProjectInfo, RawRecord
from app.ingest.steps.access import check_access
from app.ingest.steps.addons import check_addons, run_addons
from app.ingest.steps.autofill import apply_autofill
from app.ingest.steps.collection import collection_of
from app.ingest.steps.decode import decode_event
from app.ingest.steps.keen import build_keen, keen_id_for
from app.ingest.steps.properties import check_properties
from app.ingest.steps.size import check_size
from app.store.keys import KeyInfo

if TYPE_CHECKING:
    from app.ingest.addons import AddonRegistry

__all__ = [
    "Accepted",
    "KeyInfo",
    "Lookup",
    "ProjectInfo",
    "RawRecord",
    "Rejection",
    "keen_id_for",
    "process",
    "process_decoded",
    "validate",
]


def process(
    record: RawRecord, lookup: Lookup, now: datetime, addons: AddonRegistry
) -> Accepted | Rejection:
    """Run every step on one record; never raises on hostile input."""
    rejection = check_size(record.value)
    if rejection is not None:
        return rejection

    event = decode_event(record.value)  # type: ignore[arg-type]  # size step refused None
    if isinstance(event, Rejection):
        return event
    return _after_decode(record, event, lookup, now, addons)


def validate(record: RawRecord, now: datetime, addons: AddonRegistry) -> Rejection | None:
    """The first rejection `process` would give this record from its bytes and topic alone,
    or None. Skipped: access and autofill (they need the key) and running the add-ons (their
    input may come from autofill); `process` still runs every step. Same order as `process`,
    so where both refuse, the code is the same."""
    rejection = check_size(record.value)
    if rejection is not None:
        return rejection
    event = decode_event(record.value)  # type: ignore[arg-type]  # size step refused None
    if isinstance(event, Rejection):
        return event
    target = collection_of(record.topic)
    if isinstance(target, Rejection):
        return target
    rejection = check_properties(event)
    if rejection is not None:
        return rejection
    keen = build_keen(event, record, now)
    if isinstance(keen, Rejection):
        return keen
    return check_addons(event["keen"].get("addons"), addons)


def process_decoded(
    record: RawRecord, event: dict[str, Any], lookup: Lookup, now: datetime, addons: AddonRegistry
) -> Accepted | Rejection:
    """`process` for a record whose value the caller has just decoded itself, so it is not
    parsed twice (a fix's preview holds the patched object it wrote ``record.value`` from).

    ``event`` must be the object ``decode_event(record.value)`` would return, and the
    caller's to give away: the steps add to it (keen, autofill, add-ons)."""
    rejection = check_size(record.value)
    if rejection is not None:
        return rejection
    return _after_decode(record, event, lookup, now, addons)


def _after_decode(
    record: RawRecord, event: dict[str, Any], lookup: Lookup, now: datetime, addons: AddonRegistry
) -> Accepted | Rejection:
    target = collection_of(record.topic)
    if isinstance(target, Rejection):
        return target
    project_id, collection = target

    key = check_access(project_id, record.headers, lookup)
    if isinstance(key, Rejection):
        return key

    rejection = check_properties(event)
    if rejection is not None:
        return rejection

    keen = build_keen(event, record, now)
    if isinstance(keen, Rejection):
        return keen

    if key is not None and key.autofill:
        apply_autofill(event, key.autofill)

    rejection = run_addons(event, addons)
    if rejection is not None:
        return rejection

    return Accepted(
        project_id=project_id,
        collection=collection,
        keen_id=keen.id,
        keen_timestamp=keen.timestamp,
        created_at=keen.created_at,
        body=event,
    )
