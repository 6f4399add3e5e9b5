"""Running count and extraction queries: parameters in, Keen-shaped results out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, and_, func, select, true
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.api.bucket_bounds import bounds_cte
from app.api.query_build import (
    Filter,
    FilterLimits,
    JsonSql,
    filters_sql,
    parse_filters,
    register_sqlite_functions,
    split_path,
)
from app.api.timeframes import (
    QueryError,
    Timeframe,
    buckets,
    parse_interval,
    parse_timezone,
    resolve_timeframe,
)
from app.store.models import Event


@dataclass
class Query:
    project_id: str
    event_collection: str
    timeframe: Timeframe | None
    tz: tzinfo
    filters: list[Filter] = field(default_factory=list)
    group_by: list[str] = field(default_factory=list)
    interval: str | None = None
    latest: int | None = None
    property_names: list[str] | None = None


def _maybe_json(value: Any) -> Any:
    """GET parameters carry lists and objects as JSON text."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise QueryError(f"not valid JSON: {value[:80]!r}") from exc
    return value


def parse_query(
    project_id: str,
    params: dict[str, Any],
    *,
    forced_filters: list[dict],
    now: datetime | None = None,
    limits: FilterLimits | None = None,
) -> Query:
    collection = params.get("event_collection")
    if not isinstance(collection, str) or not collection:
        raise QueryError("event_collection is required")
    tz = parse_timezone(params.get("timezone"))
    timeframe = resolve_timeframe(_maybe_json(params.get("timeframe")), tz, now)
    filters = parse_filters(_maybe_json(params.get("filters")), limits or FilterLimits())
    # An access key's filters are added, never replaced: the caller cannot widen them.
    filters += parse_filters(forced_filters)
    group_by = _maybe_json(params.get("group_by"))
    if group_by in (None, ""):
        group_by = []
    elif isinstance(group_by, str):
        group_by = [group_by]
    if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
        raise QueryError("group_by is a property name or a list of them")
    for name in group_by:
        split_path(name)
    interval = params.get("interval") or None
    if interval is not None:
        if not isinstance(interval, str):
            raise QueryError("interval is a string such as daily or every_2_hours")
        parse_interval(interval)
        if timeframe is None:
            raise QueryError("interval needs a timeframe")
    latest = params.get("latest")
    if latest in (None, ""):
        latest = None
    else:
        try:
            latest = int(latest)
        except (TypeError, ValueError) as exc:
            raise QueryError("latest is a positive integer") from exc
        if latest < 1 or isinstance(params.get("latest"), bool):
            raise QueryError("latest is a positive integer")
    property_names = _maybe_json(params.get("property_names"))
    if property_names in (None, ""):
        property_names = None
    elif isinstance(property_names, str):
        property_names = [property_names]
    if property_names is not None:
        if not isinstance(property_names, list) or not all(
            isinstance(p, str) for p in property_names
        ):
            raise QueryError("property_names is a list of property paths")
        for name in property_names:
            split_path(name)
    return Query(
        project_id=project_id,
        event_collection=collection,
        timeframe=timeframe,
        tz=tz,
        filters=filters,
        group_by=group_by,
        interval=interval,
        latest=latest,
        property_names=property_names,
    )


class QueryTimeout(Exception):
    """The database ran a query longer than the query timeout and stopped it."""


# SQLite calls the progress handler every this many virtual-machine instructions.
_SQLITE_PROGRESS_STEPS = 10_000
_PG_QUERY_CANCELED = "57014"


