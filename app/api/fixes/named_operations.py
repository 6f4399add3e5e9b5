"""The named operations of a fix, and the document helpers they share with JSON Patch.

Each named operation has a parser (request member values -> a normalized operation, raising
`Invalid` with a message saying what is expected) and a step (document -> document, raising
`Failed` with why it does not apply to this payload). Paths are RFC 6901 JSON Pointers, so
names holding `.` or starting with `$` are plain: ``/user.name``, ``/$price``.

Every walk over a payload is iterative: a stored payload may nest up to orjson's 1024 levels,
deeper than Python's recursion limit.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from jsonpointer import JsonPointer, JsonPointerException

from app.ingest.steps.keen import format_timestamp, parse_timestamp
from app.ingest.steps.properties import MAX_DEPTH, name_problem

CAST_TYPES = ("number", "string", "boolean")
TIMESTAMP_FORMATS = ("iso", "unix_s", "unix_ms")
# orjson writes integers from -2**63 to 2**64 - 1; a cast must not make a payload unwritable.
_MIN_INT, _MAX_INT = -(2**63), 2**64 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")
_KINDS = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


class Invalid(ValueError):
    """A member of an operation is wrong; the caller adds the operation's index."""


class Failed(Exception):
    """An operation does not apply to this payload."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def kind(value: object) -> str:
    return _KINDS.get(type(value), "not JSON")


def show(value: object, limit: int = 80) -> str:
    """A value as compact JSON for a message, cut at `limit` characters."""
    try:
        text = orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return "a deeply nested value"
    return text if len(text) <= limit else text[:limit] + "…"


def pointer_text(parts: list[str] | tuple[str, ...], limit: int = 200) -> str:
    text = "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)
    return text if len(text) <= limit else text[:limit] + "…"


def pointer_parts(op: dict[str, Any], member: str, *, root_allowed: bool) -> list[str]:
    """The unescaped parts of the pointer in `member`, or Invalid."""
    text = op.get(member)
    if type(text) is not str:
        raise Invalid(
            f"'{member}' must be a JSON Pointer string (RFC 6901), e.g. \"/user.name\" "
            f'or "/items/0"; got {kind(text)}'
        )
    try:
        parts = JsonPointer(text).parts
    except JsonPointerException as exc:
        raise Invalid(
            f"'{member}' is not a JSON Pointer (RFC 6901): {exc}; a pointer is \"\" or starts "
            "with '/', and writes '~' as ~0 and '/' as ~1"
        ) from None
    if not parts and not root_allowed:
        raise Invalid(f"'{member}' must point inside the event, not at the whole document (\"\")")
    return parts


def locate(doc: Any, parts: list[str] | tuple[str, ...]) -> Any:
    """The value at `parts`, or Failed saying which step of the path is missing."""
    node = doc
    for depth, part in enumerate(parts):
        if type(node) is dict:
            if part not in node:
                raise Failed(f"path {pointer_text(parts[: depth + 1])} does not exist")
            node = node[part]
        elif type(node) is list:
            node = node[array_index(node, parts, depth, allow_end=False)]
        else:
            raise Failed(
                f"path {pointer_text(parts[: depth + 1])} does not exist: "
                f"{pointer_text(parts[:depth]) or 'the payload'} is {kind(node)}"
            )
    return node


def array_index(
    array: list[Any], parts: list[str] | tuple[str, ...], depth: int, *, allow_end: bool
) -> int:
    part = parts[depth]
    where = pointer_text(parts[: depth + 1])
    if part == "-":
        if allow_end:
            return len(array)
        raise Failed(f"path {where} names the end of an array ('-'), where no element is")
    if not _ARRAY_INDEX.fullmatch(part):
        raise Failed(f"path {where} does not exist: {part[:40]!r} is not an array index")
    # Compared as text first: int() refuses strings of more than 4300 digits.
    index = int(part) if len(part) <= 18 else len(array) + 1
    if index > len(array) or (index == len(array) and not allow_end):
        size = len(array)
        raise Failed(
            f"path {where} does not exist: the array has {size} element{'' if size == 1 else 's'}"
        )
    return index


def _parent(doc: Any, parts: list[str]) -> tuple[dict[str, Any], str]:
    """The object holding the property at `parts`, and the property's name."""
    parent = locate(doc, parts[:-1])
    name = parts[-1]
    if type(parent) is not dict:
        raise Failed(
            f"path {pointer_text(parts)} names no property: "
            f"{pointer_text(parts[:-1]) or 'the payload'} is {kind(parent)}"
        )
    if name not in parent:
        raise Failed(f"path {pointer_text(parts)} does not exist")
    return parent, name


