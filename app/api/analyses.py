"""Keen's analyses over one scan: count, count_unique, sum, average, minimum, maximum, median,
percentile and select_unique, plain, by interval, by group_by, or both.

Every analysis takes the same filters, timeframe, interval buckets and group_by columns as
count (queries.py); only the aggregate differs. Numbers for sum/average/minimum/maximum/
median/percentile are the target property's JSON numbers only (strings and booleans are
skipped: both databases check the JSON type first). count_unique and select_unique take any
JSON type except null ("1" and 1 are different values).

Medians and percentiles: PostgreSQL's percentile_cont; on SQLite a Python aggregate
(registered per query) that keeps at most MAX_SQLITE_PERCENTILE_VALUES numbers per query and
interpolates as percentile_cont does. Both are stopped by the query's statement timeout.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Float, Numeric, Text, and_, case, cast, func, literal, select
from sqlalchemy.orm import Session

from app.api.bucket_bounds import bounds_cte
from app.api.queries import (
    TARGETED_ANALYSES,
    Query,
    _base_where,
    _frame_where,
    _GroupColumns,
    _prepare,
)
from app.api.query_build import JsonSql, split_path
from app.api.timeframes import QueryError, buckets
from app.store.models import Event

ANALYSES = ("count", *TARGETED_ANALYSES)
# SQLite medians/percentiles are computed in Python: the most numbers one query may hold
# (8 bytes each, so about 16 MB), beyond which the query is refused with a 400.
MAX_SQLITE_PERCENTILE_VALUES = 2_000_000


def _number(value: Any) -> int | float | None:
    """A database number as JSON: integral values as integers (3, not 3.0)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        value = int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


