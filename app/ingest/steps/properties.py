"""Step 5: property names, string values and nesting depth, at every level.

A string value may not hold the NUL character (JSON's ``\u0000``): PostgreSQL cannot store
it in a JSON column, and an event the database refuses would be retried for ever, holding up
every tenant whose records share the batch. It is refused here on both databases, so the
answer does not depend on the database.

Two walks: a fast recursive one answers "all fine?" for the common clean event, and only
when it says no does an iterative one (a stack of iterators) find the first offender, the
count, or the depth. The recursive walk stops descending at level 32, so its own depth is
bounded by the limit and hostile nesting can never reach Python's recursion limit (orjson
already refuses more than 1024 levels while parsing).

Depth counts containers: the event object itself is level 1, so an event may hold objects
and arrays down to level 32. Arrays count like objects, and names inside objects inside
arrays are checked too. The detail reports the first offender in document order and how
many names break the rules in total, so a customer fixes them all in one go.
"""

from __future__ import annotations

from typing import Any

from app.contract.errors import Rejection

MAX_NAME_LENGTH = 256
MAX_DEPTH = 32
_MAX_PATH_CHARS = 300


def name_problem(name: str) -> str | None:
    """Why a property name is refused, or None when it is fine."""
    if not name:
        return "empty"
    if len(name) > MAX_NAME_LENGTH:
        return "longer than 256 characters"
    if name[0] == "$":
        return "starts with '$'"
    if "." in name:
        return "contains '.'"
    if "\x00" in name:
        return "contains the NUL character"
    return None


def check_properties(event: dict[str, Any]) -> Rejection | None:
    if _fine_object(event, 1):
        return None
    return _explain(event)


def _fine_object(node: dict[str, Any], depth: int) -> bool:
    for name, value in node.items():
        if not name or len(name) > MAX_NAME_LENGTH or name[0] == "$" or "." in name:
            return False
        if "\x00" in name:
            return False
        kind = type(value)
        if kind is str:
            if "\x00" in value:
                return False
        elif kind is dict:
            if depth >= MAX_DEPTH or (value and not _fine_object(value, depth + 1)):
                return False
        elif kind is list:
            if depth >= MAX_DEPTH or (value and not _fine_array(value, depth + 1)):
                return False
    return True


def _fine_array(node: list[Any], depth: int) -> bool:
    for value in node:
        kind = type(value)
        if kind is str:
            if "\x00" in value:
                return False
        elif kind is dict:
            if depth >= MAX_DEPTH or (value and not _fine_object(value, depth + 1)):
                return False
        elif kind is list:
            if depth >= MAX_DEPTH or (value and not _fine_array(value, depth + 1)):
                return False
    return True


def _explain(event: dict[str, Any]) -> Rejection | None:
    first: tuple[tuple, str] | None = None
    first_value: tuple | None = None
    count = 0
    stack: list[tuple[Any, tuple]] = [(iter(event.items()), ())]
    while stack:
        items, path = stack[-1]
        for name, value in items:
            # Array positions arrive as ints and need no check.
            if type(name) is str and (
                not name
                or len(name) > MAX_NAME_LENGTH
                or name[0] == "$"
                or "." in name
                or "\x00" in name
            ):
                count += 1
                if first is None:
                    first = (path + (name,), name)
            kind = type(value)
            if kind is str and first_value is None and "\x00" in value:
                first_value = path + (name,)
            if kind is dict or kind is list:
                if len(stack) >= MAX_DEPTH:
                    return _too_deep(path + (name,))
                if value:
                    stack.append(
                        (iter(value.items()) if kind is dict else enumerate(value), path + (name,))
                    )
                    break
        else:
            stack.pop()
    if first is None:
        return None if first_value is None else _nul_value(first_value)
    where, name = first
    problem = name_problem(name)
    return Rejection(
        "invalid_property_name",
        "validate",
        f"The property {format_path(where)!r} has a name that {problem}; property names must "
        "be 1 to 256 characters, without '.', not starting with '$', without NUL: rename the "
        "property.",
        {"path": format_path(where), "reason": problem, "count": count},
    )


def _nul_value(where: tuple) -> Rejection:
    shown = format_path(where)
    return Rejection(
        "invalid_property_value",
        "validate",
        f"The string in {shown!r} contains the NUL character (\\u0000), which cannot be "
        "stored: remove it from the value, or replace it, before sending the event.",
        {"path": shown, "reason": "contains the NUL character"},
    )


def _too_deep(where: tuple) -> Rejection:
    return Rejection(
        "too_deeply_nested",
        "validate",
        f"The event nests objects or arrays more than {MAX_DEPTH} levels deep; flatten it to "
        f"at most {MAX_DEPTH} levels.",
        {"path": format_path(where), "limit": MAX_DEPTH},
    )


def format_path(parts: tuple) -> str:
    """``a.b[3].c`` — dotted names with array positions in brackets, capped in length."""
    out: list[str] = []
    size = 0
    for part in parts:
        piece = f"[{part}]" if type(part) is int else (f".{part}" if out else str(part))
        out.append(piece)
        size += len(piece)
        if size > _MAX_PATH_CHARS:
            break
    text = "".join(out)
    return text if len(text) <= _MAX_PATH_CHARS else text[:_MAX_PATH_CHARS] + "…"
