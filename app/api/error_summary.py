"""Rejections counted by code and collection in hourly or daily buckets, in one query."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from app.api.bucket_bounds import bounds_cte
from app.api.error_views import error_filters
from app.api.problems import ApiError
from app.api.timeframes import iso
from app.store.models import IngestError

MAX_SUMMARY_BUCKETS = 1000


def _edges(
    start: datetime, end: datetime, bucket: Literal["hour", "day"]
) -> list[tuple[datetime, datetime]]:
    width = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    floor = start.replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        floor = floor.replace(hour=0)
    edges = []
    at = floor
    while at < end:
        edges.append((at, at + width))
        at += width
        if len(edges) > MAX_SUMMARY_BUCKETS:
            raise ApiError(400, "InvalidParameterError", "too many buckets; use bucket=day")
    return edges


def summarize_errors(
    session: Session,
    project_id: str,
    start: datetime,
    end: datetime,
    bucket: Literal["hour", "day"],
    collection: str | None,
) -> dict[str, Any]:
    edges = _edges(start, end, bucket)
    table = bounds_cte(edges)
    where = error_filters(project_id=project_id, collection=collection, since=start, until=end)
    stmt = (
        select(table.c.idx, IngestError.code, IngestError.collection, func.count())
        .select_from(IngestError)
        .join(
            table,
            and_(IngestError.created_at >= table.c.b_start, IngestError.created_at < table.c.b_end),
        )
        .where(*where)
        .group_by(table.c.idx, IngestError.code, IngestError.collection)
    )
    out = [
        {"start": iso(s), "end": iso(e), "total": 0, "by_code": {}, "by_collection": {}}
        for s, e in edges
    ]
    totals: dict[str, Any] = {"total": 0, "by_code": {}, "by_collection": {}}
    rows = session.execute(stmt).all() if edges else []
    for idx, code, coll, n in rows:
        for target in (out[idx], totals):
            target["total"] += n
            target["by_code"][code] = target["by_code"].get(code, 0) + n
            target["by_collection"][coll] = target["by_collection"].get(coll, 0) + n
    return {
        "start": iso(start),
        "end": iso(end),
        "bucket": bucket,
        "totals": totals,
        "buckets": out,
    }
