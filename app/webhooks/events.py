"""Event types and the JSON bodies customers receive (the `type`/`timestamp`/`data` envelope)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

INGEST_FAILED = "ingest.failed"
DLQ_PAUSED = "dlq.paused"
DLQ_RESUMED = "dlq.resumed"
WEBHOOK_DISABLED = "webhook.disabled"
WEBHOOK_TEST = "webhook.test"
PROBLEM_CREATED = "problem.created"
PROBLEM_REGRESSED = "problem.regressed"

# What a webhook may subscribe to; webhook.test is sent on request whatever the subscription.
EVENT_TYPES: tuple[str, ...] = (
    INGEST_FAILED,
    DLQ_PAUSED,
    DLQ_RESUMED,
    WEBHOOK_DISABLED,
    PROBLEM_CREATED,
    PROBLEM_REGRESSED,
)
# Sent one delivery per notification, with a link to the problem added to the payload.
PROBLEM_TYPES: frozenset[str] = frozenset((PROBLEM_CREATED, PROBLEM_REGRESSED))
# Bounds one ingest.failed body whatever the number of collections involved.
MAX_COUNT_ROWS = 100


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime) -> str:
    return as_utc(value).isoformat().replace("+00:00", "Z")


def envelope(event_type: str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": event_type, "timestamp": iso(at), "data": data}


def errors_link(link_base: str | None, project_id: str, error_id: str | None = None) -> str:
    path = f"/3.0/projects/{project_id}/errors"
    if error_id:
        path += f"/{error_id}"
    return (link_base.rstrip("/") if link_base else "") + path


def problem_link(link_base: str | None, project_id: str, problem_id: str) -> str:
    path = f"/3.0/projects/{project_id}/problems/{problem_id}"
    return (link_base.rstrip("/") if link_base else "") + path


def ingest_failed_data(
    project_id: str,
    notes: Sequence[tuple[datetime, dict[str, Any]]],
    sample_size: int,
    link_base: str | None,
) -> dict[str, Any]:
    """Counts per code and collection, a few samples and links, for a window of rejections.

    ``notes`` are (created_at, worker payload) pairs, oldest first.
    """
    pairs = Counter((str(p.get("code")), str(p.get("collection"))) for _, p in notes)
    by_code = Counter(str(p.get("code")) for _, p in notes)
    rows = [
        {"code": code, "collection": collection, "count": count}
        for (code, collection), count in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    samples = []
    for created_at, payload in notes[:sample_size]:
        error_id = payload.get("error_id")
        samples.append(
            {
                "error_id": error_id,
                # Absent (None) in notifications written before problems existed.
                "problem_id": payload.get("problem_id"),
                "code": payload.get("code"),
                "stage": payload.get("stage"),
                "collection": payload.get("collection"),
                "message": payload.get("message"),
                "created_at": payload.get("created_at") or iso(created_at),
                "url": errors_link(link_base, project_id, error_id) if error_id else None,
            }
        )
    return {
        "project_id": project_id,
        "total": len(notes),
        "first_at": iso(notes[0][0]),
        "last_at": iso(notes[-1][0]),
        "by_code": dict(sorted(by_code.items())),
        "counts": rows[:MAX_COUNT_ROWS],
        "counts_truncated": len(rows) > MAX_COUNT_ROWS,
        "samples": samples,
        "errors_url": errors_link(link_base, project_id),
    }


def single_event_data(project_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """dlq.paused, dlq.resumed and webhook.disabled carry the worker's payload as it is."""
    return {"project_id": project_id, **payload}


def problem_event_data(
    project_id: str, payload: dict[str, Any], link_base: str | None
) -> dict[str, Any]:
    """problem.created and problem.regressed: the stored payload and a link to the problem."""
    data = single_event_data(project_id, payload)
    problem_id = payload.get("problem_id")
    data["url"] = problem_link(link_base, project_id, problem_id) if problem_id else None
    return data
