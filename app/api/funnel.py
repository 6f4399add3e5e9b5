"""Keen's funnel: ordered steps, each the set of distinct actors (the values of the step's
``actor_property``) among the events of its collection, timeframe and filters.

Step 1 counts its actors. Step N counts the actors of the funnel so far (the actors of every
earlier step that is not ``optional``) that are in step N, or, ``inverted``, that are not. An
``optional`` step is counted but does not narrow the steps after it. The first step can be
neither inverted nor optional (there is no funnel yet to narrow or leave alone).

All in the database: every step's actor set is a DISTINCT subquery over the events index
(project, collection, timestamp) with the shared filter SQL, combined with INTERSECT / EXCEPT
in CTEs, and one statement counts them all; a second statement reads the actors of the
steps that ask for them (``with_actors``), at most ``max_actors`` per step. Actor values keep
their JSON type ("1" and 1 are two actors); events without the property (or with null) have
no actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, Text, and_, func, literal, literal_column, select
from sqlalchemy.orm import Session

from app.api.analyses import _value_key
from app.api.queries import (
    Deadline,
    Query,
    QueryRefusal,
    _base_where,
    _frame_where,
    _maybe_json,
    _prepare,
    check_timeframe,
    parse_query,
)
from app.api.query_build import FilterLimits, JsonSql, split_path
from app.api.timeframes import QueryError
from app.store.models import Event

# The most steps one funnel may have (each is one scan of its collection and timeframe).
MAX_FUNNEL_STEPS = 20
_FLAGS = ("optional", "inverted", "with_actors")


@dataclass(frozen=True)
class FunnelStep:
    query: Query  # collection, timeframe, timezone, filters (with the key's forced filters)
    actor_property: str
    optional: bool
    inverted: bool
    with_actors: bool
    echo: dict[str, Any]  # the step as Keen answers it back


def _flag(raw: dict, name: str, index: int) -> bool:
    value = raw.get(name, False)
    if value in (None, ""):
        return False
    # GET bodies come from JSON, but a Keen client may still send "true"/"false" strings.
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise QueryRefusal("invalid_step", f"steps[{index}].{name} is true or false")
    return value


def parse_steps(
    project_id: str,
    raw: object,
    defaults: dict[str, Any],
    *,
    forced_filters: list[dict],
    limits: FilterLimits,
) -> list[FunnelStep]:
    """The funnel's steps; ``defaults``: the top-level timeframe and timezone."""
    raw = _maybe_json(raw)
    if raw in (None, "", []):
        raise QueryRefusal("empty_steps", "steps is required: a non-empty list of steps")
    if not isinstance(raw, list):
        raise QueryRefusal("invalid_step", "steps is a list of {event_collection, actor_property}")
    if len(raw) > MAX_FUNNEL_STEPS:
        raise QueryRefusal(
            "too_many_steps", f"{len(raw)} steps; a funnel may have at most {MAX_FUNNEL_STEPS}"
        )
    steps = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise QueryRefusal(
                "invalid_step", f"steps[{i}] is an object {{event_collection, actor_property}}"
            )
        steps.append(_parse_step(project_id, i, item, defaults, forced_filters, limits))
    first = steps[0]
    if first.inverted or first.optional:
        raise QueryRefusal("invalid_step", "the first step can be neither inverted nor optional")
    return steps


