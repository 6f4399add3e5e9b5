"""Step 5 (app/ingest/steps/properties.py) called directly: each name rule, the 32-level depth
limit for objects and arrays, the first offender and the count, and the capped path format.
The fast walk is checked on its own too: it must answer "fine" for fine events (the slow walk
would hide a fast walk that refuses them)."""

from __future__ import annotations

from typing import Any

import pytest

from app.ingest.steps import properties as p
from app.ingest.steps.properties import check_properties, format_path, name_problem

NAME_MESSAGE = (
    "The property {path!r} has a name that {problem}; property names must be 1 to 256 "
    "characters, without '.', not starting with '$', without NUL: rename the property."
)
DEEP_MESSAGE = (
    "The event nests objects or arrays more than 32 levels deep; flatten it to at most 32 levels."
)


def test_limits() -> None:
    assert p.MAX_NAME_LENGTH == 256
    assert p.MAX_DEPTH == 32


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        ("x" * 257, "longer than 256 characters"),
        ("$", "starts with '$'"),
        ("$a", "starts with '$'"),
        ("a.b", "contains '.'"),
        (".", "contains '.'"),
        ("a.", "contains '.'"),
        ("\x00", "contains the NUL character"),
        ("a\x00", "contains the NUL character"),
        # The first rule that applies answers.
        ("$" + "x" * 256, "longer than 256 characters"),
        ("$a.b", "starts with '$'"),
        ("a.\x00", "contains '.'"),
    ],
)
def test_name_problem(name: str, problem: str) -> None:
    assert name_problem(name) == problem
    event = {name: 1}
    assert p._fine_object(event, 1) is False
    rejection = check_properties(event)
    assert rejection is not None
    assert rejection.code == "invalid_property_name"
    assert rejection.stage == "validate"
    path = format_path((name,))
    assert rejection.message == NAME_MESSAGE.format(path=path, problem=problem)
    assert rejection.detail == {"path": path, "reason": problem, "count": 1}


@pytest.mark.parametrize("name", ["x", "x" * 256, "a$", "a b", "ünï", "-", "0", "a\x01"])
def test_fine_names(name: str) -> None:
    assert name_problem(name) is None
    for event in ({name: 1}, {"o": {name: 1}}, {"l": [{name: 1}]}, {"l": [[{name: [1]}]]}):
        assert p._fine_object(event, 1) is True
        assert check_properties(event) is None
        assert p._explain(event) is None


def test_names_are_checked_at_every_level() -> None:
    for bad in ("", "$x", "a.b", "n\x00"):
        for event in (
            {"o": {bad: 1}},
            {"o": {"p": {bad: 1}}},
            {"l": [{bad: 1}]},
            {"l": [1, [{bad: 1}]]},
            {"l": [{"ok": [{bad: 2}]}]},
        ):
            assert p._fine_object(event, 1) is False, event
            rejection = check_properties(event)
            assert rejection is not None and rejection.code == "invalid_property_name", event
            assert rejection.detail["count"] == 1


def test_first_offender_in_document_order_and_the_count() -> None:
    event = {
        "ok": [1, {"fine": 1}],
        "a": {"b": [{"x": 1}, {"$c": 1, "d.e": {"": 2}}]},
        "z": {"$y": 3},
    }
    rejection = check_properties(event)
    assert rejection is not None
    assert rejection.detail == {"path": "a.b[1].$c", "reason": "starts with '$'", "count": 4}
    assert rejection.message == NAME_MESSAGE.format(path="a.b[1].$c", problem="starts with '$'")
    # The offender is named by its own rule, even when others follow.
    second = check_properties({"ok": 1, "x.y": 1, "$z": 1})
    assert second is not None
    assert second.detail == {"path": "x.y", "reason": "contains '.'", "count": 2}
    # After a nested container is done, its siblings are still walked.
    third = check_properties({"a": {"b": {"c": 1}}, "d": [[1], [2]], "$e": 1})
    assert third is not None
    assert third.detail == {"path": "$e", "reason": "starts with '$'", "count": 1}


def chain(depth: int, kinds: str, leaf: Any = 1) -> dict:
    """An event whose containers reach ``depth`` levels (the event is level 1). ``kinds``
    cycles through 'o' (object {"k": ...}) and 'l' (array [...])."""
    value: Any = leaf
    for level in range(depth - 1):
        kind = kinds[level % len(kinds)]
        value = {"k": value} if kind == "o" else [value]
    return {"top": value}


def chain_path(depth: int, kinds: str) -> str:
    """The path of the innermost container of ``chain(depth, kinds)``."""
    parts: list[str | int] = ["top"]
    # The outermost container below the event is the last one built.
    order = [kinds[level % len(kinds)] for level in range(depth - 1)][::-1]
    for kind in order[:-1]:
        parts.append("k" if kind == "o" else 0)
    return format_path(tuple(parts))


