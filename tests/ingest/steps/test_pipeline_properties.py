"""Property names and nesting depth at every level."""

from __future__ import annotations

import orjson
import pytest

from tests.ingest.steps.pipeline_support import accept, reject


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("x" * 257, "longer than 256 characters"),
        ("$price", "starts with '$'"),
        ("a.b", "contains '.'"),
        ("nul\x00here", "contains the NUL character"),
    ],
)
def test_each_name_rule(name: str, reason: str) -> None:
    rejection = reject({name: 1}, "invalid_property_name")
    assert rejection.detail["reason"] == reason
    assert rejection.detail["count"] == 1
    assert rejection.stage == "validate"
    assert "rename the property" in rejection.message


def test_allowed_names() -> None:
    accept({"x" * 256: 1, "price$": 2, "ünï cødé": 3, "-": 4, "a b": 5})


def test_first_offender_in_document_order_and_the_count() -> None:
    event = {"ok": 1, "a": {"b": {"$c": 1, "d.e": 2}}, "z": {"$y": 3}}
    rejection = reject(event, "invalid_property_name")
    assert rejection.detail == {"path": "a.b.$c", "reason": "starts with '$'", "count": 3}


def test_names_inside_arrays_of_objects() -> None:
    event = {"items": [{"sku": 1}, {"sku": 2, "": 3}], "matrix": [[{"$x": 1}]]}
    rejection = reject(event, "invalid_property_name")
    assert rejection.detail["path"] == "items[1]."
    assert rejection.detail["count"] == 2


def test_long_offending_paths_are_capped() -> None:
    event: dict = {"$" + "n" * 250: 1}
    for _ in range(20):
        event = {"p" * 200: event}
    rejection = reject(event, "invalid_property_name")
    assert len(rejection.detail["path"]) <= 301


def nested(depth: int, leaf: object = 1) -> dict:
    """An event whose containers reach `depth` levels, the event itself being level 1."""
    value: object = leaf
    for level in range(depth - 1):
        value = {"k": value} if level % 2 else [value]
    return {"top": value}


README_MAX_DEPTH = 32  # README: `too_deeply_nested` is "more than 32 levels"


def test_depth_limit_counts_objects_and_arrays() -> None:
    accept(nested(README_MAX_DEPTH))
    rejection = reject(nested(README_MAX_DEPTH + 1), "too_deeply_nested")
    assert rejection.detail["limit"] == README_MAX_DEPTH
    assert rejection.stage == "validate"


def test_empty_containers_count_for_depth() -> None:
    reject(nested(README_MAX_DEPTH, leaf=[]), "too_deeply_nested")


def test_depth_between_the_limit_and_the_parser_limit() -> None:
    raw = b'{"a":' + b"[" * 1000 + b"]" * 1000 + b"}"
    reject(raw, "too_deeply_nested")


def test_keen_addon_entries_follow_the_rules_too() -> None:
    event = {"keen": {"addons": [{"name": "keen:url_parser", "input": {"$url": "u"}}]}}
    reject(event, "invalid_property_name")


def test_wide_events_are_fine() -> None:
    event = {f"p{i}": {"v": i, "l": [i, {"w": i}]} for i in range(5000)}
    assert len(orjson.dumps(event)) < 921_600
    accept(event)


@pytest.mark.parametrize(
    ("event", "path"),
    [
        ({"note": "a\x00b"}, "note"),
        ({"user": {"name": "\x00"}}, "user.name"),
        ({"tags": ["ok", "bad\x00"]}, "tags[1]"),
        ({"items": [{"sku": "x"}, {"sku": "y\x00"}], "later": "\x00"}, "items[1].sku"),
    ],
)
def test_a_nul_in_a_string_value_is_refused_with_its_path(event: dict, path: str) -> None:
    # PostgreSQL cannot store it in a JSON column: refused on both databases alike.
    rejection = reject(event, "invalid_property_value")
    assert rejection.stage == "validate"
    assert rejection.detail == {"path": path, "reason": "contains the NUL character"}
    assert rejection.message == (
        f"The string in {path!r} contains the NUL character (\\u0000), which cannot be "
        "stored: remove it from the value, or replace it, before sending the event."
    )


def test_a_bad_name_is_reported_before_a_nul_value() -> None:
    rejection = reject({"note": "\x00", "$p": 1}, "invalid_property_name")
    assert rejection.detail["path"] == "$p"


def test_the_text_backslash_u0000_is_an_ordinary_string() -> None:
    accept(orjson.loads(b'{"note": "\\\\u0000"}'))