def _set(doc: Any, parts: list[str], value: Any) -> None:
    """Replaces the existing value at `parts` (which `locate` found)."""
    container = locate(doc, parts[:-1])
    if type(container) is dict:
        container[parts[-1]] = value
    else:
        container[int(parts[-1])] = value


# -- rename ---------------------------------------------------------------------------------


def parse_rename(op: dict[str, Any]) -> dict[str, Any]:
    parts = pointer_parts(op, "path", root_allowed=False)
    to = op.get("to")
    if type(to) is not str:
        raise Invalid(f"'to' must be the new property name, a string; got {kind(to)}")
    problem = name_problem(to)
    if problem is not None:
        raise Invalid(
            f"'to' is a name that {problem}; property names must be 1 to 256 characters, "
            "without '.', not starting with '$', without NUL"
        )
    if to == parts[-1]:
        raise Invalid("'to' is the property's own name")
    return {"op": "rename", "path": op["path"], "to": to}


def rename(doc: Any, parts: list[str], to: str) -> Any:
    parent, name = _parent(doc, parts)
    if to in parent:
        raise Failed(f"cannot rename {pointer_text(parts)}: {to!r} exists already")
    # The property keeps its place in the object: it and the properties after it are popped
    # and put back in order (only those, so renaming a last property moves nothing else).
    keys = list(parent)
    after = keys.index(name) + 1
    value = parent.pop(name)
    moved = [(key, parent.pop(key)) for key in keys[after:]]
    parent[to] = value
    parent.update(moved)
    return doc


# -- cast -----------------------------------------------------------------------------------


def parse_cast(op: dict[str, Any]) -> dict[str, Any]:
    pointer_parts(op, "path", root_allowed=False)
    to = op.get("to")
    if to not in CAST_TYPES or type(to) is not str:
        raise Invalid(f'\'to\' must be one of "number", "string", "boolean"; got {show(to)}')
    return {"op": "cast", "path": op["path"], "to": to}


def number_of(text: str) -> int | float | None:
    """A decimal number written as text ("12" -> 12, "12.5" -> 12.5), or None."""
    text = text.strip()
    if len(text) > 400:
        return None
    if _INTEGER.fullmatch(text):
        number = int(text)
        return number if _MIN_INT <= number <= _MAX_INT else None
    if _DECIMAL.fullmatch(text):
        real = float(text)
        return real if real - real == 0.0 else None  # finite
    return None


def cast(doc: Any, parts: list[str], to: str) -> Any:
    value = locate(doc, parts)
    where = pointer_text(parts)
    if to == "number":
        if type(value) in (int, float):
            return doc
        number = number_of(value) if type(value) is str else None
        if number is None:
            raise Failed(
                f"cannot cast {where} to a number: it is {kind(value)} {show(value)}, not a "
                "decimal number within 64 bits"
            )
        new: Any = number
    elif to == "string":
        if type(value) is str:
            return doc
        if type(value) not in (int, float, bool):
            raise Failed(f"cannot cast {where} to a string: it is {kind(value)}")
        new = orjson.dumps(value).decode()
    else:
        if type(value) is bool:
            return doc
        lowered = value.strip().lower() if type(value) is str else None
        if lowered not in ("true", "false"):
            raise Failed(
                f"cannot cast {where} to a boolean: it is {kind(value)} {show(value)}, not "
                '"true" or "false"'
            )
        new = lowered == "true"
    _set(doc, parts, new)
    return doc


# -- parse_json -----------------------------------------------------------------------------


def parse_parse_json(op: dict[str, Any]) -> dict[str, Any]:
    pointer_parts(op, "path", root_allowed=False)
    return {"op": "parse_json", "path": op["path"]}


def parse_json(doc: Any, parts: list[str]) -> Any:
    value = locate(doc, parts)
    where = pointer_text(parts)
    if type(value) is not str:
        raise Failed(f"path {where} is {kind(value)}, not a string holding JSON")
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise Failed(f"path {where} does not hold JSON: {str(exc)[:200]}") from None
    _set(doc, parts, parsed)
    return doc


# -- set_timestamp --------------------------------------------------------------------------