@contextmanager
def statement_timeout(session: Session, seconds: float) -> Iterator[None]:
    """Stop the session's statements after ``seconds`` with QueryTimeout (both databases).

    PostgreSQL: statement_timeout, local to the session's transaction. SQLite: a progress
    handler on the raw connection that aborts the statement once the deadline has passed
    (the handler is removed again before the connection goes back to the pool).
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        ms = max(1, round(seconds * 1000))
        session.execute(
            select(func.set_config("statement_timeout", f"{ms}ms", True))  # local to the tx
        )
        try:
            yield
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == _PG_QUERY_CANCELED:
                raise QueryTimeout(f"the query ran longer than {seconds:g} s") from exc
            raise
        return
    if dialect != "sqlite":
        yield
        return
    raw = session.connection().connection.driver_connection
    deadline = time.monotonic() + seconds
    fired = False

    def _abort() -> int:
        nonlocal fired
        if time.monotonic() > deadline:
            fired = True
            return 1  # non-zero: SQLite stops the statement ("interrupted")
        return 0

    raw.set_progress_handler(_abort, _SQLITE_PROGRESS_STEPS)
    try:
        yield
    except DBAPIError as exc:
        if fired:
            raise QueryTimeout(f"the query ran longer than {seconds:g} s") from exc
        raise
    finally:
        raw.set_progress_handler(None, _SQLITE_PROGRESS_STEPS)


def _prepare(session: Session) -> str:
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        register_sqlite_functions(session.connection().connection.driver_connection)
    return dialect


def _base_where(q: Query, dialect: str) -> ColumnElement:
    # project_id first: the (project_id, collection, keen_timestamp) index, and isolation.
    return and_(
        Event.project_id == q.project_id,
        Event.collection == q.event_collection,
        filters_sql(dialect, q.filters),
    )


def _frame_where(frame: Timeframe | None) -> ColumnElement:
    if frame is None:
        return true()
    # Bound as naive UTC on SQLite by the column type (stored that way).
    return and_(Event.keen_timestamp >= frame.start, Event.keen_timestamp < frame.end)


class _GroupColumns:
    """Selected columns for group_by properties and how to read them back as JSON values."""

    def __init__(self, dialect: str, names: list[str]) -> None:
        self.dialect = dialect
        self.names = names
        self.columns: list[ColumnElement] = []
        for name in names:
            path = JsonSql(dialect, split_path(name))
            if dialect == "postgresql":
                self.columns.append(path.node())
            else:
                # json_type tells true/false from 1/0 and JSON text from a string.
                self.columns.extend([path.kind(), path.scalar()])

    def decode(self, row: tuple) -> tuple:
        if self.dialect == "postgresql":
            return tuple(row[: len(self.names)])
        out = []
        for i in range(len(self.names)):
            kind, value = row[2 * i], row[2 * i + 1]
            if kind == "true":
                out.append(True)
            elif kind == "false":
                out.append(False)
            elif kind in ("object", "array"):
                out.append(orjson.loads(value))
            else:
                out.append(value)
        return tuple(out)

    @property
    def width(self) -> int:
        return len(self.columns)


def _grouped(groups: _GroupColumns, rows: list[tuple]) -> list[dict]:
    out = []
    for row in rows:
        item = dict(zip(groups.names, groups.decode(row), strict=True))
        item["result"] = int(row[groups.width])
        out.append(item)
    # Stable order: biggest first, then by the group values' JSON.
    out.sort(key=lambda r: (-r["result"], orjson.dumps([r[n] for n in groups.names])))
    return out


def run_count(session: Session, q: Query, *, max_buckets: int) -> dict[str, Any]:
    dialect = _prepare(session)
    groups = _GroupColumns(dialect, q.group_by)
    where = _base_where(q, dialect)
    if q.interval is None:
        stmt: Select = select(*groups.columns, func.count()).where(where, _frame_where(q.timeframe))
        if q.group_by:
            rows = session.execute(stmt.group_by(*groups.columns)).all()
            return {"result": _grouped(groups, [tuple(r) for r in rows])}
        return {"result": int(session.execute(stmt).scalar_one())}

    assert q.timeframe is not None
    frames = buckets(q.timeframe, q.interval, q.tz, max_buckets)
    # One scan: join events to a VALUES list of bucket bounds, each bucket an index range.
    bounds = bounds_cte([(f.start, f.end) for f in frames])
    stmt = (
        select(bounds.c.idx, *groups.columns, func.count())
        .select_from(Event)
        .join(
            bounds,
            and_(Event.keen_timestamp >= bounds.c.b_start, Event.keen_timestamp < bounds.c.b_end),
        )
        .where(where, _frame_where(q.timeframe))
        .group_by(bounds.c.idx, *groups.columns)
    )
    per_bucket: dict[int, list[tuple]] = {}
    for row in session.execute(stmt).all():
        per_bucket.setdefault(int(row[0]), []).append(tuple(row[1:]))
    result = []
    for i, frame in enumerate(frames):
        rows = per_bucket.get(i, [])
        if q.group_by:
            value: Any = _grouped(groups, rows)
        else:
            value = int(rows[0][-1]) if rows else 0
        result.append({"timeframe": frame.as_json(), "value": value})
    return {"result": result}


def _keep_paths(event: dict, paths: list[list[str]]) -> dict:
    out: dict = {}
    for parts in paths:
        node: Any = event
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            target = out
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = node
    return out


def run_extraction(session: Session, q: Query, *, max_events: int) -> dict[str, Any]:
    dialect = _prepare(session)
    where = and_(_base_where(q, dialect), _frame_where(q.timeframe))
    if q.latest is not None:
        limit = min(q.latest, max_events)
        stmt = (
            select(Event.body)
            .where(where)
            .order_by(Event.keen_timestamp.desc(), Event.id.desc())
            .limit(limit)
        )
        bodies = list(reversed(session.execute(stmt).scalars().all()))
    else:
        stmt = (
            select(Event.body)
            .where(where)
            .order_by(Event.keen_timestamp, Event.id)
            .limit(max_events + 1)
        )
        bodies = list(session.execute(stmt).scalars().all())
        if len(bodies) > max_events:
            raise QueryError(
                f"more than {max_events} events match; narrow the timeframe or use latest"
            )
    if q.property_names:
        paths = [split_path(p) for p in q.property_names]
        bodies = [_keep_paths(b, paths) for b in bodies]
    return {"result": bodies}
