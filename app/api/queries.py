"""Parsing Keen query parameters; running count and extraction (other analyses: analyses.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, func, select, true
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

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
    target_property: str | None = None
    percentile: float | None = None
    # (property, descending): "result" or a group_by property, applied in order.
    order_by: list[tuple[str, bool]] = field(default_factory=list)
    limit: int | None = None


# The analyses that read one property of the events (all but count and extraction).
TARGETED_ANALYSES = (
    "count_unique",
    "sum",
    "average",
    "minimum",
    "maximum",
    "median",
    "percentile",
    "select_unique",
)
# The most group_by properties one query may have.
MAX_GROUP_BY = 10


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
    analysis: str = "count",
) -> Query:
    collection = params.get("event_collection")
    if not isinstance(collection, str) or not collection:
        raise QueryError("event_collection is required")
    if "\x00" in collection:
        # No collection has one (the name rule), and PostgreSQL cannot bind it: a 500 otherwise.
        raise QueryError("event_collection cannot contain the NUL character")
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
    if len(group_by) > MAX_GROUP_BY:
        raise QueryError(
            f"group_by has {len(group_by)} properties; a query may have at most {MAX_GROUP_BY}"
        )
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
    target_property = params.get("target_property")
    if target_property in (None, ""):
        target_property = None
        if analysis in TARGETED_ANALYSES:
            raise QueryError(f"target_property is required for {analysis}")
    else:
        split_path(target_property)
    percentile = _parse_percentile(params.get("percentile"), required=analysis == "percentile")
    order_by = _parse_order_by(_maybe_json(params.get("order_by")), group_by)
    limit = _parse_limit(params.get("limit"), group_by)
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
        target_property=target_property,
        percentile=percentile,
        order_by=order_by,
        limit=limit,
    )


def _parse_percentile(raw: Any, *, required: bool) -> float | None:
    if raw in (None, ""):
        if required:
            raise QueryError("percentile is required (a number from 0 to 100)")
        return None
    if isinstance(raw, bool):
        raise QueryError("percentile is a number from 0 to 100")
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise QueryError("percentile is a number from 0 to 100") from exc
    if not 0 <= value <= 100:  # also refuses NaN
        raise QueryError("percentile is a number from 0 to 100")
    return value


def _parse_order_by(raw: Any, group_by: list[str]) -> list[tuple[str, bool]]:
    """Keen's order_by: a name, {property_name, direction} or a list of either."""
    if raw in (None, "", []):
        return []
    if not group_by:
        raise QueryError("order_by applies to group_by results; give group_by")
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for item in items:
        if isinstance(item, str):
            item = {"property_name": item}
        if not isinstance(item, dict) or not isinstance(item.get("property_name"), str):
            raise QueryError("order_by is {property_name, direction} or a list of them")
        name = item["property_name"]
        if name != "result" and name not in group_by:
            raise QueryError(f"order_by {name[:80]!r} is neither result nor a group_by property")
        direction = item.get("direction", "ASC")
        if not isinstance(direction, str) or direction.upper() not in ("ASC", "DESC"):
            raise QueryError("order_by direction is ASC or DESC")
        out.append((name, direction.upper() == "DESC"))
    return out


def _parse_limit(raw: Any, group_by: list[str]) -> int | None:
    if raw in (None, ""):
        return None
    if isinstance(raw, bool):
        raise QueryError("limit is a positive integer")
    try:
        limit = int(raw)
    except (TypeError, ValueError) as exc:
        raise QueryError("limit is a positive integer") from exc
    if limit < 1 or (isinstance(raw, float) and not raw.is_integer()):
        raise QueryError("limit is a positive integer")
    if not group_by:
        raise QueryError("limit applies to group_by results; give group_by")
    return limit


class QueryTimeout(Exception):
    """The database ran a query longer than the query timeout and stopped it."""


class QueryRefusal(QueryError):
    """A QueryError with a stable machine-readable ``reason`` (answered next to the message)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_timeframe(timeframe: Any, timezone: Any, where: str = "") -> None:
    """The timeframe and timezone parse_query will take, or QueryRefusal invalid_timeframe."""
    try:
        resolve_timeframe(_maybe_json(timeframe), parse_timezone(timezone))
    except QueryError as exc:
        raise QueryRefusal("invalid_timeframe", f"{where}{exc}") from exc


class Deadline:
    """The one query timeout of a call that runs several statements.

    SQLite's progress handler already stops at one deadline for the whole block; PostgreSQL's
    statement_timeout is per statement, so ``next_statement`` sets it to the time left.
    """

    def __init__(self, session: Session, seconds: float, dialect: str) -> None:
        self.session = session
        self.seconds = seconds
        self.dialect = dialect
        self.ends = time.monotonic() + seconds

    def next_statement(self) -> None:
        left = self.ends - time.monotonic()
        if left <= 0:
            raise QueryTimeout(f"the query ran longer than {self.seconds:g} s")
        if self.dialect == "postgresql":
            ms = max(1, round(left * 1000))
            self.session.execute(select(func.set_config("statement_timeout", f"{ms}ms", True)))


# SQLite calls the progress handler every this many virtual-machine instructions.
_SQLITE_PROGRESS_STEPS = 10_000
_PG_QUERY_CANCELED = "57014"


@contextmanager
def statement_timeout(session: Session, seconds: float) -> Iterator[Deadline]:
    """Stop the session's statements after ``seconds`` with QueryTimeout (both databases).

    PostgreSQL: statement_timeout, local to the session's transaction. SQLite: a progress
    handler on the raw connection that aborts the statement once the deadline has passed
    (the handler is removed again before the connection goes back to the pool). A caller
    running several statements calls the yielded Deadline's next_statement before each.
    """
    dialect = session.get_bind().dialect.name
    deadline_ = Deadline(session, seconds, dialect)
    if dialect == "postgresql":
        ms = max(1, round(seconds * 1000))
        session.execute(
            select(func.set_config("statement_timeout", f"{ms}ms", True))  # local to the tx
        )
        try:
            yield deadline_
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == _PG_QUERY_CANCELED:
                raise QueryTimeout(f"the query ran longer than {seconds:g} s") from exc
            raise
        return
    if dialect != "sqlite":
        yield deadline_
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
        yield deadline_
    except DBAPIError as exc:
        if fired:
            raise QueryTimeout(f"the query ran longer than {seconds:g} s") from exc
        if "integer overflow" in str(exc.orig):
            # SQLite's sum() of integers stops at 64 bits; PostgreSQL's numeric does not.
            raise QueryError(
                "the sum passes SQLite's 64-bit integer range; narrow the timeframe or the "
                "filters, or run Inbound on PostgreSQL"
            ) from exc
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


def run_count(session: Session, q: Query, *, max_buckets: int) -> dict[str, Any]:
    # The shared analysis code (analyses.py imports this module, hence the late import).
    from app.api.analyses import run_analysis

    return run_analysis(session, q, "count", max_buckets=max_buckets, max_values=0)


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