def parse_set_timestamp(op: dict[str, Any]) -> dict[str, Any]:
    if ("from" in op) == ("value" in op):
        raise Invalid(
            "set_timestamp takes either 'from' (a pointer to the property holding the time) "
            "or 'value' (an ISO-8601 date-time), not both and not neither"
        )
    if "value" in op:
        if "format" in op:
            raise Invalid("'format' goes with 'from'; 'value' is always ISO-8601")
        text = op["value"]
        moment = parse_timestamp(text) if type(text) is str else None
        if moment is None:
            raise Invalid(
                f"'value' must be an ISO-8601 date-time such as \"2026-11-28T12:00:01.123Z\"; "
                f"got {show(text)}"
            )
        return {"op": "set_timestamp", "value": render(moment)}
    pointer_parts(op, "from", root_allowed=False)
    form = op.get("format", "iso")
    if form not in TIMESTAMP_FORMATS or type(form) is not str:
        raise Invalid(f'\'format\' must be one of "iso", "unix_s", "unix_ms"; got {show(form)}')
    return {"op": "set_timestamp", "from": op["from"], "format": form}


def render(moment: datetime) -> str:
    """The worker's own rendering: UTC, milliseconds (truncated), ``Z``, four-digit year."""
    return format_timestamp(
        moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)
    )


def timestamp_from(value: Any, form: str, where: str) -> str:
    if form == "iso":
        moment = parse_timestamp(value) if type(value) is str else None
        if moment is None:
            hint = ": use format unix_s or unix_ms" if type(value) in (int, float) else ""
            raise Failed(
                f"path {where} is {kind(value)} {show(value)}, not an ISO-8601 date-time{hint}"
            )
        return render(moment)
    number = value if type(value) in (int, float) else None
    if type(value) is str:
        number = number_of(value)
    if number is None:
        raise Failed(f"path {where} is {kind(value)} {show(value)}, not a number of {_unit(form)}")
    try:
        if form == "unix_s":
            moment = _EPOCH + timedelta(seconds=number)
        else:
            moment = _EPOCH + timedelta(milliseconds=number)
    except (OverflowError, ValueError):
        raise Failed(
            f"path {where} holds {show(value)} {_unit(form)}, outside the years 1 to 9999"
        ) from None
    return render(moment)


def _unit(form: str) -> str:
    return "seconds since 1970" if form == "unix_s" else "milliseconds since 1970"


def set_timestamp(doc: Any, text: str) -> Any:
    if type(doc) is not dict:
        raise Failed(f"the payload is {kind(doc)}, not an object: keen.timestamp needs an event")
    keen = doc.get("keen")
    if keen is None:
        # The worker takes a null keen as absent, so it is replaced rather than refused.
        doc["keen"] = {"timestamp": text}
    elif type(keen) is dict:
        keen["timestamp"] = text
    else:
        raise Failed(f"path /keen is {kind(keen)}, not an object: it cannot hold a timestamp")
    return doc


# -- drop_deeper_than -----------------------------------------------------------------------


def parse_drop_deeper_than(op: dict[str, Any]) -> dict[str, Any]:
    depth = op.get("depth")
    if type(depth) is not int or not 1 <= depth <= MAX_DEPTH:
        raise Invalid(
            f"'depth' must be a whole number from 1 to {MAX_DEPTH} (the event object is level "
            f"1); got {show(depth)}"
        )
    return {"op": "drop_deeper_than", "depth": depth}


def drop_deeper_than(doc: Any, depth: int) -> Any:
    """Removes objects and arrays below level `depth`, counting as the worker does."""
    if type(doc) not in (dict, list):
        return doc
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, level = stack.pop()
        values = node.values() if type(node) is dict else node
        if level >= depth:
            if type(node) is dict:
                for name in [name for name, value in node.items() if type(value) in (dict, list)]:
                    del node[name]
            else:
                node[:] = [value for value in node if type(value) not in (dict, list)]
        else:
            stack.extend((value, level + 1) for value in values if type(value) in (dict, list))
    return doc


# -- replace_payload ------------------------------------------------------------------------


def parse_replace_payload(op: dict[str, Any]) -> dict[str, Any]:
    text = op.get("text")
    if type(text) is not str:
        raise Invalid(f"'text' must be the new payload as a string; got {kind(text)}")
    return {"op": "replace_payload", "text": text}
