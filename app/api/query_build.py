"""Keen filters and property paths as SQL over events.body, for SQLite and PostgreSQL.

SQLite: json_type / json_extract with a '$."a"."b"' path. PostgreSQL: jsonb `#>` / `#>>` with a
text[] path and jsonb_typeof. Every comparison first checks the JSON type of the property, so
"5" never equals 5, a string is never "greater" than a number, and PostgreSQL never has to cast
a non-number (which would fail the whole query).

Regex filters run in linear time on SQLite: REGEXP is RE2 (google-re2), which has no
backtracking, and only patterns RE2 accepts are taken (no backreferences or lookaround).
PostgreSQL's `~` backtracks; there the query's statement timeout bounds it (queries.py).
"""

from __future__ import annotations

import math
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
import re2
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    Text,
    and_,
    any_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import array as pg_array

from app.api.timeframes import QueryError, parse_instant
from app.ingest.steps.properties import MAX_DEPTH, MAX_NAME_LENGTH
from app.store.models import Event

OPERATORS = frozenset(
    {
        "eq",
        "ne",
        "lt",
        "lte",
        "gt",
        "gte",
        "exists",
        "in",
        "contains",
        "not_contains",
        "within",
        "regex",
    }
)
# keen.timestamp and keen.created_at are also columns: filter on those, which are indexed.
_TIME_COLUMNS = {"keen.timestamp": Event.keen_timestamp, "keen.created_at": Event.created_at}
_EARTH_RADIUS_MILES = 3958.7613
# No quote or backslash (SQLite's JSON path syntax), no NUL (no event has one in a name, and
# neither database takes it in a path: a 500 otherwise).
_NAME_RE = re.compile(r'^[^"\\\x00]+$')
# The longest regex pattern a filter may have (characters).
MAX_PATTERN_LENGTH = 512
# A NUL in JSON text: \u0000 after an even number of backslashes (not the text "\u0000").
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


@dataclass(frozen=True)
class FilterLimits:
    """How much one query's filters may ask for (settings query_max_filters/_in_values)."""

    max_filters: int = 50
    max_in_values: int = 1000


@dataclass(frozen=True)
class Filter:
    property_name: str
    operator: str
    property_value: Any


def split_path(name: object) -> list[str]:
    if not isinstance(name, str) or not name:
        raise QueryError("a property name is a non-empty string")
    # Events nest at most MAX_DEPTH levels with names of at most MAX_NAME_LENGTH characters.
    if len(name) > MAX_DEPTH * (MAX_NAME_LENGTH + 1):
        raise QueryError(f"property name is longer than {MAX_DEPTH * (MAX_NAME_LENGTH + 1)}")
    parts = name.split(".")
    if len(parts) > MAX_DEPTH:
        raise QueryError(f"property name {name[:80]!r}... is deeper than {MAX_DEPTH} levels")
    if any(not p or len(p) > MAX_NAME_LENGTH or not _NAME_RE.match(p) for p in parts):
        raise QueryError(f"property name {name[:300]!r} is not a dotted path of property names")
    return parts


def parse_filters(raw: object, limits: FilterLimits | None = None) -> list[Filter]:
    """The filters of a query, refused (QueryError) when malformed or over ``limits``."""
    if raw is None or raw == "":
        return []
    if not isinstance(raw, list):
        raise QueryError("filters is a list of {property_name, operator, property_value}")
    if limits is not None and len(raw) > limits.max_filters:
        raise QueryError(f"{len(raw)} filters; a query may have at most {limits.max_filters}")
    out: list[Filter] = []
    for item in raw:
        if not isinstance(item, dict) or "property_name" not in item or "operator" not in item:
            raise QueryError("each filter is {property_name, operator, property_value}")
        operator = item["operator"]
        if operator not in OPERATORS:
            raise QueryError(f"unknown filter operator {operator!r}")
        split_path(item["property_name"])
        value = item.get("property_value")
        if limits is not None and operator == "in" and isinstance(value, list):
            if len(value) > limits.max_in_values:
                raise QueryError(
                    f"an in filter has {len(value)} values; at most {limits.max_in_values}"
                )
        _check_value(value)
        out.append(Filter(item["property_name"], operator, item.get("property_value")))
    return out


def _check_value(value: object) -> None:
    # Both databases bind integers as 64-bit; orjson (the JSON serialiser) refuses larger ones.
    try:
        text = orjson.dumps(value)
    except TypeError as exc:
        raise QueryError("property_value: numbers must fit in 64 bits") from exc
    if _JSON_NUL.search(text):
        # PostgreSQL's jsonb and text take no NUL (a 500 there); refused on both databases.
        raise QueryError("property_value cannot contain the NUL character")