@dataclass
class _Aggregate:
    columns: list[ColumnElement]
    decode: Callable[[tuple], Any]
    empty: Any  # the value over no events
    rows_are_values: bool = False  # select_unique: one row per distinct value


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    if not values:
        return None
    values = sorted(values)
    pos = fraction * (len(values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


class _PercentileBudget:
    """Numbers the SQLite percentile aggregates of one query may keep, shared by all groups."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.exceeded = False

    def aggregate(self) -> type:
        budget = self

        class Percentile:
            def __init__(self) -> None:
                self.values = array("d")
                self.fraction = 0.5

            def step(self, value: object, fraction: float) -> None:
                if value is None or isinstance(value, str | bytes):
                    return
                if budget.left <= 0:
                    budget.exceeded = True  # answered after the statement (no mid-query raise)
                    return
                budget.left -= 1
                self.values.append(float(value))
                self.fraction = fraction

            def finalize(self) -> float | None:
                return percentile_cont(list(self.values), self.fraction)

        return Percentile


def _aggregate(session: Session, dialect: str, q: Query, analysis: str) -> tuple[_Aggregate, Any]:
    pg = dialect == "postgresql"
    if analysis == "count":
        return _Aggregate([func.count()], lambda r: int(r[0]), 0), None
    assert q.target_property is not None
    path = JsonSql(dialect, split_path(q.target_property))
    if analysis == "select_unique":
        target = _GroupColumns(dialect, [q.target_property])
        return _Aggregate(target.columns, lambda r: target.decode(r)[0], [], True), None
    if analysis == "count_unique":
        if pg:
            value: ColumnElement = case((path.kind() != "null", path.node()), else_=None)
        else:
            # `->` gives the JSON text of the value (one parse): "1" and 1 stay apart.
            text = Event.body.op("->", return_type=Text)(literal(path._sqlite_path()))
            value = func.nullif(text, "null")
        return _Aggregate([func.count(value.distinct())], lambda r: int(r[0]), 0), None
    if pg:
        # Cast only JSON numbers (CASE guarantees the cast never sees a string); numeric
        # keeps integer sums exact, percentile_cont takes double precision.
        kind = Float if analysis in ("median", "percentile") else Numeric
        number: ColumnElement = case((path.is_number(), cast(path.scalar(), kind)), else_=None)
    else:
        number = case((path.is_number(), path.scalar()), else_=None)
    if analysis == "sum":
        return _Aggregate([func.sum(number)], lambda r: _number(r[0]) or 0, 0), None
    simple = {"average": func.avg, "minimum": func.min, "maximum": func.max}
    if analysis in simple:
        return _Aggregate([simple[analysis](number)], lambda r: _number(r[0]), None), None
    fraction = 0.5 if analysis == "median" else (q.percentile or 0.0) / 100
    if pg:
        column = func.percentile_cont(fraction).within_group(number)
        return _Aggregate([column], lambda r: _number(r[0]), None), None
    budget = _PercentileBudget(MAX_SQLITE_PERCENTILE_VALUES)
    raw = session.connection().connection.driver_connection
    raw.create_aggregate("inbound_percentile", 2, budget.aggregate())
    column = func.inbound_percentile(number, fraction)
    return _Aggregate([column], lambda r: _number(r[0]), None), budget


def _json_key(values: list) -> bytes:
    return orjson.dumps(values, option=orjson.OPT_SORT_KEYS)


def _value_key(value: Any) -> tuple:
    """A total order over JSON values: null, booleans, numbers, strings, arrays/objects."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    if isinstance(value, list):
        return (4, len(value), _json_key(value))
    return (5, _json_key(value))


def _ordered(items: list[dict], q: Query, analysis: str) -> list[dict]:
    # Ties (and select_unique by default) in the order of the group values' JSON.
    items.sort(key=lambda r: _json_key([r[n] for n in q.group_by]))
    order = q.order_by
    if not order and analysis != "select_unique":
        order = [("result", True)]  # biggest first, as count always answered
    for name, descending in reversed(order):
        items.sort(key=lambda r, n=name: _value_key(r[n]), reverse=descending)
    return items[: q.limit] if q.limit is not None else items


def _shape(
    groups: _GroupColumns, agg: _Aggregate, rows: list[tuple], q: Query, analysis: str
) -> Any:
    """Rows (group columns, aggregate columns) as Keen's plain or group_by result."""
    pairs: dict[bytes, Any] = {}
    keys: dict[bytes, tuple] = {}
    for row in rows:
        group = groups.decode(row) if q.group_by else ()
        key = _json_key(list(group))  # group values may be objects or lists (unhashable)
        keys[key] = group
        value = agg.decode(row[groups.width :])
        if not agg.rows_are_values:
            pairs[key] = value
        elif value is not None:  # a JSON null is no value; neither is a missing property
            pairs.setdefault(key, []).append(value)
        else:
            pairs.setdefault(key, [])
    if agg.rows_are_values:
        for values in pairs.values():
            values.sort(key=_value_key)
    if not q.group_by:
        return next(iter(pairs.values())) if pairs else agg.empty
    items = []
    for key, value in pairs.items():
        item = dict(zip(q.group_by, keys[key], strict=True))
        item["result"] = value
        items.append(item)
    return _ordered(items, q, analysis)


def run_analysis(
    session: Session, q: Query, analysis: str, *, max_buckets: int, max_values: int
) -> dict[str, Any]:
    """One analysis's Keen-shaped result. ``max_values``: the most distinct (bucket, group,
    value) rows select_unique may read (more: QueryError)."""
    if analysis not in ANALYSES:
        raise QueryError(f"unknown analysis {analysis!r}")
    dialect = _prepare(session)
    groups = _GroupColumns(dialect, q.group_by)
    agg, budget = _aggregate(session, dialect, q, analysis)
    where = and_(_base_where(q, dialect), _frame_where(q.timeframe))
    if agg.rows_are_values:
        # Only events with a value count towards max_values (missing and JSON null do not).
        kind = JsonSql(dialect, split_path(q.target_property or "")).kind()
        where = and_(where, kind.is_not(None), kind != "null")
    # select_unique groups by the value too: one row per distinct value of each group.
    grouping = [*groups.columns, *(agg.columns if agg.rows_are_values else [])]
    selected = [*groups.columns, *agg.columns]
    if agg.rows_are_values:
        selected.append(func.count())  # any aggregate: the GROUP BY does the work

    def _fetch(stmt: Any) -> list[tuple]:
        if agg.rows_are_values:
            stmt = stmt.limit(max_values + 1)
        rows = [tuple(r) for r in session.execute(stmt).all()]
        if agg.rows_are_values and len(rows) > max_values:
            raise QueryError(
                f"more than {max_values} distinct values; narrow the timeframe or the filters"
            )
        if budget is not None and budget.exceeded:
            raise QueryError(
                f"more than {MAX_SQLITE_PERCENTILE_VALUES} numbers for a {analysis} on SQLite; "
                "narrow the timeframe or the filters"
            )
        return rows

    if q.interval is None:
        stmt = select(*selected).where(where)
        if grouping:
            stmt = stmt.group_by(*grouping)
        return {"result": _shape(groups, agg, _fetch(stmt), q, analysis)}

    assert q.timeframe is not None
    frames = buckets(q.timeframe, q.interval, q.tz, max_buckets)
    # One scan: join events to a VALUES list of bucket bounds, each bucket an index range.
    bounds = bounds_cte([(f.start, f.end) for f in frames])
    stmt = (
        select(bounds.c.idx, *selected)
        .select_from(Event)
        .join(
            bounds,
            and_(Event.keen_timestamp >= bounds.c.b_start, Event.keen_timestamp < bounds.c.b_end),
        )
        .where(where)
        .group_by(bounds.c.idx, *grouping)
    )
    per_bucket: dict[int, list[tuple]] = {}
    for row in _fetch(stmt):
        per_bucket.setdefault(int(row[0]), []).append(row[1:])
    result = []
    for i, frame in enumerate(frames):
        value = _shape(groups, agg, per_bucket.get(i, []), q, analysis)
        result.append({"timeframe": frame.as_json(), "value": value})
    return {"result": result}
