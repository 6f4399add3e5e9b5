"""The fix operations: each RFC 6902 and named operation, each failure, each parse error.

Expected outputs are written out as the exact bytes a replay would send.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.api.fixes.operations import (
    ApplyFailure,
    FixPlan,
    OperationError,
    apply_plan,
    parse_operations,
)


def apply(operations: list, payload: bytes) -> bytes | ApplyFailure:
    return apply_plan(parse_operations(operations), payload)


def parse_error(operations: object) -> tuple[int, str]:
    with pytest.raises(OperationError) as caught:
        parse_operations(operations)
    return caught.value.index, caught.value.reason


# -- RFC 6902 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "payload", "expected"),
    [
        ({"op": "add", "path": "/b", "value": {"c": [1]}}, b'{"a": 1}', b'{"a":1,"b":{"c":[1]}}'),
        ({"op": "add", "path": "/a/-", "value": 3}, b'{"a":[1,2]}', b'{"a":[1,2,3]}'),
        ({"op": "add", "path": "/a/0", "value": 0}, b'{"a":[1,2]}', b'{"a":[0,1,2]}'),
        ({"op": "add", "path": "/a~1b", "value": 1}, b"{}", b'{"a/b":1}'),
        ({"op": "remove", "path": "/$price"}, b'{"$price":3,"b":1}', b'{"b":1}'),
        ({"op": "remove", "path": "/a/1"}, b'{"a":[1,2,3]}', b'{"a":[1,3]}'),
        ({"op": "replace", "path": "/a~0b", "value": None}, b'{"a~b":1}', b'{"a~b":null}'),
        ({"op": "replace", "path": "", "value": {"x": 1}}, b'{"a":1}', b'{"x":1}'),
        (
            {"op": "move", "from": "/user.name", "path": "/user"},
            b'{"user.name":"x"}',
            b'{"user":"x"}',
        ),
        (
            {"op": "copy", "from": "/a", "path": "/b"},
            b'{"a":{"c":1}}',
            b'{"a":{"c":1},"b":{"c":1}}',
        ),
        ({"op": "test", "path": "/price", "value": 4}, b'{"price":4}', b'{"price":4}'),
        ({"op": "test", "path": "/a", "value": [1, 2.0]}, b'{"a":[1,2]}', b'{"a":[1,2]}'),
    ],
)
def test_json_patch_operations(operation: dict, payload: bytes, expected: bytes) -> None:
    assert apply([operation], payload) == expected


def test_operations_apply_in_order_and_keep_the_payloads_key_order() -> None:
    operations = [
        {"op": "add", "path": "/z", "value": 1},
        {"op": "replace", "path": "/m", "value": "new"},
        {"op": "remove", "path": "/a"},
    ]
    assert apply(operations, b'{ "b": 2, "a": 1, "m": "old" }') == b'{"b":2,"m":"new","z":1}'


def test_an_added_value_is_not_shared_between_payloads() -> None:
    plan = parse_operations(
        [{"op": "add", "path": "/tags", "value": []}, {"op": "add", "path": "/tags/-", "value": 1}]
    )
    assert apply_plan(plan, b"{}") == b'{"tags":[1]}'
    assert apply_plan(plan, b"{}") == b'{"tags":[1]}'
    assert plan.operations[0]["value"] == []


@pytest.mark.parametrize(
    ("operations", "payload", "index", "reason"),
    [
        (
            [{"op": "test", "path": "/price", "value": 4}],
            b'{"price":3}',
            0,
            "test failed: /price is 3, not 4",
        ),
        (
            [{"op": "test", "path": "/a", "value": 1}],
            b'{"a":true}',
            0,
            "test failed: /a is true, not 1",
        ),
        (
            [{"op": "add", "path": "/x", "value": 1}, {"op": "test", "path": "/b", "value": "s"}],
            b"{}",
            1,
            "test failed: path /b does not exist",
        ),
        ([{"op": "remove", "path": "/user.name"}], b"{}", 0, "path /user.name does not exist"),
        (
            [{"op": "replace", "path": "/a/b", "value": 1}],
            b'{"a":3}',
            0,
            "path /a/b does not exist: /a is a number",
        ),
        ([{"op": "add", "path": "/a/b/c", "value": 1}], b"{}", 0, "path /a does not exist"),
        (
            [{"op": "add", "path": "/a/b", "value": 1}],
            b'{"a":"s"}',
            0,
            "path /a/b cannot be added: /a is a string",
        ),
        (
            [{"op": "add", "path": "/a/5", "value": 1}],
            b'{"a":[1]}',
            0,
            "path /a/5 does not exist: the array has 1 element",
        ),
        (
            [{"op": "remove", "path": "/a/2"}],
            b'{"a":[1,2]}',
            0,
            "path /a/2 does not exist: the array has 2 elements",
        ),
        (
            [{"op": "remove", "path": "/a/-"}],
            b'{"a":[1]}',
            0,
            "path /a/- names the end of an array ('-'), where no element is",
        ),
        (
            [{"op": "replace", "path": "/a/-", "value": 2}],
            b'{"a":[1]}',
            0,
            "path /a/- names the end of an array ('-'), where no element is",
        ),
        (
            [{"op": "remove", "path": "/a/01"}],
            b'{"a":[1,2]}',
            0,
            "path /a/01 does not exist: '01' is not an array index",
        ),
        (
            [{"op": "remove", "path": "/a/" + "9" * 5000}],
            b'{"a":[1]}',
            0,
            "path /a/" + "9" * 197 + "… does not exist: the array has 1 element",
        ),
        (
            [{"op": "move", "from": "/a", "path": "/a/b"}],
            b'{"a":{}}',
            0,
            "cannot move /a into its own child /a/b",
        ),
        ([{"op": "move", "from": "/x", "path": "/y"}], b'{"a":1}', 0, "path /x does not exist"),
        (
            [{"op": "copy", "from": "/x/0", "path": "/y"}],
            b'{"x":[]}',
            0,
            "path /x/0 does not exist: the array has 0 elements",
        ),
    ],
)
def test_json_patch_failures_name_the_operation_and_why(
    operations: list, payload: bytes, index: int, reason: str
) -> None:
    assert apply(operations, payload) == ApplyFailure(index, reason)


# -- rename -----------------------------------------------------------------------------------


def test_rename_keeps_the_value_and_the_place() -> None:
    operations = [
        {"op": "rename", "path": "/user.name", "to": "user_name"},
        {"op": "rename", "path": "/$price", "to": "price"},
        {"op": "rename", "path": "/items/0/a~1b", "to": "ab"},
    ]
    payload = b'{"id":1,"user.name":"ann","$price":{"v":3},"items":[{"a/b":true,"c":1}]}'
    assert apply(operations, payload) == (
        b'{"id":1,"user_name":"ann","price":{"v":3},"items":[{"ab":true,"c":1}]}'
    )


@pytest.mark.parametrize(
    ("operation", "payload", "reason"),
    [
        (
            {"op": "rename", "path": "/user.name", "to": "user"},
            b'{"user":1}',
            "path /user.name does not exist",
        ),
        (
            {"op": "rename", "path": "/a", "to": "b"},
            b'{"a":1,"b":2}',
            "cannot rename /a: 'b' exists already",
        ),
        (
            {"op": "rename", "path": "/a/0", "to": "b"},
            b'{"a":[1]}',
            "path /a/0 names no property: /a is an array",
        ),
        (
            {"op": "rename", "path": "/a/b", "to": "c"},
            b'{"a":"s"}',
            "path /a/b names no property: /a is a string",
        ),
        (
            {"op": "rename", "path": "/a", "to": "b"},
            b"[1]",
            "path /a names no property: the payload is an array",
        ),
    ],
)
def test_rename_failures(operation: dict, payload: bytes, reason: str) -> None:
    assert apply([operation], payload) == ApplyFailure(0, reason)


# -- cast -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to", "value", "expected"),
    [
        ("number", b'"12.5"', b"12.5"),
        ("number", b'"12"', b"12"),
        ("number", b'" -7 "', b"-7"),
        ("number", b'"1e3"', b"1000.0"),
        ("number", b'"18446744073709551615"', b"18446744073709551615"),
        ("number", b"3", b"3"),
        ("string", b"12", b'"12"'),
        ("string", b"12.5", b'"12.5"'),
        ("string", b"true", b'"true"'),
        ("string", b"false", b'"false"'),
        ("string", b'"x"', b'"x"'),
        ("boolean", b'"TRUE"', b"true"),
        ("boolean", b'"False"', b"false"),
        ("boolean", b"true", b"true"),
    ],
)
def test_cast(to: str, value: bytes, expected: bytes) -> None:
    payload = b'{"a":' + value + b',"b":1}'
    assert (
        apply([{"op": "cast", "path": "/a", "to": to}], payload) == b'{"a":' + expected + b',"b":1}'
    )


def test_cast_inside_an_array() -> None:
    operation = {"op": "cast", "path": "/a/1", "to": "number"}
    assert apply([operation], b'{"a":["1","2"]}') == b'{"a":["1",2]}'


@pytest.mark.parametrize(
    ("to", "value", "reason"),
    [
        (
            "number",
            b'"12,5"',
            'cannot cast /a to a number: it is a string "12,5", not a decimal number within 64 bits',
        ),
        (
            "number",
            b'"NaN"',
            'cannot cast /a to a number: it is a string "NaN", not a decimal number within 64 bits',
        ),
        (
            "number",
            b'"1e999"',
            'cannot cast /a to a number: it is a string "1e999", not a decimal number within 64 bits',
        ),
        (
            "number",
            b'"18446744073709551616"',
            'cannot cast /a to a number: it is a string "18446744073709551616", not a decimal number within 64 bits',
        ),
        (
            "number",
            b"true",
            "cannot cast /a to a number: it is a boolean true, not a decimal number within 64 bits",
        ),
        ("string", b"null", "cannot cast /a to a string: it is null"),
        ("string", b"[1]", "cannot cast /a to a string: it is an array"),
        (
            "boolean",
            b'"yes"',
            'cannot cast /a to a boolean: it is a string "yes", not "true" or "false"',
        ),
        ("boolean", b"1", 'cannot cast /a to a boolean: it is a number 1, not "true" or "false"'),
    ],
)
def test_cast_failures(to: str, value: bytes, reason: str) -> None:
    payload = b'{"a":' + value + b"}"
    assert apply([{"op": "cast", "path": "/a", "to": to}], payload) == ApplyFailure(0, reason)


def test_cast_of_a_missing_path() -> None:
    operation = {"op": "cast", "path": "/price", "to": "number"}
    assert apply([operation], b"{}") == ApplyFailure(0, "path /price does not exist")


# -- parse_json -------------------------------------------------------------------------------


def test_parse_json() -> None:
    operation = {"op": "parse_json", "path": "/props"}
    payload = b'{"props":"{\\"b\\": [1, {\\"c\\": null}], \\"a\\": 2}","x":1}'
    assert apply([operation], payload) == b'{"props":{"b":[1,{"c":null}],"a":2},"x":1}'


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"props":{"a":1}}', "path /props is an object, not a string holding JSON"),
        (b'{"props":"{a"}', "path /props does not hold JSON: "),
        (b"{}", "path /props does not exist"),
    ],
)
def test_parse_json_failures(payload: bytes, reason: str) -> None:
    failure = apply([{"op": "parse_json", "path": "/props"}], payload)
    assert isinstance(failure, ApplyFailure) and failure.index == 0
    assert failure.reason.startswith(reason)


# -- set_timestamp ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "payload", "expected"),
    [
        (
            {"op": "set_timestamp", "from": "/created_at"},
            b'{"created_at":"2026-11-28 14:00:01.123456+02:00"}',
            b'{"created_at":"2026-11-28 14:00:01.123456+02:00",'
            b'"keen":{"timestamp":"2026-11-28T12:00:01.123Z"}}',
        ),
        (
            {"op": "set_timestamp", "from": "/t", "format": "iso"},
            b'{"keen":{"addons":[],"timestamp":"old"},"t":"2026-11-28T12:00:01"}',
            b'{"keen":{"addons":[],"timestamp":"2026-11-28T12:00:01.000Z"},"t":"2026-11-28T12:00:01"}',
        ),
        (
            {"op": "set_timestamp", "from": "/t", "format": "unix_s"},
            b'{"t":1796040001.123,"keen":null}',
            b'{"t":1796040001.123,"keen":{"timestamp":"2026-11-30T12:00:01.123Z"}}',
        ),
        (
            {"op": "set_timestamp", "from": "/t", "format": "unix_s"},
            b'{"t":"1796040001"}',
            b'{"t":"1796040001","keen":{"timestamp":"2026-11-30T12:00:01.000Z"}}',
        ),
        (
            {"op": "set_timestamp", "from": "/t", "format": "unix_ms"},
            b'{"t":1796040001123}',
            b'{"t":1796040001123,"keen":{"timestamp":"2026-11-30T12:00:01.123Z"}}',
        ),
        (
            {"op": "set_timestamp", "from": "/t"},
            b'{"t":"0999-01-01T00:00:00Z"}',
            b'{"t":"0999-01-01T00:00:00Z","keen":{"timestamp":"0999-01-01T00:00:00.000Z"}}',
        ),
        (
            {"op": "set_timestamp", "value": "2026-11-28T13:00:01.5+01:00"},
            b'{"a":1}',
            b'{"a":1,"keen":{"timestamp":"2026-11-28T12:00:01.500Z"}}',
        ),
    ],
)
def test_set_timestamp(operation: dict, payload: bytes, expected: bytes) -> None:
    assert apply([operation], payload) == expected


def test_set_timestamp_normalizes_the_operation() -> None:
    plan = parse_operations(
        [
            {"op": "set_timestamp", "from": "/t"},
            {"op": "set_timestamp", "value": "2026-11-28T13:00:01.5+01:00"},
        ]
    )
    assert plan.operations == (
        {"op": "set_timestamp", "from": "/t", "format": "iso"},
        {"op": "set_timestamp", "value": "2026-11-28T12:00:01.500Z"},
    )


@pytest.mark.parametrize(
    ("operation", "payload", "reason"),
    [
        (
            {"op": "set_timestamp", "from": "/t"},
            b'{"t":"yesterday"}',
            'path /t is a string "yesterday", not an ISO-8601 date-time',
        ),
        (
            {"op": "set_timestamp", "from": "/t"},
            b'{"t":1796040001}',
            "path /t is a number 1796040001, not an ISO-8601 date-time: use format unix_s or unix_ms",
        ),
        (
            {"op": "set_timestamp", "from": "/t", "format": "unix_ms"},
            b'{"t":"soon"}',
            'path /t is a string "soon", not a number of milliseconds since 1970',
        ),
        (
            {"op": "set_timestamp", "from": "/t", "format": "unix_s"},
            b'{"t":1e300}',
            "path /t holds 1e+300 seconds since 1970, outside the years 1 to 9999",
        ),
        ({"op": "set_timestamp", "from": "/t"}, b"{}", "path /t does not exist"),
        (
            {"op": "set_timestamp", "from": "/t"},
            b'{"t":"2026-01-01","keen":"x"}',
            "path /keen is a string, not an object: it cannot hold a timestamp",
        ),
        (
            {"op": "set_timestamp", "value": "2026-01-01"},
            b"[]",
            "the payload is an array, not an object: keen.timestamp needs an event",
        ),
    ],
)
def test_set_timestamp_failures(operation: dict, payload: bytes, reason: str) -> None:
    assert apply([operation], payload) == ApplyFailure(0, reason)


# -- drop_deeper_than -------------------------------------------------------------------------


def test_drop_deeper_than_counts_the_event_as_level_one() -> None:
    payload = b'{"a":1,"b":{"c":{"d":[1]},"e":[2,[3],{"f":4}]},"g":[]}'
    assert apply([{"op": "drop_deeper_than", "depth": 1}], payload) == b'{"a":1}'
    assert apply([{"op": "drop_deeper_than", "depth": 2}], payload) == b'{"a":1,"b":{},"g":[]}'
    assert apply([{"op": "drop_deeper_than", "depth": 3}], payload) == (
        b'{"a":1,"b":{"c":{},"e":[2]},"g":[]}'
    )
    assert apply([{"op": "drop_deeper_than", "depth": 32}], payload) == payload


def test_drop_deeper_than_trims_a_payload_too_deep_to_write() -> None:
    payload = b'{"a":' + b"[" * 1000 + b"]" * 1000 + b',"b":2}'
    assert apply([{"op": "drop_deeper_than", "depth": 3}], payload) == b'{"a":[[]],"b":2}'
    assert apply([{"op": "add", "path": "/c", "value": 1}], payload) == ApplyFailure(
        0, "the patched payload nests too deeply to write: add a drop_deeper_than operation"
    )


# -- replace_payload --------------------------------------------------------------------------


def test_replace_payload_returns_the_text_as_utf8() -> None:
    plan = parse_operations([{"op": "replace_payload", "text": '{"item": "café"}'}])
    assert plan.replaces_payload is True
    assert apply_plan(plan, b'{"item": "caf\xe9"') == '{"item": "café"}'.encode()


def test_a_plan_without_replace_payload_says_so() -> None:
    assert parse_operations([{"op": "remove", "path": "/a"}]).replaces_payload is False


# -- hostile payloads -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"a":', "the payload is not JSON: use replace_payload"),
        (b'{"a":NaN}', "the payload is not JSON: use replace_payload"),
        (b'{"a":"caf\xe9"}', "the payload is not JSON: use replace_payload"),
        (b'{"a":"\\ud800"}', "the payload is not JSON: use replace_payload"),
        (b"", "the payload is not JSON: use replace_payload"),
        (
            b"[" * 2000 + b"]" * 2000,
            "the payload nests more than 1024 levels, too deep to read: use replace_payload",
        ),
    ],
)
def test_a_payload_that_is_not_json(payload: bytes, reason: str) -> None:
    plan = parse_operations(
        [{"op": "add", "path": "/x", "value": 1}, {"op": "remove", "path": "/x"}]
    )
    assert apply_plan(plan, payload) == ApplyFailure(0, reason)


def test_a_payload_that_is_not_an_object_is_patched_as_json() -> None:
    assert apply([{"op": "add", "path": "/-", "value": 2}], b"[1]") == b"[1,2]"
    assert apply([{"op": "move", "from": "/0", "path": ""}], b'[{"a":1}]') == b'{"a":1}'
    assert apply([{"op": "add", "path": "/a", "value": 1}], b'"s"') == ApplyFailure(
        0, "path /a cannot be added: the payload is a string"
    )


def test_numbers_beyond_64_bits_in_a_payload_are_read_as_orjson_reads_them() -> None:
    payload = b'{"big":18446744073709551616,"max":18446744073709551615}'
    assert apply([{"op": "test", "path": "/max", "value": 2**64 - 1}], payload) == (
        b'{"big":1.8446744073709552e+19,"max":18446744073709551615}'
    )


def test_deep_values_fail_rather_than_recurse() -> None:
    payload = b"[" * 1000 + b"]" * 1000
    assert apply([{"op": "copy", "from": "/0", "path": "/-"}], payload) == ApplyFailure(
        0, "the value nests too deeply for this operation"
    )


def test_a_plan_built_by_hand_is_compiled_on_use() -> None:
    plan = FixPlan(
        operations=({"op": "rename", "path": "/a.b", "to": "ab"},), replaces_payload=False
    )
    assert apply_plan(plan, b'{"a.b":1}') == b'{"ab":1}'
    bad = FixPlan(operations=({"op": "nope"},), replaces_payload=False)
    assert isinstance(apply_plan(bad, b"{}"), ApplyFailure)


# -- parse errors -----------------------------------------------------------------------------

_OPS = "add, remove, replace, move, copy, test, rename, cast, parse_json, set_timestamp, drop_deeper_than, replace_payload"


@pytest.mark.parametrize(
    ("operations", "index", "reason"),
    [
        (
            {"op": "add"},
            -1,
            '\'operations\' must be a list of operation objects, e.g. [{"op": "rename", "path": "/user.name", "to": "user_name"}]',
        ),
        ([], -1, "'operations' is empty: give at least one operation"),
        (
            [{"op": "remove", "path": "/a"}] * 101,
            -1,
            "'operations' holds 101 operations; at most 100 are allowed",
        ),
        (
            [{"op": "remove", "path": "/a"}, 3],
            1,
            'an operation must be a JSON object such as {"op": "remove", "path": "/x"}; got a number',
        ),
        ([{"path": "/a"}], 0, f"each operation needs an 'op' member: one of {_OPS}"),
        (
            [{"op": "append", "path": "/a"}],
            0,
            f'each operation needs a known op, not "append": one of {_OPS}',
        ),
        (
            [{"op": "add", "path": "/a"}],
            0,
            "'add' needs the member 'value': it takes op, path, value",
        ),
        (
            [{"op": "move", "path": "/a"}],
            0,
            "'move' needs the member 'from': it takes op, from, path",
        ),
        (
            [{"op": "remove", "path": "/a", "value": 1}],
            0,
            "unknown member 'value' for 'remove': it takes op, path",
        ),
        (
            [{"op": "add", "path": "a", "value": 1}],
            0,
            "'path' is not a JSON Pointer (RFC 6901): Location must start with /; a pointer is \"\" or starts with '/', and writes '~' as ~0 and '/' as ~1",
        ),
        (
            [{"op": "add", "path": "/a~2", "value": 1}],
            0,
            "'path' is not a JSON Pointer (RFC 6901): Found invalid escape ~2; a pointer is \"\" or starts with '/', and writes '~' as ~0 and '/' as ~1",
        ),
        (
            [{"op": "copy", "from": 5, "path": "/a"}],
            0,
            '\'from\' must be a JSON Pointer string (RFC 6901), e.g. "/user.name" or "/items/0"; got a number',
        ),
        (
            [{"op": "remove", "path": ""}],
            0,
            "'path' must point inside the event, not at the whole document (\"\")",
        ),
        (
            [{"op": "add", "path": "/a", "value": float("nan")}],
            0,
            "'value' is nan, which is not a JSON number",
        ),
        (
            [{"op": "add", "path": "/a", "value": {"b": [float("inf")]}}],
            0,
            "'value' at /b/0 is inf, which is not a JSON number",
        ),
        (
            [{"op": "add", "path": "/a", "value": [2**64]}],
            0,
            "'value' at /0 is a number beyond 64 bits",
        ),
        (
            [{"op": "add", "path": "/a", "value": -(2**63) - 1}],
            0,
            "'value' is a number beyond 64 bits",
        ),
        (
            [{"op": "add", "path": "/a", "value": "\ud800"}],
            0,
            "'value' is a string that is not valid UTF-8 (a lone surrogate)",
        ),
        (
            [{"op": "add", "path": "/a", "value": {"\udfff": 1}}],
            0,
            "'value' has a member name that is not valid UTF-8 (a lone surrogate)",
        ),
        (
            [{"op": "add", "path": "/a", "value": {1: 2}}],
            0,
            "'value' has a member name that is not a string",
        ),
        ([{"op": "add", "path": "/a", "value": (1, 2)}], 0, "'value' is not a JSON value"),
        (
            [{"op": "add", "path": "/a", "value": "x" * 70000}],
            0,
            "the operation is 70,035 bytes of JSON; at most 65,536 are allowed",
        ),
        (
            [{"op": "rename", "path": "/a"}],
            0,
            "'rename' needs the member 'to': it takes op, path, to",
        ),
        (
            [{"op": "rename", "path": "/a", "to": 1}],
            0,
            "'to' must be the new property name, a string; got a number",
        ),
        (
            [{"op": "rename", "path": "/a", "to": "a.b"}],
            0,
            "'to' is a name that contains '.'; property names must be 1 to 256 characters, without '.', not starting with '$', without NUL",
        ),
        ([{"op": "rename", "path": "/a", "to": "a"}], 0, "'to' is the property's own name"),
        (
            [{"op": "rename", "path": "", "to": "a"}],
            0,
            "'path' must point inside the event, not at the whole document (\"\")",
        ),
        (
            [{"op": "cast", "path": "/a", "to": "int"}],
            0,
            '\'to\' must be one of "number", "string", "boolean"; got "int"',
        ),
        (
            [{"op": "parse_json", "path": 1}],
            0,
            '\'path\' must be a JSON Pointer string (RFC 6901), e.g. "/user.name" or "/items/0"; got a number',
        ),
        (
            [{"op": "set_timestamp"}],
            0,
            "set_timestamp takes either 'from' (a pointer to the property holding the time) or 'value' (an ISO-8601 date-time), not both and not neither",
        ),
        (
            [{"op": "set_timestamp", "from": "/t", "value": "2026-01-01"}],
            0,
            "set_timestamp takes either 'from' (a pointer to the property holding the time) or 'value' (an ISO-8601 date-time), not both and not neither",
        ),
        (
            [{"op": "set_timestamp", "value": "2026-01-01", "format": "iso"}],
            0,
            "'format' goes with 'from'; 'value' is always ISO-8601",
        ),
        (
            [{"op": "set_timestamp", "value": "tomorrow"}],
            0,
            '\'value\' must be an ISO-8601 date-time such as "2026-11-28T12:00:01.123Z"; got "tomorrow"',
        ),
        (
            [{"op": "set_timestamp", "from": "/t", "format": "unix"}],
            0,
            '\'format\' must be one of "iso", "unix_s", "unix_ms"; got "unix"',
        ),
        (
            [{"op": "drop_deeper_than", "depth": 0}],
            0,
            "'depth' must be a whole number from 1 to 32 (the event object is level 1); got 0",
        ),
        (
            [{"op": "drop_deeper_than", "depth": 33}],
            0,
            "'depth' must be a whole number from 1 to 32 (the event object is level 1); got 33",
        ),
        (
            [{"op": "drop_deeper_than", "depth": True}],
            0,
            "'depth' must be a whole number from 1 to 32 (the event object is level 1); got true",
        ),
        (
            [{"op": "drop_deeper_than", "depth": 2.0}],
            0,
            "'depth' must be a whole number from 1 to 32 (the event object is level 1); got 2.0",
        ),
        ([{"op": "replace_payload", "text": b"{}"}], 0, "'text' is not a JSON value"),
        (
            [{"op": "replace_payload", "text": 1}],
            0,
            "'text' must be the new payload as a string; got a number",
        ),
        (
            [{"op": "replace_payload", "text": "\ud83d"}],
            0,
            "'text' is a string that is not valid UTF-8 (a lone surrogate)",
        ),
        (
            [{"op": "remove", "path": "/a"}, {"op": "replace_payload", "text": "{}"}],
            1,
            "replace_payload replaces the whole payload, so it must be the only operation",
        ),
        (
            [{"op": "replace_payload", "text": "{}"}, {"op": "remove", "path": "/a"}],
            0,
            "replace_payload replaces the whole payload, so it must be the only operation",
        ),
    ],
)
def test_parse_errors(operations: object, index: int, reason: str) -> None:
    assert parse_error(operations) == (index, reason)


def test_a_value_deeper_than_an_event_may_be_is_refused() -> None:
    value: list = []
    innermost = value
    for _ in range(32):
        innermost.append([])
        innermost = innermost[0]
    index, reason = parse_error([{"op": "add", "path": "/a", "value": value}])
    assert (index, reason) == (0, "'value' at " + "/0" * 32 + " nests more than 32 levels")
    assert parse_operations([{"op": "add", "path": "/a", "value": value[0]}])


def test_the_error_message_carries_the_index() -> None:
    with pytest.raises(OperationError, match=r"^operation 1: 'to' is the property's own name$"):
        parse_operations(
            [{"op": "remove", "path": "/x"}, {"op": "rename", "path": "/a", "to": "a"}]
        )


def test_operations_are_normalized() -> None:
    plan = parse_operations(
        [
            {"value": 1, "path": "/a", "op": "add"},
            {"path": "/b", "from": "/a", "op": "move"},
            {"to": "c", "path": "/b", "op": "rename"},
        ]
    )
    assert [list(op) for op in plan.operations] == [
        ["op", "path", "value"],
        ["op", "from", "path"],
        ["op", "path", "to"],
    ]


# -- never raises -----------------------------------------------------------------------------

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["12", "1.5", "TRUE", "2026-11-28T12:00:01Z", "1796040001", '{"a":1}', "-"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["a", "b", "0", "-", "user.name", "$p", "keen"]), children, max_size=3
        )
    ),
    max_leaves=12,
)
_pointers = st.lists(
    st.sampled_from(["a", "b", "0", "1", "-", "01", "user.name", "$p", "keen"]), max_size=3
).map(lambda parts: "".join("/" + part for part in parts))
_operations = st.one_of(
    st.builds(
        lambda op, p, v: {"op": op, "path": p, "value": v},
        st.sampled_from(["add", "replace", "test"]),
        _pointers,
        _json_values,
    ),
    st.builds(lambda p: {"op": "remove", "path": p}, _pointers.filter(bool)),
    st.builds(
        lambda op, f, p: {"op": op, "from": f, "path": p},
        st.sampled_from(["move", "copy"]),
        _pointers,
        _pointers,
    ),
    st.builds(
        lambda p, to: {"op": "rename", "path": p, "to": to},
        _pointers.filter(bool),
        st.sampled_from(["a", "c", "b"]),
    ),
    st.builds(
        lambda p, to: {"op": "cast", "path": p, "to": to},
        _pointers.filter(bool),
        st.sampled_from(["number", "string", "boolean"]),
    ),
    st.builds(lambda p: {"op": "parse_json", "path": p}, _pointers.filter(bool)),
    st.builds(
        lambda p, f: {"op": "set_timestamp", "from": p, "format": f},
        _pointers.filter(bool),
        st.sampled_from(["iso", "unix_s", "unix_ms"]),
    ),
    st.builds(lambda d: {"op": "drop_deeper_than", "depth": d}, st.integers(1, 4)),
)
_payloads = st.one_of(
    _json_values.map(orjson.dumps),
    st.binary(max_size=20),
    st.integers(1, 1100).map(lambda depth: b"[" * depth + b"]" * depth),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=st.lists(_operations, min_size=1, max_size=4), payload=_payloads)
def test_apply_plan_never_raises(operations: list, payload: bytes) -> None:
    try:
        plan = parse_operations(operations)
    except OperationError:
        return
    result = apply_plan(plan, payload)
    if isinstance(result, ApplyFailure):
        assert 0 <= result.index < len(operations)
        result.reason.encode("utf-8")
    else:
        orjson.loads(result)


def test_normalized_operations_parse_to_themselves() -> None:
    # A saved fix stores plan.operations and parses them again to apply later.
    plan = parse_operations(
        [
            {"op": "set_timestamp", "from": "/t"},
            {"op": "set_timestamp", "value": "2026-11-28 13:00:01+01:00"},
            {"op": "cast", "path": "/p", "to": "number"},
            {"op": "drop_deeper_than", "depth": 3},
            {"op": "copy", "from": "/a", "path": "/b"},
        ]
    )
    assert parse_operations(list(plan.operations)).operations == plan.operations