def register_sqlite_functions(dbapi_conn: sqlite3.Connection) -> None:
    """REGEXP and a great-circle distance, which SQLite does not have built in."""

    def regexp(pattern: str | None, value: object) -> int | None:
        if pattern is None or not isinstance(value, str):
            return None
        try:
            # RE2 matching is linear in the value (compiled patterns are cached).
            return 1 if _compile_regex(pattern).search(value) else 0
        except re2.error:
            return 0

    def miles(lon: float | None, lat: float | None, lon0: float, lat0: float) -> float | None:
        if not isinstance(lon, int | float) or not isinstance(lat, int | float):
            return None
        return _haversine(float(lon), float(lat), lon0, lat0)

    dbapi_conn.create_function("regexp", 2, regexp, deterministic=True)
    dbapi_conn.create_function("inbound_miles", 4, miles, deterministic=True)


@lru_cache(maxsize=256)
def _compile_regex(pattern: str) -> Any:
    return re2.compile(pattern, _RE2_OPTIONS)


def check_regex(pattern: object) -> str:
    """A pattern RE2 takes (linear-time matching) and not too long, or QueryError."""
    if not isinstance(pattern, str):
        raise QueryError("regex takes a pattern string")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise QueryError(f"regex pattern is longer than {MAX_PATTERN_LENGTH} characters")
    try:
        _compile_regex(pattern)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise QueryError(
            f"invalid regex (RE2 syntax; no backreferences or lookaround): {reason}"
        ) from exc
    return pattern


def _haversine(lon: float, lat: float, lon0: float, lat0: float) -> float:
    p1, p2 = math.radians(lat), math.radians(lat0)
    dp, dl = p2 - p1, math.radians(lon0 - lon)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_MILES * math.asin(min(1.0, math.sqrt(a)))