@pytest.mark.parametrize("kinds", ["o", "l", "ol", "lo"])
def test_depth_limit(kinds: str) -> None:
    fine = chain(32, kinds)
    assert p._fine_object(fine, 1) is True
    assert check_properties(fine) is None
    for leaf in (1, {}, [], {"x": 1}, [1]):
        too_deep = chain(33, kinds, leaf)
        assert p._fine_object(too_deep, 1) is False
        rejection = check_properties(too_deep)
        assert rejection is not None
        assert rejection.code == "too_deeply_nested"
        assert rejection.stage == "validate"
        assert rejection.message == DEEP_MESSAGE
        assert rejection.detail == {"path": chain_path(33, kinds), "limit": 32}
    # An empty container as the leaf is a level of its own.
    for leaf in ({}, []):
        assert check_properties(chain(31, kinds, leaf)) is None
        assert p._fine_object(chain(31, kinds, leaf), 1) is True
        assert p._fine_object(chain(32, kinds, leaf), 1) is False
        rejection = check_properties(chain(32, kinds, leaf))
        assert rejection is not None and rejection.code == "too_deeply_nested"


def test_fast_walk_depth_counts_from_its_argument() -> None:
    # At level 32 a container value is one level too deep; at 31 it is the last allowed.
    assert p._fine_object({"a": {}}, 32) is False
    assert p._fine_object({"a": []}, 32) is False
    assert p._fine_object({"a": {}}, 31) is True
    assert p._fine_object({"a": []}, 31) is True
    assert p._fine_object({"a": {"b": 1}}, 31) is True
    assert p._fine_object({"a": {"b": {}}}, 31) is False
    assert p._fine_object({"a": 1}, 32) is True
    assert p._fine_array([{}], 32) is False
    assert p._fine_array([[]], 32) is False
    assert p._fine_array([{}], 31) is True
    assert p._fine_array([[1]], 31) is True
    assert p._fine_array([[[]]], 31) is False
    assert p._fine_array([{"a": {}}], 31) is False
    assert p._fine_array([{"$": 1}], 1) is False
    assert p._fine_array([1, "x", None], 32) is True
    assert p._fine_array([], 32) is True
    assert p._fine_object({}, 32) is True
    # Each level down adds exactly one.
    assert p._fine_object({"a": {"b": {}}}, 30) is True
    assert p._fine_object({"a": [[]]}, 30) is True
    assert p._fine_object({"a": [{"b": []}]}, 29) is True
    assert p._fine_array([{"a": []}], 30) is True
    assert p._fine_array([[[]]], 30) is True
    assert p._fine_array([[{"a": {}}]], 29) is True


def test_deep_event_with_bad_names_reports_the_depth() -> None:
    event = chain(40, "o")
    event["$bad"] = 1  # after "top" in document order: the depth is found first
    rejection = check_properties(event)
    assert rejection is not None and rejection.code == "too_deeply_nested"
    first = {"$bad": 1, **chain(40, "o")}
    rejection = check_properties(first)
    assert rejection is not None and rejection.code == "too_deeply_nested"


def test_explain_walks_everything_and_skips_array_positions() -> None:
    event = {"l": [{"a": 1}, [2, {"$b": 1}], {"c.d": 1}], "m": {"": {"n": [{"\x00": 1}]}}}
    rejection = p._explain(event)
    assert rejection is not None
    assert rejection.detail == {"path": "l[1][1].$b", "reason": "starts with '$'", "count": 4}


def test_format_path() -> None:
    assert format_path(()) == ""
    assert format_path(("a",)) == "a"
    assert format_path(("a", "b")) == "a.b"
    assert format_path(("a", 3, "c")) == "a[3].c"
    assert format_path((0,)) == "[0]"
    assert format_path((0, "a")) == "[0].a"
    assert format_path(("a", 1, 2)) == "a[1][2]"
    assert format_path(("",)) == ""
    assert format_path(("a", "")) == "a."


def test_format_path_is_capped_at_300_characters() -> None:
    assert format_path(("x" * 300,)) == "x" * 300
    assert format_path(("x" * 301,)) == "x" * 300 + "…"
    assert format_path(("x" * 299, "y")) == "x" * 299 + ".y"[:1] + "…"
    assert format_path(("x" * 298, "y")) == "x" * 298 + ".y"
    assert format_path(("x" * 300, "y")) == "x" * 300 + "…"
    assert format_path(("x" * 150, "y" * 149)) == "x" * 150 + "." + "y" * 149
    assert format_path(("x" * 150, "y" * 150)) == "x" * 150 + "." + "y" * 149 + "…"
    # Parts past the cap are not even joined (a hostile path may be long).
    many = tuple(["p" * 10] * 1000)
    text = format_path(many)
    assert text == ".".join(many)[:300] + "…"
    assert len(text) == 301
    assert format_path(tuple(range(100))) == "".join(f"[{i}]" for i in range(100))[:300] + "…"