def _parse_step(
    project_id: str,
    i: int,
    item: dict,
    defaults: dict[str, Any],
    forced_filters: list[dict],
    limits: FilterLimits,
) -> FunnelStep:
    actor = item.get("actor_property")
    try:
        split_path(actor)
    except QueryError as exc:
        raise QueryRefusal("invalid_actor_property", f"steps[{i}].actor_property: {exc}") from exc
    timeframe = item.get("timeframe")
    timezone = item.get("timezone")
    timeframe = defaults.get("timeframe") if timeframe in (None, "") else timeframe
    timezone = defaults.get("timezone") if timezone in (None, "") else timezone
    if isinstance(timezone, float):
        # A GET step's JSON may carry 3600.0 or 1.5; the offset is whole seconds (as a POST
        # body's is), and the answer echoes it as a number of them.
        if not timezone.is_integer():
            raise QueryRefusal(
                "invalid_timeframe", f"steps[{i}]: a timezone offset is a whole number of seconds"
            )
        timezone = int(timezone)
    check_timeframe(timeframe, timezone, f"steps[{i}]: ")
    params = {
        "event_collection": item.get("event_collection"),
        "timeframe": timeframe,
        "timezone": timezone,
        "filters": item.get("filters"),
    }
    try:
        query = parse_query(
            project_id, params, forced_filters=forced_filters, limits=limits, analysis="count"
        )
    except QueryError as exc:
        raise QueryRefusal("invalid_step", f"steps[{i}]: {exc}") from exc
    flags = {name: _flag(item, name, i) for name in _FLAGS}
    echo = {
        "event_collection": query.event_collection,
        "actor_property": actor,
        "timeframe": _maybe_json(timeframe),
        "timezone": timezone,
        "filters": _maybe_json(item.get("filters")) or [],
        **flags,
    }
    return FunnelStep(query, actor, **flags, echo=echo)


def _actor_column(dialect: str, name: str) -> tuple[ColumnElement, ColumnElement]:
    """The actor as a comparable value that keeps its JSON type, and the test that it is one."""
    path = JsonSql(dialect, split_path(name))
    if dialect == "postgresql":
        return path.node(), and_(path.kind().is_not(None), path.kind() != "null")
    # `->` gives the value's JSON text (one parse): "1" and 1 stay two actors.
    text = Event.body.op("->", return_type=Text)(literal(path._sqlite_path()))
    return text, and_(text.is_not(None), text != "null")


def _actors_of(dialect: str, step: FunnelStep) -> Select:
    actor, present = _actor_column(dialect, step.actor_property)
    where = and_(_base_where(step.query, dialect), _frame_where(step.query.timeframe), present)
    return select(actor.label("actor")).where(where).distinct()


def _decode(dialect: str, value: Any) -> Any:
    return value if dialect == "postgresql" else orjson.loads(value)


def run_funnel(
    session: Session, steps: list[FunnelStep], deadline: Deadline, *, max_actors: int
) -> dict[str, Any]:
    dialect = _prepare(session)
    reached = []  # per step: the CTE of the actors it counts
    funnel = None  # the actors of every non-optional step so far
    for i, step in enumerate(steps):
        own = _actors_of(dialect, step).cte(f"s{i}")
        mine = select(own.c.actor)
        if funnel is None:
            counted = own
        else:
            before = select(funnel.c.actor)
            both = before.except_(mine) if step.inverted else before.intersect(mine)
            counted = both.cte(f"r{i}")
        reached.append(counted)
        if not step.optional:
            funnel = counted
    counts = [
        select(func.count()).select_from(cte).scalar_subquery().label(f"n{i}")
        for i, cte in enumerate(reached)
    ]
    deadline.next_statement()
    row = session.execute(select(*counts)).one()
    out: dict[str, Any] = {"result": [int(n) for n in row], "steps": [s.echo for s in steps]}
    wanted = [i for i, s in enumerate(steps) if s.with_actors]
    if not wanted:
        return out
    for i in wanted:
        if out["result"][i] > max_actors:
            raise QueryError(
                f"step {i} has {out['result'][i]} actors; with_actors returns at most "
                f"{max_actors}: narrow the timeframe or the filters"
            )
    parts = [select(literal_column(str(i)).label("step"), reached[i].c.actor) for i in wanted]
    union = parts[0] if len(parts) == 1 else parts[0].union_all(*parts[1:])
    deadline.next_statement()
    actors: dict[int, list] = {i: [] for i in wanted}
    for step_index, value in session.execute(union).all():
        actors[int(step_index)].append(_decode(dialect, value))
    out["actors"] = [
        sorted(actors[i], key=_value_key) if i in actors else None for i in range(len(steps))
    ]
    return out