def _jsonb_array(texts: list[str]) -> ColumnElement:
    """One bound text[] parameter of JSON documents, cast to jsonb[]."""
    return cast(literal(texts, ARRAY(Text)), ARRAY(JSONB))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class JsonSql:
    """SQL expressions over one property path of events.body, for one dialect."""

    def __init__(self, dialect: str, parts: list[str]) -> None:
        self.pg = dialect == "postgresql"
        self.parts = parts

    # -- reading ---------------------------------------------------------------------------
    def _sqlite_path(self, extra: list[int] | None = None) -> str:
        path = "$" + "".join(f'."{p}"' for p in self.parts)
        return path + "".join(f"[{i}]" for i in extra or [])

    def _pg_path(self, extra: list[int] | None = None) -> ColumnElement:
        return cast(pg_array([*self.parts, *(str(i) for i in extra or [])]), ARRAY(Text))

    def node(self, extra: list[int] | None = None) -> ColumnElement:
        """PostgreSQL: the jsonb value at the path (SQL NULL when missing)."""
        return Event.body.op("#>", return_type=JSONB)(self._pg_path(extra))

    def kind(self, extra: list[int] | None = None) -> ColumnElement:
        """The JSON type at the path: SQLite's json_type names or PostgreSQL's jsonb_typeof."""
        if self.pg:
            return func.jsonb_typeof(self.node(extra))
        return func.json_type(Event.body, self._sqlite_path(extra))

    def scalar(self, extra: list[int] | None = None) -> ColumnElement:
        """SQLite: json_extract (numbers, text). PostgreSQL: the text form (#>>)."""
        if self.pg:
            return Event.body.op("#>>", return_type=Text)(self._pg_path(extra))
        return func.json_extract(Event.body, self._sqlite_path(extra))

    def present(self) -> ColumnElement:
        return self.kind().is_not(None)

    def is_string(self) -> ColumnElement:
        return self.kind() == ("string" if self.pg else "text")

    def is_number(self, extra: list[int] | None = None) -> ColumnElement:
        if self.pg:
            return self.kind(extra) == "number"
        return self.kind(extra).in_(("integer", "real"))

    def number(self, extra: list[int] | None = None) -> ColumnElement:
        if self.pg:
            # Cast only numbers: CASE guarantees the cast never sees a string.
            return case((self.is_number(extra), cast(self.scalar(extra), Float)), else_=None)
        return self.scalar(extra)

    # -- comparisons -----------------------------------------------------------------------
    def equals(self, value: Any) -> ColumnElement:
        if self.pg:
            return self.node() == cast(literal(orjson.dumps(value).decode()), JSONB)
        if value is None:
            return self.kind() == "null"
        if isinstance(value, bool):
            return self.kind() == ("true" if value else "false")
        # The value comparison comes first: SQLite stops at the first false term, so the
        # type check (another parse of the body) runs only for the rows that match.
        # json_extract keeps JSON types (text vs integer), so "3" never equals 3 even before it.
        if _is_number(value):
            return and_(self.scalar() == value, self.is_number())
        if isinstance(value, str):
            return and_(self.scalar() == value, self.is_string())
        # Objects and arrays: compare their minified JSON text.
        return and_(
            self.kind() == ("array" if isinstance(value, list) else "object"),
            self.scalar() == func.json(orjson.dumps(value).decode()),
        )

    def array_has(self, value: Any) -> ColumnElement:
        """The property is an array with an element equal to ``value`` (a scalar)."""
        if self.pg:
            return and_(
                self.kind() == "array",
                self.node().op("@>", return_type=Boolean)(
                    cast(literal(orjson.dumps([value]).decode()), JSONB)
                ),
            )
        each = func.json_each(Event.body, self._sqlite_path()).table_valued("value", "type")
        each = each.alias("je")
        if value is None:
            match = each.c.type == "null"
        elif isinstance(value, bool):
            match = each.c.type == ("true" if value else "false")
        elif _is_number(value):
            match = and_(each.c.type.in_(("integer", "real")), each.c.value == value)
        elif isinstance(value, str):
            match = and_(each.c.type == "text", each.c.value == value)
        else:
            return false()
        # json_extract of an array is its JSON text: the LIKE spares most rows the json_type
        # parse (SQLite re-parses the body for every JSON function call).
        return and_(
            self.scalar().like("[%"),
            self.kind() == "array",
            exists(select(literal(1)).select_from(each).where(match)),
        )

    def eq(self, value: Any) -> ColumnElement:
        # Keen's eq on a list property matches when the list holds the value.
        if isinstance(value, dict | list):
            return self.equals(value)
        if self.pg:
            # Containment answers both cases and is what the GIN index on body serves
            # (migration 0002): {"a": {"b": v}} or {"a": {"b": [v]}}.
            return or_(self._body_contains(value), self._body_contains([value]))
        return or_(self.equals(value), self.array_has(value))

    def eq_any(self, values: list[Any]) -> ColumnElement:
        """``in``: eq with any of the values.

        A few terms whatever the number of values, with the same JSON-type rules as eq: a
        chain of OR terms per value exceeds SQLite's expression depth (1000) and takes
        PostgreSQL (and SQLAlchemy's compiler) seconds for 1000 values. PostgreSQL: the body
        contains any of {path: v} / {path: [v]}, as one jsonb[] parameter.
        """
        if self.pg:
            return self._pg_eq_any(values)
        numbers = [v for v in values if _is_number(v)]
        strings = [v for v in values if isinstance(v, str)]
        kinds = sorted(
            {
                "null" if v is None else "true" if v else "false"
                for v in values
                if v is None or isinstance(v, bool)
            }
        )
        documents = [orjson.dumps(v).decode() for v in values if isinstance(v, dict | list)]
        terms: list[ColumnElement] = []
        if numbers:
            terms.append(and_(self.scalar().in_(numbers), self.is_number()))
        if strings:
            terms.append(and_(self.scalar().in_(strings), self.is_string()))
        if kinds:
            terms.append(self.kind().in_(kinds))
        if documents:
            # Minified JSON text; only arrays and objects extract as text starting [ or {.
            terms.append(
                and_(
                    self.kind().in_(("array", "object")),
                    self.scalar().in_([func.json(d) for d in documents]),
                )
            )
        if numbers or strings or kinds:
            each = func.json_each(Event.body, self._sqlite_path()).table_valued("value", "type")
            each = each.alias("je")
            element: list[ColumnElement] = []
            if numbers:
                element.append(
                    and_(each.c.type.in_(("integer", "real")), each.c.value.in_(numbers))
                )
            if strings:
                element.append(and_(each.c.type == "text", each.c.value.in_(strings)))
            if kinds:
                element.append(each.c.type.in_(kinds))
            terms.append(
                and_(
                    self.scalar().like("[%"),
                    self.kind() == "array",
                    exists(select(literal(1)).select_from(each).where(or_(*element))),
                )
            )
        return or_(*terms)

    def _pg_eq_any(self, values: list[Any]) -> ColumnElement:
        # `= ANY` of one jsonb[] parameter: PostgreSQL hashes the list (as for IN), so each
        # row costs one lookup for its value and one per element of an array property.
        node = self.node()
        every = [orjson.dumps(v).decode() for v in values]
        scalars = [orjson.dumps(v).decode() for v in values if not isinstance(v, dict | list)]
        terms: list[ColumnElement] = [node == any_(_jsonb_array(every))]
        if scalars:
            array = case(
                (func.jsonb_typeof(node) == "array", node),
                else_=cast(literal("[]"), JSONB),
            )
            each = func.jsonb_array_elements(array).table_valued("value").alias("je")
            terms.append(
                exists(
                    select(literal(1))
                    .select_from(each)
                    .where(each.c.value == any_(_jsonb_array(scalars)))
                )
            )
        return or_(*terms)

    def _body_contains(self, leaf: Any) -> ColumnElement:
        doc = leaf
        for part in reversed(self.parts):
            doc = {part: doc}
        return Event.body.op("@>", return_type=Boolean)(
            cast(literal(orjson.dumps(doc).decode()), JSONB)
        )

    def ordered(self, operator: str, value: Any) -> ColumnElement:
        if _is_number(value):
            left, guard = self.number(), self.is_number()
        elif isinstance(value, str):
            left, guard = self.scalar(), self.is_string()
        else:
            raise QueryError(f"{operator} compares with a number or a string")
        ops = {"lt": left < value, "lte": left <= value, "gt": left > value, "gte": left >= value}
        return and_(guard, ops[operator])

    def contains(self, value: Any) -> ColumnElement:
        if not isinstance(value, str):
            raise QueryError("contains takes a string")
        if self.pg:
            substring = func.strpos(self.scalar(), value) > 0
        else:
            substring = func.instr(self.scalar(), value) > 0
        return or_(and_(self.is_string(), substring), self.array_has(value))

    def regex(self, pattern: Any) -> ColumnElement:
        return and_(self.is_string(), self.scalar().regexp_match(check_regex(pattern)))

    def within(self, value: Any) -> ColumnElement:
        try:
            lon0, lat0 = (float(c) for c in value["coordinates"])
            radius = float(value["max_distance_miles"])
        except (TypeError, KeyError, ValueError) as exc:
            raise QueryError(
                "within takes {coordinates: [longitude, latitude], max_distance_miles}"
            ) from exc
        guard = and_(self.kind() == "array", self.is_number([0]), self.is_number([1]))
        if not self.pg:
            return and_(
                guard, func.inbound_miles(self.scalar([0]), self.scalar([1]), lon0, lat0) <= radius
            )
        lon, lat = self.number([0]), self.number([1])
        p1, p2 = func.radians(lat), math.radians(lat0)
        a = func.power(func.sin((p2 - p1) / 2), 2) + func.cos(p1) * math.cos(p2) * func.power(
            func.sin(func.radians(lon0 - lon) / 2), 2
        )
        distance = 2 * _EARTH_RADIUS_MILES * func.asin(func.least(1.0, func.sqrt(a)))
        return and_(guard, distance <= radius)


