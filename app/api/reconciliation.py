"""Where every received event went: received = accepted + rejected + dropped, per collection
and hour, from the ingest counters; and, over all time, whether every error row is counted in
its problem. Shared by the master-key and the support-staff route.

``deleted`` stands apart: accepted events of the hour deleted since through the API (DELETE
/3.0/projects/{id}/events/{collection}). They were received and accepted, so the balance
above does not change; events stored now = accepted - deleted."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.api.time_params import time_window
from app.api.timeframes import iso
from app.store.models import IngestCounter, IngestError, Problem


def problems_line(session: Session, project_id: str) -> dict[str, int]:
    """Error rows against the sum of problem counts: the worker keeps them equal, so a
    nonzero ``unaccounted`` is a bug (or rows the migration could not assign)."""
    rows = session.scalar(
        select(func.count()).select_from(IngestError).where(IngestError.project_id == project_id)
    )
    counted = session.scalar(
        select(func.coalesce(func.sum(Problem.count), 0)).where(Problem.project_id == project_id)
    )
    error_rows, in_problems = int(rows or 0), int(counted or 0)
    return {
        "error_rows": error_rows,
        "counted_in_problems": in_problems,
        "unaccounted": error_rows - in_problems,
    }


def reconcile(
    session: Session,
    project_id: str,
    since: str | None,
    until: str | None,
    collection: str | None,
) -> dict[str, Any]:
    start, end = time_window(since, until, timedelta(hours=24))
    # A bucket is named by its hour's start: include the hour `start` falls in.
    start = start.replace(minute=0, second=0, microsecond=0)
    where = [
        IngestCounter.project_id == project_id,
        IngestCounter.bucket >= start,
        IngestCounter.bucket < end,
    ]
    if collection:
        where.append(IngestCounter.collection == collection)
    rows = (
        session.execute(
            select(IngestCounter)
            .where(*where)
            .order_by(IngestCounter.bucket, IngestCounter.collection)
        )
        .scalars()
        .all()
    )
    out = []
    totals = {
        "received": 0,
        "accepted": 0,
        "rejected": 0,
        "dropped": 0,
        "unaccounted": 0,
        "deleted": 0,
    }
    for r in rows:
        unaccounted = r.received - r.accepted - r.rejected - r.dropped
        bucket_start = r.bucket if r.bucket.tzinfo else r.bucket.replace(tzinfo=UTC)
        out.append(
            {
                "collection": r.collection,
                "bucket_start": iso(bucket_start),
                "received": r.received,
                "accepted": r.accepted,
                "rejected": r.rejected,
                "dropped": r.dropped,
                "dropped_reasons": r.dropped_reasons or {},
                "unaccounted": unaccounted,
                "deleted": r.deleted,
            }
        )
        for name in ("received", "accepted", "rejected", "dropped", "deleted"):
            totals[name] += getattr(r, name)
        totals["unaccounted"] += unaccounted
    return {
        "start": iso(start),
        "end": iso(end),
        "balanced": all(row["unaccounted"] == 0 for row in out),
        "totals": totals,
        "rows": out,
        "problems": problems_line(session, project_id),
    }
