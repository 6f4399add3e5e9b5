"""The query builder (app/api/query_build.py) without a server: its SQLite SQL is run against
an in-memory database holding a few events; its PostgreSQL SQL is compiled with the
PostgreSQL dialect and compared with the statement (and bound values) it must send.

What the filters mean is pinned from README.md's "Query semantics": `exists` means present
(even if null); `ne` and `not_contains` require the property to be present; `eq`, `in` and
`contains` also match elements of list properties; a JSON string never equals a number.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Boolean, Engine, Float, Text, delete, event, insert, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB

from app.api import query_build as qb
from app.api.query_build import (
    MAX_PATTERN_LENGTH,
    OPERATORS,
    Filter,
    FilterLimits,
    check_regex,
    filter_sql,
    filters_sql,
    parse_filters,
    register_sqlite_functions,
    split_path,
)
from app.api.timeframes import QueryError
from app.store.db import make_engine
from app.store.models import Base, Event

AT = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine() -> Engine:
    eng = make_engine("sqlite://")  # in memory: one connection per thread keeps the data

    @event.listens_for(eng, "connect")
    def _functions(dbapi_conn, _record) -> None:  # noqa: ANN001 - DBAPI hook
        register_sqlite_functions(dbapi_conn)

    Base.metadata.create_all(eng)
    return eng


def _rows(bodies: list[Any], times: list[datetime] | None = None) -> list[dict]:
    return [
        {
            "id": i,
            "project_id": "p",
            "collection": "c",
            "keen_id": f"k{i}",
            "keen_timestamp": (times or [AT] * len(bodies))[i],
            "created_at": (times or [AT] * len(bodies))[i],
            "body": body,
        }
        for i, body in enumerate(bodies)
    ]


def run(engine: Engine, bodies: list[Any], filters: Any, times: list[datetime] | None = None):
    """The indexes of ``bodies`` the filters (a raw Keen filter list) select on SQLite."""
    parsed = parse_filters(filters)
    with engine.begin() as conn:
        conn.execute(delete(Event))
        conn.execute(insert(Event), _rows(bodies, times))
        where = filters_sql("sqlite", parsed)
        return sorted(conn.execute(select(Event.id).where(where)).scalars())


def hits(engine: Engine, bodies: list[Any], name: str, op: str, value: Any) -> list[int]:
    return run(engine, bodies, [{"property_name": name, "operator": op, "property_value": value}])


# ------------------------------------------------------------------------------------------
# Property paths


def test_split_path_splits_at_dots() -> None:
    assert split_path("a") == ["a"]
    assert split_path("a.b c.d-e") == ["a", "b c", "d-e"]
    assert split_path(".".join(["x"] * 32)) == ["x"] * 32
    assert split_path("n" * 256) == ["n" * 256]


@pytest.mark.parametrize("name", [None, "", 5, ["a"]])
def test_split_path_needs_a_non_empty_string(name: object) -> None:
    with pytest.raises(QueryError, match="^a property name is a non-empty string$"):
        split_path(name)


def test_split_path_length_depth_and_names() -> None:
    # 32 levels of at most 256 characters, with dots: 32 * 257 = 8224 at most.
    with pytest.raises(QueryError, match="^property name is longer than 8224$"):
        split_path("a" * 8225)
    # Exactly 8224 is not refused for its length (a single over-long name instead).
    with pytest.raises(QueryError, match="is not a dotted path of property names$"):
        split_path("a" * 8224)
    with pytest.raises(QueryError, match=r"^property name 'x\.x.*\.\.\. is deeper than 32 levels$"):
        split_path(".".join(["x"] * 33))
    long_deep = ".".join(["y" * 100] * 33)
    with pytest.raises(QueryError) as deep:
        split_path(long_deep)
    assert str(deep.value) == f"property name {long_deep[:80]!r}... is deeper than 32 levels"
    for bad in ("a..b", ".a", "a.", "n" * 257, 'a."b"', "a\\b", 'q"'):
        with pytest.raises(QueryError) as exc:
            split_path(bad)
        assert (
            str(exc.value) == f"property name {bad[:300]!r} is not a dotted path of property names"
        )
    wide = "w" * 400
    with pytest.raises(QueryError) as exc:
        split_path(wide)
    assert str(exc.value) == f"property name {wide[:300]!r} is not a dotted path of property names"


# ------------------------------------------------------------------------------------------
# Parsing filters


def test_the_operators_are_keens() -> None:
    assert OPERATORS == {
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
    assert FilterLimits() == FilterLimits(max_filters=50, max_in_values=1000)
    assert MAX_PATTERN_LENGTH == 512


def test_no_filters() -> None:
    assert parse_filters(None) == []
    assert parse_filters("") == []
    assert parse_filters([]) == []
    assert filters_sql("sqlite", []).compile().string == "true"


def test_parse_filters_keeps_each_filter() -> None:
    raw = [
        {"property_name": "a.b", "operator": "eq", "property_value": 1},
        {"property_name": "c", "operator": "exists"},
    ]
    assert parse_filters(raw) == [Filter("a.b", "eq", 1), Filter("c", "exists", None)]
    assert parse_filters(raw, FilterLimits()) == parse_filters(raw)


@pytest.mark.parametrize("raw", [{"property_name": "a"}, "eq", 5, ("a",)])
def test_filters_are_a_list(raw: object) -> None:
    with pytest.raises(QueryError, match=r"^filters is a list of \{property_name"):
        parse_filters(raw)


@pytest.mark.parametrize(
    "item",
    [
        "a",
        ["property_name", "operator"],
        {"operator": "eq", "property_value": 1},
        {"property_name": "a", "property_value": 1},
    ],
)
def test_each_filter_names_a_property_and_an_operator(item: object) -> None:
    with pytest.raises(QueryError, match=r"^each filter is \{property_name, operator"):
        parse_filters([item])


def test_unknown_operator_and_bad_name() -> None:
    with pytest.raises(QueryError, match="^unknown filter operator 'like'$"):
        parse_filters([{"property_name": "a", "operator": "like", "property_value": 1}])
    with pytest.raises(QueryError, match="not a dotted path"):
        parse_filters([{"property_name": "a..b", "operator": "eq", "property_value": 1}])
    with pytest.raises(QueryError, match="non-empty string"):
        parse_filters([{"property_name": "", "operator": "eq", "property_value": 1}])


def test_filter_limits() -> None:
    one = {"property_name": "a", "operator": "eq", "property_value": 1}
    limits = FilterLimits(max_filters=3, max_in_values=2)
    assert len(parse_filters([one] * 3, limits)) == 3
    with pytest.raises(QueryError, match="^4 filters; a query may have at most 3$"):
        parse_filters([one] * 4, limits)
    # Without limits, any number.
    assert len(parse_filters([one] * 60)) == 60
    with pytest.raises(QueryError, match="^51 filters; a query may have at most 50$"):
        parse_filters([one] * 51, FilterLimits())

    def in_filter(n: int, op: str = "in") -> list[dict]:
        return [{"property_name": "a", "operator": op, "property_value": list(range(n))}]

    assert parse_filters(in_filter(2), limits)[0].property_value == [0, 1]
    with pytest.raises(QueryError, match="^an in filter has 3 values; at most 2$"):
        parse_filters(in_filter(3), limits)
    # Only `in` lists are counted, and only under limits.
    assert parse_filters(in_filter(3, "eq"), limits)[0].operator == "eq"
    assert len(parse_filters(in_filter(3))[0].property_value) == 3
    assert len(parse_filters(in_filter(1000), FilterLimits())[0].property_value) == 1000
    with pytest.raises(QueryError, match="^an in filter has 1001 values; at most 1000$"):
        parse_filters(in_filter(1001), FilterLimits())
    # A non-list in value is not counted here (filter_sql refuses it).
    assert parse_filters(
        [{"property_name": "a", "operator": "in", "property_value": "abc"}], limits
    ) == [Filter("a", "in", "abc")]


def test_values_must_fit_in_64_bits() -> None:
    for value in (2**63 - 1, -(2**63), [2**63 - 1], {"v": 1.5}):
        parse_filters([{"property_name": "a", "operator": "eq", "property_value": value}])
    for value in (2**64, [1, 2**64], {"v": -(2**64)}):
        with pytest.raises(QueryError, match="^property_value: numbers must fit in 64 bits$"):
            parse_filters([{"property_name": "a", "operator": "eq", "property_value": value}])


# ------------------------------------------------------------------------------------------
# Regex patterns and the SQLite functions


def test_check_regex() -> None:
    assert check_regex("^a+b$") == "^a+b$"
    assert check_regex("x" * 512) == "x" * 512
    with pytest.raises(QueryError, match="^regex pattern is longer than 512 characters$"):
        check_regex("x" * 513)
    for pattern in (None, 5, ["a"]):
        with pytest.raises(QueryError, match="^regex takes a pattern string$"):
            check_regex(pattern)
    with pytest.raises(QueryError) as exc:
        check_regex("(")
    assert str(exc.value) == (
        "invalid regex (RE2 syntax; no backreferences or lookaround): missing ): ("
    )
    with pytest.raises(QueryError, match="^invalid regex .*invalid escape sequence"):
        check_regex(r"(a)\1")
    with pytest.raises(QueryError, match="^invalid regex"):
        check_regex("(?=a)")


def test_sqlite_regexp_and_miles_functions(engine: Engine) -> None:
    with engine.connect() as conn:

        def one(sql: str) -> Any:
            return conn.execute(text(sql)).scalar()

        assert one("SELECT regexp('b+', 'abbc')") == 1
        assert one("SELECT 'abbc' REGEXP 'b+'") == 1
        assert one("SELECT regexp('^b', 'abc')") == 0
        assert one("SELECT regexp(NULL, 'abc')") is None
        assert one("SELECT regexp('a', 5)") is None
        assert one("SELECT regexp('a', NULL)") is None
        assert one("SELECT regexp('(', 'abc')") == 0  # not RE2 syntax: no match, no error
        assert one("SELECT inbound_miles(0, 0, 0, 0)") == 0.0
        assert one("SELECT inbound_miles(0.0, 1.0, 0, 0)") == pytest.approx(69.0934, abs=1e-3)
        assert one("SELECT inbound_miles(1, 0, 0, 0)") == pytest.approx(69.0934, abs=1e-3)
        assert one("SELECT inbound_miles('a', 0, 0, 0)") is None
        assert one("SELECT inbound_miles(0, 'a', 0, 0)") is None
        assert one("SELECT inbound_miles(NULL, 0, 0, 0)") is None


def test_haversine() -> None:
    r = 3958.7613
    assert qb._haversine(0, 0, 0, 0) == 0.0
    # A quarter of a meridian, half the equator; antipodes (asin's argument capped at 1).
    assert qb._haversine(0, 0, 0, 90) == pytest.approx(math.pi * r / 2)
    assert qb._haversine(0, 0, 180, 0) == pytest.approx(math.pi * r)
    assert qb._haversine(-90, 0, 90, 0) == pytest.approx(math.pi * r)
    assert qb._haversine(0, -90, 0, 90) == pytest.approx(math.pi * r)
    # Paris (2.3522, 48.8566) - London (-0.1276, 51.5072): about 213.5 miles.
    assert qb._haversine(2.3522, 48.8566, -0.1276, 51.5072) == pytest.approx(213.5, abs=0.5)
    assert qb._haversine(-0.1276, 51.5072, 2.3522, 48.8566) == pytest.approx(213.5, abs=0.5)
    # Longitude difference shrinks with latitude: 1 degree at 60 N is about half of one at 0.
    assert qb._haversine(0, 60, 1, 60) == pytest.approx(34.54, abs=0.05)


# ------------------------------------------------------------------------------------------
# eq: JSON types are kept apart; lists match by element


def test_eq_numbers_strings_booleans_null(engine: Engine) -> None:
    bodies = [
        {"a": 5},
        {"a": "5"},
        {"a": 5.0},
        {"a": True},
        {"a": 1},
        {"a": None},
        {"a": False},
        {"a": 0},
        {},
        {"a": "x"},
        {"a": 5.5},
    ]
    assert hits(engine, bodies, "a", "eq", 5) == [0, 2]
    assert hits(engine, bodies, "a", "eq", 5.5) == [10]
    assert hits(engine, bodies, "a", "eq", "5") == [1]
    assert hits(engine, bodies, "a", "eq", True) == [3]
    assert hits(engine, bodies, "a", "eq", 1) == [4]
    assert hits(engine, bodies, "a", "eq", False) == [6]
    assert hits(engine, bodies, "a", "eq", 0) == [7]
    assert hits(engine, bodies, "a", "eq", None) == [5]
    assert hits(engine, bodies, "a", "eq", "x") == [9]


def test_eq_nested_paths_and_odd_names(engine: Engine) -> None:
    bodies = [{"a": {"b c": {"d-e": 1}}}, {"a": {"b c": 1}}, {"a.b c.d-e": 1}]
    assert hits(engine, bodies, "a.b c.d-e", "eq", 1) == [0]
    assert hits(engine, bodies, "a.b c", "eq", 1) == [1]


def test_eq_matches_list_elements(engine: Engine) -> None:
    bodies = [
        {"a": [1, 2]},
        {"a": ["5", 7]},
        {"a": [True]},
        {"a": [None, "x"]},
        {"a": [[1]]},
        {"a": {"k": 1}},
        {"a": [1.5]},
        {"a": [False]},
        {"a": "[1, 2]"},
        {"a": "[x"},
        {"a": [0]},
    ]
    assert hits(engine, bodies, "a", "eq", 1) == [0]
    assert hits(engine, bodies, "a", "eq", 7) == [1]
    assert hits(engine, bodies, "a", "eq", 5) == []
    assert hits(engine, bodies, "a", "eq", "5") == [1]
    assert hits(engine, bodies, "a", "eq", True) == [2]
    assert hits(engine, bodies, "a", "eq", False) == [7]
    assert hits(engine, bodies, "a", "eq", 0) == [10]
    assert hits(engine, bodies, "a", "eq", None) == [3]
    assert hits(engine, bodies, "a", "eq", "x") == [3]
    assert hits(engine, bodies, "a", "eq", 1.5) == [6]
    assert hits(engine, bodies, "a", "eq", "[x") == [9]


def test_eq_documents_compare_whole(engine: Engine) -> None:
    bodies = [
        {"a": [1, 2]},
        {"a": [2, 1]},
        {"a": "[1,2]"},
        {"a": {"k": 1}},
        {"a": {"k": 2}},
        {"a": '{"k":1}'},
        {"a": [[1, 2]]},
        {"a": []},
        {"a": {}},
    ]
    assert hits(engine, bodies, "a", "eq", [1, 2]) == [0]
    assert hits(engine, bodies, "a", "eq", {"k": 1}) == [3]
    assert hits(engine, bodies, "a", "eq", []) == [7]
    assert hits(engine, bodies, "a", "eq", {}) == [8]
    assert hits(engine, bodies, "a", "eq", "[1,2]") == [2]


def test_array_has_with_a_document_matches_nothing() -> None:
    # Only eq with a scalar asks for list elements; a document there is never an element.
    assert qb.JsonSql("sqlite", ["a"]).array_has({"k": 1}).compile().string == "false"
    assert qb.JsonSql("sqlite", ["a"]).array_has([1]).compile().string == "false"


# ------------------------------------------------------------------------------------------
# ne, exists


def test_ne_requires_the_property(engine: Engine) -> None:
    bodies = [{"a": 5}, {"a": 6}, {}, {"a": None}, {"a": "5"}, {"a": [5, 6]}, {"a": [6]}, {"b": 5}]
    assert hits(engine, bodies, "a", "ne", 5) == [1, 3, 4, 6]
    assert hits(engine, bodies, "a", "ne", None) == [0, 1, 4, 5, 6]
    assert hits(engine, bodies, "a", "ne", [5, 6]) == [0, 1, 3, 4, 6]


def test_exists_means_present_even_if_null(engine: Engine) -> None:
    bodies = [{"a": 1}, {"a": None}, {}, {"a": {"b": 1}}, {"a": []}, {"a": False}]
    assert hits(engine, bodies, "a", "exists", True) == [0, 1, 3, 4, 5]
    assert hits(engine, bodies, "a", "exists", False) == [2]
    assert hits(engine, bodies, "a.b", "exists", True) == [3]
    assert hits(engine, bodies, "a.b", "exists", False) == [0, 1, 2, 4, 5]
    for value in (1, "true", None):
        with pytest.raises(QueryError, match="^exists takes true or false$"):
            hits(engine, bodies, "a", "exists", value)


# ------------------------------------------------------------------------------------------
# lt, lte, gt, gte


def test_ordered_numbers_never_compare_with_strings(engine: Engine) -> None:
    bodies = [{"a": 1}, {"a": 2}, {"a": 3}, {"a": "2"}, {"a": True}, {}, {"a": [1]}, {"a": 2.5}]
    assert hits(engine, bodies, "a", "lt", 2) == [0]
    assert hits(engine, bodies, "a", "lte", 2) == [0, 1]
    assert hits(engine, bodies, "a", "gt", 2) == [2, 7]
    assert hits(engine, bodies, "a", "gte", 2) == [1, 2, 7]
    assert hits(engine, bodies, "a", "gt", 2.5) == [2]
    assert hits(engine, bodies, "a", "gte", 2.5) == [2, 7]


def test_ordered_strings(engine: Engine) -> None:
    bodies = [{"a": "b"}, {"a": "c"}, {"a": "d"}, {"a": 5}, {"a": ["c"]}, {"a": None}]
    assert hits(engine, bodies, "a", "lt", "c") == [0]
    assert hits(engine, bodies, "a", "lte", "c") == [0, 1]
    assert hits(engine, bodies, "a", "gt", "c") == [2]
    assert hits(engine, bodies, "a", "gte", "c") == [1, 2]


@pytest.mark.parametrize("value", [True, None, [1], {"a": 1}])
def test_ordered_needs_a_number_or_a_string(engine: Engine, value: object) -> None:
    with pytest.raises(QueryError, match="^gte compares with a number or a string$"):
        hits(engine, [{}], "a", "gte", value)
    with pytest.raises(QueryError, match="^lt compares with a number or a string$"):
        hits(engine, [{}], "a", "lt", value)


# ------------------------------------------------------------------------------------------
# in


def test_in_with_every_kind_of_value(engine: Engine) -> None:
    bodies = [
        {"a": 1},  # 0
        {"a": "1"},  # 1
        {"a": "x"},  # 2
        {"a": None},  # 3
        {"a": True},  # 4
        {"a": False},  # 5
        {"a": [9, 1]},  # 6
        {"a": ["x"]},  # 7
        {"a": [None]},  # 8
        {"a": [True]},  # 9
        {"a": [1, 2]},  # 10
        {"a": {"k": 1}},  # 11
        {},  # 12
        {"a": 2.5},  # 13
        {"a": [False]},  # 14
        {"a": "[1,2]"},  # 15
        {"a": 0},  # 16
    ]
    assert hits(engine, bodies, "a", "in", [1]) == [0, 6, 10]
    assert hits(engine, bodies, "a", "in", [1, 2.5]) == [0, 6, 10, 13]
    assert hits(engine, bodies, "a", "in", ["1"]) == [1]
    assert hits(engine, bodies, "a", "in", ["x", "1"]) == [1, 2, 7]
    assert hits(engine, bodies, "a", "in", [None]) == [3, 8]
    assert hits(engine, bodies, "a", "in", [True]) == [4, 9]
    assert hits(engine, bodies, "a", "in", [False]) == [5, 14]
    assert hits(engine, bodies, "a", "in", [True, None]) == [3, 4, 8, 9]
    assert hits(engine, bodies, "a", "in", [[1, 2]]) == [10]
    assert hits(engine, bodies, "a", "in", [{"k": 1}, [9, 1]]) == [6, 11]
    assert hits(engine, bodies, "a", "in", [0]) == [16]
    assert hits(engine, bodies, "a", "in", ["[1,2]"]) == [15]
    assert hits(engine, bodies, "a", "in", [2, "x", None, {"k": 1}]) == [2, 3, 7, 8, 10, 11]


def test_in_needs_a_non_empty_list(engine: Engine) -> None:
    for value in ([], "a", 1, None, {"a": 1}):
        with pytest.raises(QueryError, match="^in takes a non-empty list of values$"):
            hits(engine, [{}], "a", "in", value)


def test_in_with_many_values_stays_a_few_terms(engine: Engine) -> None:
    values = list(range(1000)) + [str(i) for i in range(1000)]
    bodies = [{"a": 999}, {"a": "999"}, {"a": 1000}, {"a": [5000, 7]}]
    assert hits(engine, bodies, "a", "in", values) == [0, 1, 3]


# ------------------------------------------------------------------------------------------
# contains, not_contains, regex


def test_contains_substrings_and_list_elements(engine: Engine) -> None:
    bodies = [
        {"a": "hello world"},
        {"a": "world"},
        {"a": "WORLD"},
        {"a": ["world"]},
        {"a": ["hello world"]},
        {"a": 5},
        {},
        {"a": {"world": 1}},
        {"a": "wor"},
    ]
    assert hits(engine, bodies, "a", "contains", "world") == [0, 1, 3]
    assert hits(engine, bodies, "a", "contains", "hello") == [0]
    assert hits(engine, bodies, "a", "contains", "h") == [0]
    assert hits(engine, bodies, "a", "not_contains", "world") == [2, 4, 5, 7, 8]
    for value in (5, None, ["world"]):
        with pytest.raises(QueryError, match="^contains takes a string$"):
            hits(engine, bodies, "a", "contains", value)
        with pytest.raises(QueryError, match="^contains takes a string$"):
            hits(engine, bodies, "a", "not_contains", value)


def test_regex_searches_strings_only(engine: Engine) -> None:
    bodies = [{"a": "abc"}, {"a": "xabcx"}, {"a": "ABC"}, {"a": ["abc"]}, {"a": 123}, {}]
    assert hits(engine, bodies, "a", "regex", "abc") == [0, 1]
    assert hits(engine, bodies, "a", "regex", "^abc$") == [0]
    assert hits(engine, bodies, "a", "regex", "(?i)^abc$") == [0, 2]
    assert hits(engine, bodies, "a", "regex", "^1") == []
    with pytest.raises(QueryError, match="^invalid regex"):
        hits(engine, bodies, "a", "regex", "(a)\\1")
    with pytest.raises(QueryError, match="^regex takes a pattern string$"):
        hits(engine, bodies, "a", "regex", 5)


# ------------------------------------------------------------------------------------------
# within


def test_within_miles_of_a_point(engine: Engine) -> None:
    # Coordinates are [longitude, latitude], as GeoJSON and Keen's ip_to_geo give them.
    bodies = [
        {"p": [0, 0]},  # 0: the centre
        {"p": [0, 1]},  # 1: 69.09 miles north
        {"p": [1, 0]},  # 2: 69.09 miles east
        {"p": [0.0, 2.0]},  # 3: 138 miles
        {"p": ["0", 0]},  # 4: a string longitude
        {"p": [0, "0"]},  # 5: a string latitude
        {"p": {"0": 0, "1": 0}},  # 6: not an array
        {},  # 7
        {"p": [0]},  # 8: no latitude
        {"p": [180, 0]},  # 9: the other side
        {"p": [0, -1]},  # 10: south
    ]
    within = {"coordinates": [0, 0], "max_distance_miles": 70}
    assert hits(engine, bodies, "p", "within", within) == [0, 1, 2, 10]
    at_69 = {"coordinates": [0, 0], "max_distance_miles": 69}
    assert hits(engine, bodies, "p", "within", at_69) == [0]
    # From (0, 1): the centre and (0, 2) are 69 miles away, (1, 0) about 97.7.
    north = {"coordinates": ["0", "1"], "max_distance_miles": "70"}
    assert hits(engine, bodies, "p", "within", north) == [0, 1, 3]
    east = {"coordinates": [1, 0], "max_distance_miles": 0}
    assert hits(engine, bodies, "p", "within", east) == [2]
    far = {"coordinates": [0, 0], "max_distance_miles": 12451}
    assert hits(engine, bodies, "p", "within", far) == [0, 1, 2, 3, 9, 10]


def test_within_radius_is_inclusive(engine: Engine) -> None:
    exact = qb._haversine(0.0, 1.0, 0.0, 0.0)
    bodies = [{"p": [0, 1]}]
    assert hits(
        engine, bodies, "p", "within", {"coordinates": [0, 0], "max_distance_miles": exact}
    ) == [0]


@pytest.mark.parametrize(
    "value",
    [
        None,
        5,
        {"coordinates": [0, 0]},
        {"max_distance_miles": 1},
        {"coordinates": [0], "max_distance_miles": 1},
        {"coordinates": [0, 0, 0], "max_distance_miles": 1},
        {"coordinates": ["a", 0], "max_distance_miles": 1},
        {"coordinates": [0, 0], "max_distance_miles": "far"},
        {"coordinates": [0, 0], "max_distance_miles": None},
        {"coordinates": 5, "max_distance_miles": 1},
    ],
)
def test_within_needs_coordinates_and_a_distance(engine: Engine, value: object) -> None:
    with pytest.raises(QueryError) as exc:
        hits(engine, [{}], "p", "within", value)
    assert str(exc.value) == "within takes {coordinates: [longitude, latitude], max_distance_miles}"


# ------------------------------------------------------------------------------------------
# keen.timestamp / keen.created_at: the indexed columns when compared with an ISO string


def test_time_properties_use_the_columns(engine: Engine) -> None:
    times = [datetime(2024, 1, d, tzinfo=UTC) for d in (1, 2, 3)]
    # The bodies' own keen values disagree with the columns: the column must answer.
    bodies = [{"keen": {"timestamp": "no", "created_at": "no"}} for _ in times]

    def q(name: str, op: str, value: str) -> list[int]:
        f = [{"property_name": name, "operator": op, "property_value": value}]
        return run(engine, bodies, f, times)

    day2 = "2024-01-02T00:00:00Z"
    for name in ("keen.timestamp", "keen.created_at"):
        assert q(name, "eq", day2) == [1]
        assert q(name, "ne", day2) == [0, 2]
        assert q(name, "lt", day2) == [0]
        assert q(name, "lte", day2) == [0, 1]
        assert q(name, "gt", day2) == [2]
        assert q(name, "gte", day2) == [1, 2]
        # Another zone's offset, the same instant; a naive time is UTC.
        assert q(name, "eq", "2024-01-02T01:00:00+01:00") == [1]
        assert q(name, "eq", "2024-01-02T00:00:00") == [1]
        # Not a timestamp: the JSON property, as any other.
        assert q(name, "eq", "no") == [0, 1, 2]
        assert q(name, "ne", "no") == []


def test_time_properties_fall_back_to_the_body(engine: Engine) -> None:
    times = [datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)]
    bodies = [
        {"keen": {"timestamp": "2024-01-02T00:00:00.000Z", "created_at": 7}},
        {"keen": {"timestamp": "x", "created_at": 8}},
    ]

    def q(name: str, op: str, value: Any) -> list[int]:
        f = [{"property_name": name, "operator": op, "property_value": value}]
        return run(engine, bodies, f, times)

    # Not an ISO comparison (a number, an operator without a column form): the body.
    assert q("keen.created_at", "eq", 7) == [0]
    assert q("keen.created_at", "gte", 8) == [1]
    assert q("keen.timestamp", "contains", "2024-01-02") == [0]
    assert q("keen.timestamp", "in", ["x"]) == [1]
    assert q("keen.timestamp", "regex", "^2024") == [0]
    # An ISO string: the column (row 1 is the 2nd of January), not the body's text.
    assert q("keen.timestamp", "eq", "2024-01-02T00:00:00.000Z") == [1]
    assert q("keen.timestamp", "exists", True) == [0, 1]


def test_time_filter_only_for_iso_comparisons() -> None:
    column = Event.keen_timestamp
    assert qb._time_filter(column, Filter("keen.timestamp", "exists", True)) is None
    assert qb._time_filter(column, Filter("keen.timestamp", "contains", "2024-01-01")) is None
    assert qb._time_filter(column, Filter("keen.timestamp", "eq", 5)) is None
    assert qb._time_filter(column, Filter("keen.timestamp", "eq", "soon")) is None
    expr = qb._time_filter(column, Filter("keen.timestamp", "lte", "2024-01-01T00:00:00Z"))
    assert expr is not None
    compiled = expr.compile(dialect=postgresql.dialect())
    assert (
        str(compiled) == "events.keen_timestamp <= %(keen_timestamp_1)s::TIMESTAMP WITH TIME ZONE"
    )
    assert compiled.params == {"keen_timestamp_1": datetime(2024, 1, 1, tzinfo=UTC)}


# ------------------------------------------------------------------------------------------
# Several filters; unknown operators reaching filter_sql


def test_filters_are_anded(engine: Engine) -> None:
    bodies = [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}]
    both = [
        {"property_name": "a", "operator": "eq", "property_value": 1},
        {"property_name": "b", "operator": "eq", "property_value": "x"},
    ]
    assert run(engine, bodies, both) == [0]
    assert run(engine, bodies, both[:1]) == [0, 1]
    assert run(engine, bodies, []) == [0, 1, 2]
    assert run(engine, bodies, None) == [0, 1, 2]


def test_filter_sql_refuses_an_unknown_operator() -> None:
    for dialect in ("sqlite", "postgresql"):
        with pytest.raises(QueryError, match="^unknown filter operator 'like'$"):
            filter_sql(dialect, Filter("a", "like", 1))


def test_dialect_is_postgresql_only_by_name() -> None:
    assert qb.JsonSql("postgresql", ["a"]).pg is True
    assert qb.JsonSql("sqlite", ["a"]).pg is False
    assert qb.JsonSql("mysql", ["a"]).pg is False
    assert qb.JsonSql("sqlite", ["a", "b"]).parts == ["a", "b"]


# ------------------------------------------------------------------------------------------
# PostgreSQL: the statement sent, compiled (no server here). Each is the SQL the paragraph
# above describes: containment for eq (the GIN index), = ANY of one jsonb[] parameter for in,
# CASE-guarded casts so a non-number is never cast to float.


def pg(name: str, op: str, value: Any) -> tuple[str, dict]:
    compiled = filter_sql("postgresql", Filter(name, op, value)).compile(
        dialect=postgresql.dialect()
    )
    return str(compiled), compiled.params


NODE = "events.body #> CAST(ARRAY[%(param_{n})s::VARCHAR] AS TEXT[])"
TEXT = "events.body #>> CAST(ARRAY[%(param_{n})s::VARCHAR] AS TEXT[])"


def test_pg_eq_scalar_is_body_containment() -> None:
    sql, params = pg("a.b", "eq", 5)
    assert sql == (
        "(events.body @> CAST(%(param_1)s::VARCHAR AS JSONB)) OR "
        "(events.body @> CAST(%(param_2)s::VARCHAR AS JSONB))"
    )
    assert params == {"param_1": '{"a":{"b":5}}', "param_2": '{"a":{"b":[5]}}'}
    assert pg("a", "eq", "5")[1] == {"param_1": '{"a":"5"}', "param_2": '{"a":["5"]}'}
    assert pg("a", "eq", None)[1] == {"param_1": '{"a":null}', "param_2": '{"a":[null]}'}
    assert pg("a", "eq", True)[1] == {"param_1": '{"a":true}', "param_2": '{"a":[true]}'}


def test_pg_eq_document_is_jsonb_equality() -> None:
    sql, params = pg("a.b", "eq", [1, {"k": "v"}])
    assert sql == (
        "(events.body #> CAST(ARRAY[%(param_1)s::VARCHAR, %(param_2)s::VARCHAR] AS TEXT[])) "
        "= CAST(%(param_3)s::VARCHAR AS JSONB)"
    )
    assert params == {"param_1": "a", "param_2": "b", "param_3": '[1,{"k":"v"}]'}
    assert pg("a", "eq", {"k": 1})[1] == {"param_1": "a", "param_2": '{"k":1}'}


def test_pg_ne() -> None:
    sql, params = pg("a", "ne", "x")
    assert sql == (
        f"jsonb_typeof({NODE.format(n=1)}) IS NOT NULL AND NOT coalesce("
        "(events.body @> CAST(%(param_2)s::VARCHAR AS JSONB)) OR "
        "(events.body @> CAST(%(param_3)s::VARCHAR AS JSONB)), false)"
    )
    assert params == {"param_1": "a", "param_2": '{"a":"x"}', "param_3": '{"a":["x"]}'}


def test_pg_ordered() -> None:
    sql, params = pg("a", "lt", 3)
    assert sql == (
        f"jsonb_typeof({NODE.format(n=1)}) = %(jsonb_typeof_1)s::VARCHAR AND "
        f"CASE WHEN (jsonb_typeof({NODE.format(n=2)}) = %(jsonb_typeof_2)s::VARCHAR) "
        f"THEN CAST({TEXT.format(n=3)} AS FLOAT) END < %(param_4)s::INTEGER"
    )
    assert params == {
        "param_1": "a",
        "jsonb_typeof_1": "number",
        "param_2": "a",
        "jsonb_typeof_2": "number",
        "param_3": "a",
        "param_4": 3,
    }
    sql, params = pg("a", "gte", "m")
    assert sql == (
        f"jsonb_typeof({NODE.format(n=1)}) = %(jsonb_typeof_1)s::VARCHAR AND "
        f"({TEXT.format(n=2)}) >= %(param_3)s::VARCHAR"
    )
    assert params == {"param_1": "a", "jsonb_typeof_1": "string", "param_2": "a", "param_3": "m"}
    assert pg("a", "lte", 1.5)[0].endswith("END <= %(param_4)s")
    assert pg("a", "gt", 1)[0].endswith("END > %(param_4)s::INTEGER")


def test_pg_exists() -> None:
    assert pg("a", "exists", True) == (
        f"jsonb_typeof({NODE.format(n=1)}) IS NOT NULL",
        {"param_1": "a"},
    )
    assert pg("a", "exists", False) == (
        f"jsonb_typeof({NODE.format(n=1)}) IS NULL",
        {"param_1": "a"},
    )


def test_pg_in_is_any_of_one_jsonb_array() -> None:
    sql, params = pg("a", "in", [1, "x", None, [2]])
    node = NODE.format(n=1)
    assert sql == (
        f"({node}) = ANY (CAST(%(param_2)s::TEXT[] AS JSONB[])) OR "
        "(EXISTS (SELECT %(param_3)s::INTEGER AS anon_1 \n"
        f"FROM jsonb_array_elements(CASE WHEN (jsonb_typeof({node}) = "
        f"%(jsonb_typeof_1)s::VARCHAR) THEN {node} ELSE CAST(%(param_4)s::VARCHAR AS JSONB) END)"
        " AS je \nWHERE je.value = ANY (CAST(%(param_5)s::TEXT[] AS JSONB[]))))"
    )
    assert params == {
        "param_1": "a",
        "param_2": ["1", '"x"', "null", "[2]"],
        "param_3": 1,
        "jsonb_typeof_1": "array",
        "param_4": "[]",
        "param_5": ["1", '"x"', "null"],
    }
    # Documents only: no element search.
    assert pg("a", "in", [[2], {"k": 1}]) == (
        f"({node}) = ANY (CAST(%(param_2)s::TEXT[] AS JSONB[]))",
        {"param_1": "a", "param_2": ["[2]", '{"k":1}']},
    )


def test_pg_contains_and_not_contains() -> None:
    contains = (
        "jsonb_typeof({n1}) = %(jsonb_typeof_{t1})s::VARCHAR AND "
        "strpos({t}, %(strpos_1)s::VARCHAR) > %(strpos_2)s::INTEGER OR "
        "jsonb_typeof({n3}) = %(jsonb_typeof_{t2})s::VARCHAR AND "
        "(({n4}) @> CAST(%(param_{p})s::VARCHAR AS JSONB))"
    )
    sql, params = pg("a", "contains", "x")
    assert sql == contains.format(
        n1=NODE.format(n=1),
        t=TEXT.format(n=2),
        n3=NODE.format(n=3),
        n4=NODE.format(n=4),
        t1=1,
        t2=2,
        p=5,
    )
    assert params == {
        "param_1": "a",
        "jsonb_typeof_1": "string",
        "param_2": "a",
        "strpos_1": "x",
        "strpos_2": 0,
        "param_3": "a",
        "jsonb_typeof_2": "array",
        "param_4": "a",
        "param_5": '["x"]',
    }
    sql, params = pg("a", "not_contains", "x")
    inner = contains.format(
        n1=NODE.format(n=2),
        t=TEXT.format(n=3),
        n3=NODE.format(n=4),
        n4=NODE.format(n=5),
        t1=1,
        t2=2,
        p=6,
    )
    assert sql == f"jsonb_typeof({NODE.format(n=1)}) IS NOT NULL AND NOT coalesce({inner}, false)"
    assert params["strpos_1"] == "x" and params["param_6"] == '["x"]'


def test_pg_regex() -> None:
    assert pg("a", "regex", "^x") == (
        f"jsonb_typeof({NODE.format(n=1)}) = %(jsonb_typeof_1)s::VARCHAR AND "
        f"({TEXT.format(n=2)}) ~ %(param_3)s::VARCHAR",
        {"param_1": "a", "jsonb_typeof_1": "string", "param_2": "a", "param_3": "^x"},
    )


def test_pg_within_is_the_haversine_in_sql() -> None:
    sql, params = pg("p", "within", {"coordinates": [1, 2], "max_distance_miles": 3})

    def node(a: int, b: int) -> str:
        return (
            f"events.body #> CAST(ARRAY[%(param_{a})s::VARCHAR, %(param_{b})s::VARCHAR] AS TEXT[])"
        )

    def number(a: int, b: int, t: int) -> str:
        text_ = (
            f"events.body #>> CAST(ARRAY[%(param_{a + 2})s::VARCHAR, %(param_{b + 2})s::VARCHAR]"
            " AS TEXT[])"
        )
        return (
            f"CASE WHEN (jsonb_typeof({node(a, b)}) = %(jsonb_typeof_{t})s::VARCHAR) "
            f"THEN CAST({text_} AS FLOAT) END"
        )

    assert sql == (
        f"jsonb_typeof({NODE.format(n=1)}) = %(jsonb_typeof_1)s::VARCHAR AND "
        f"jsonb_typeof({node(2, 3)}) = %(jsonb_typeof_2)s::VARCHAR AND "
        f"jsonb_typeof({node(4, 5)}) = %(jsonb_typeof_3)s::VARCHAR AND "
        "%(asin_1)s * asin(least(%(least_1)s, sqrt("
        f"power(sin((%(radians_1)s - radians({number(6, 7, 4)})) "
        "/ CAST(%(param_10)s::INTEGER AS NUMERIC)), %(power_1)s::INTEGER) + "
        f"cos(radians({number(6, 7, 4)})) * %(cos_1)s * "
        f"power(sin(radians(%(param_11)s - {number(12, 13, 5)}) "
        "/ CAST(%(radians_2)s::INTEGER AS NUMERIC)), %(power_2)s::INTEGER)))) <= %(param_16)s"
    )
    assert params == {
        "param_1": "p",
        "jsonb_typeof_1": "array",
        "param_2": "p",
        "param_3": "0",
        "jsonb_typeof_2": "number",
        "param_4": "p",
        "param_5": "1",
        "jsonb_typeof_3": "number",
        "asin_1": pytest.approx(2 * 3958.7613),
        "least_1": 1.0,
        "radians_1": pytest.approx(math.radians(2)),  # the latitude
        "param_6": "p",
        "param_7": "1",  # [1]: the row's latitude
        "jsonb_typeof_4": "number",
        "param_8": "p",
        "param_9": "1",
        "param_10": 2,
        "power_1": 2,
        "cos_1": pytest.approx(math.cos(math.radians(2))),
        "param_11": 1.0,  # the longitude
        "param_12": "p",
        "param_13": "0",  # [0]: the row's longitude
        "jsonb_typeof_5": "number",
        "param_14": "p",
        "param_15": "0",
        "radians_2": 2,
        "power_2": 2,
        "param_16": 3.0,
    }


def test_in_list_elements_keep_their_types(engine: Engine) -> None:
    bodies = [{"a": [2.5]}, {"a": [[1]]}, {"a": ["[1]"]}, {"a": [{"k": 1}]}, {"a": [1]}]
    assert hits(engine, bodies, "a", "in", [2.5]) == [0]
    # A nested array element is not the string of its JSON text.
    assert hits(engine, bodies, "a", "in", ["[1]"]) == [2]
    assert hits(engine, bodies, "a", "in", ['{"k":1}']) == []
    assert hits(engine, bodies, "a", "eq", "[1]") == [2]


def test_within_needs_numbers_not_booleans(engine: Engine) -> None:
    # json_extract reads true as 1: the type guard keeps [true, false] from being (1, 0).
    bodies = [{"p": [True, False]}, {"p": [1, 0]}, {"p": [None, 0]}]
    near = {"coordinates": [1, 0], "max_distance_miles": 1}
    assert hits(engine, bodies, "p", "within", near) == [1]


def test_filters_sql_passes_the_dialect_on() -> None:
    f = [Filter("a", "exists", True), Filter("b", "exists", False)]
    compiled = filters_sql("postgresql", f).compile(dialect=postgresql.dialect())
    assert str(compiled) == (
        f"jsonb_typeof({NODE.format(n=1)}) IS NOT NULL AND jsonb_typeof({NODE.format(n=2)}) IS NULL"
    )
    sqlite = filters_sql("sqlite", f).compile()
    assert "json_type" in str(sqlite)


def test_pg_expression_types() -> None:
    # The result types decide how values read back (group_by reads node() as JSON) and
    # which operators SQLAlchemy allows on them.
    path = qb.JsonSql("postgresql", ["a"])
    assert isinstance(path.node().type, JSONB)
    assert isinstance(path.scalar().type, Text)
    assert isinstance(path.number().type, Float)
    assert isinstance(path._body_contains(1).type, Boolean)
    contains = path.array_has("x")
    assert isinstance(contains.clauses[1].type, Boolean)