def _time_filter(column: ColumnElement, f: Filter) -> ColumnElement | None:
    """keen.timestamp / keen.created_at compared with an ISO string: use the column."""
    if f.operator not in ("eq", "ne", "lt", "lte", "gt", "gte") or not isinstance(
        f.property_value, str
    ):
        return None
    try:
        at: datetime = parse_instant(f.property_value, UTC, "x")
    except QueryError:
        return None
    ops = {
        "eq": column == at,
        "ne": column != at,
        "lt": column < at,
        "lte": column <= at,
        "gt": column > at,
        "gte": column >= at,
    }
    return ops[f.operator]


def filter_sql(dialect: str, f: Filter) -> ColumnElement:
    column = _TIME_COLUMNS.get(f.property_name)
    if column is not None:
        expr = _time_filter(column, f)
        if expr is not None:
            return expr
    path = JsonSql(dialect, split_path(f.property_name))
    value, op = f.property_value, f.operator
    if op == "eq":
        return path.eq(value)
    if op == "ne":
        return and_(path.present(), not_(func.coalesce(path.eq(value), false())))
    if op in ("lt", "lte", "gt", "gte"):
        return path.ordered(op, value)
    if op == "exists":
        if not isinstance(value, bool):
            raise QueryError("exists takes true or false")
        return path.present() if value else path.kind().is_(None)
    if op == "in":
        if not isinstance(value, list) or not value:
            raise QueryError("in takes a non-empty list of values")
        return path.eq_any(value)
    if op == "contains":
        return path.contains(value)
    if op == "not_contains":
        return and_(path.present(), not_(func.coalesce(path.contains(value), false())))
    if op == "regex":
        return path.regex(value)
    if op == "within":
        return path.within(value)
    raise QueryError(f"unknown filter operator {op!r}")


def filters_sql(dialect: str, filters: list[Filter]) -> ColumnElement:
    if not filters:
        return true()
    return and_(*(filter_sql(dialect, f) for f in filters))
