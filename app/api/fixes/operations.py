"""The operations of a fix: parse them once, then apply them to each stored payload.

Pure, no I/O. `parse_operations` validates a request's operations (OperationError with the
operation's index and what is expected); `apply_plan` patches one payload and returns compact
JSON bytes (orjson, keys in the payload's order) or an `ApplyFailure` naming the operation
that did not apply. `apply_plan` never raises on a hostile payload: not JSON, not an object,
nested to orjson's limit, pointers to nowhere.

JSON Patch operations (RFC 6902) go through `jsonpatch`, one operation at a time so a failure
names its index; it is explained against the document as it stood before that operation. The named operations live in `named_operations`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import jsonpatch
import orjson
from jsonpointer import JsonPointerException

from app.api.fixes import named_operations as named
from app.api.fixes.named_operations import (
    Failed,
    Invalid,
    locate,
    pointer_parts,
    pointer_text,
    show,
)

MAX_OPERATIONS = 100
MAX_OPERATION_BYTES = 64 * 1024
# A value in an operation may nest as deep as an event may (level 1 is the value itself).
MAX_VALUE_DEPTH = 32
_MIN_INT, _MAX_INT = -(2**63), 2**64 - 1

PATCH_OPS = ("add", "remove", "replace", "move", "copy", "test")
NAMED_OPS = ("rename", "cast", "parse_json", "set_timestamp", "drop_deeper_than", "replace_payload")
_MEMBERS: dict[str, tuple[str, ...]] = {
    "add": ("op", "path", "value"),
    "remove": ("op", "path"),
    "replace": ("op", "path", "value"),
    "move": ("op", "from", "path"),
    "copy": ("op", "from", "path"),
    "test": ("op", "path", "value"),
    "rename": ("op", "path", "to"),
    "cast": ("op", "path", "to"),
    "parse_json": ("op", "path"),
    "set_timestamp": ("op", "from", "format", "value"),
    "drop_deeper_than": ("op", "depth"),
    "replace_payload": ("op", "text"),
}
# set_timestamp's members are all optional to this table; its parser checks the combination.
_OPTIONAL = {"set_timestamp": frozenset({"from", "format", "value"})}
_OP_LIST = ", ".join(PATCH_OPS + NAMED_OPS)

Step = Callable[[Any], Any]


class OperationError(ValueError):
    """A bad operation in the request: 400 with its index and why."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"operation {index}: {reason}" if index >= 0 else reason)
        self.index = index
        self.reason = reason


@dataclass(frozen=True)
class FixPlan:
    operations: tuple[dict, ...]  # validated, normalized operations, in order
    replaces_payload: bool  # True when it holds a replace_payload op (single error only)
    # The compiled steps, one per operation; a plan built by hand gets them on first use.
    _steps: tuple[Step, ...] = field(default=(), repr=False, compare=False)


@dataclass(frozen=True)
class ApplyFailure:
    index: int  # which operation failed on this payload
    reason: str  # e.g. "test failed: /price is 3, not 4", "path /user.name does not exist"


def parse_operations(raw: object) -> FixPlan:
    """Validates and normalizes a request's operations; OperationError on the first bad one."""
    if not isinstance(raw, list | tuple):
        raise OperationError(
            -1,
            "'operations' must be a list of operation objects, e.g. "
            '[{"op": "rename", "path": "/user.name", "to": "user_name"}]',
        )
    if not raw:
        raise OperationError(-1, "'operations' is empty: give at least one operation")
    if len(raw) > MAX_OPERATIONS:
        raise OperationError(
            -1, f"'operations' holds {len(raw)} operations; at most {MAX_OPERATIONS} are allowed"
        )
    operations: list[dict[str, Any]] = []
    steps: list[Step] = []
    for index, op in enumerate(raw):
        try:
            normalized, step = _parse_one(op)
        except Invalid as exc:
            raise OperationError(index, str(exc)) from None
        if normalized["op"] == "replace_payload" and len(raw) > 1:
            raise OperationError(
                index,
                "replace_payload replaces the whole payload, so it must be the only operation",
            )
        operations.append(normalized)
        steps.append(step)
    return FixPlan(
        operations=tuple(operations),
        replaces_payload=operations[0]["op"] == "replace_payload",
        _steps=tuple(steps),
    )


def apply_plan(plan: FixPlan, payload: bytes) -> bytes | ApplyFailure:
    """The payload patched by every operation, as compact JSON bytes, or why it failed."""
    patched = apply_plan_with_document(plan, payload)
    return patched if isinstance(patched, ApplyFailure) else patched[0]


def apply_plan_with_document(plan: FixPlan, payload: bytes) -> tuple[bytes, Any] | ApplyFailure:
    """`apply_plan`, also giving the patched document the bytes were written from (None for
    replace_payload, whose text is not parsed here), so a caller need not parse them again:
    orjson reads its own output back as that same document."""
    steps = plan._steps
    if len(steps) != len(plan.operations):
        try:
            steps = parse_operations(list(plan.operations))._steps
        except OperationError as exc:
            return ApplyFailure(max(exc.index, 0), exc.reason)
    if plan.replaces_payload:
        return plan.operations[0]["text"].encode("utf-8"), None
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            return ApplyFailure(
                0, "the payload nests more than 1024 levels, too deep to read: use replace_payload"
            )
        return ApplyFailure(0, "the payload is not JSON: use replace_payload")
    for index, step in enumerate(steps):
        try:
            doc = step(doc)
        except Failed as failure:
            return ApplyFailure(index, failure.reason)
        except RecursionError:
            return ApplyFailure(index, "the value nests too deeply for this operation")
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            # Not expected from any payload; here because apply_plan must never raise.
            return ApplyFailure(index, f"{plan.operations[index]['op']} failed: {str(exc)[:200]}")
    try:
        return orjson.dumps(doc), doc
    except orjson.JSONEncodeError:
        # orjson writes at most 254 levels; the worker refuses more than 32 anyway.
        return ApplyFailure(
            len(steps) - 1,
            "the patched payload nests too deeply to write: add a drop_deeper_than operation",
        )


def _parse_one(op: object) -> tuple[dict[str, Any], Step]:
    if not isinstance(op, dict):
        raise Invalid(
            f"an operation must be a JSON object such as "
            f'{{"op": "remove", "path": "/x"}}; got {named.kind(op)}'
        )
    problem = _json_problem(op)
    if problem is not None:
        raise Invalid(problem)
    size = len(orjson.dumps(op))
    if size > MAX_OPERATION_BYTES:
        raise Invalid(
            f"the operation is {size:,} bytes of JSON; at most {MAX_OPERATION_BYTES:,} are allowed"
        )
    name = op.get("op")
    if type(name) is not str or name not in _MEMBERS:
        what = "an 'op' member" if "op" not in op else f"a known op, not {show(name)}"
        raise Invalid(f"each operation needs {what}: one of {_OP_LIST}")
    members = _MEMBERS[name]
    for member in op:
        if member not in members:
            raise Invalid(f"unknown member {member!r} for {name!r}: it takes {', '.join(members)}")
    optional = _OPTIONAL.get(name, frozenset())
    for member in members:
        if member not in op and member not in optional:
            raise Invalid(f"{name!r} needs the member {member!r}: it takes {', '.join(members)}")
    if name in PATCH_OPS:
        return _parse_patch_op(name, op)
    return _parse_named_op(name, op)


def _parse_patch_op(name: str, op: dict[str, Any]) -> tuple[dict[str, Any], Step]:
    parts = pointer_parts(op, "path", root_allowed=name != "remove")
    normalized: dict[str, Any] = {"op": name}
    from_parts: list[str] = []
    if name in ("move", "copy"):
        from_parts = pointer_parts(op, "from", root_allowed=True)
        normalized["from"] = op["from"]
    normalized["path"] = op["path"]
    if "value" in op:
        normalized["value"] = op["value"]
    step = _PatchStep(normalized, jsonpatch.JsonPatch([normalized]), parts, from_parts)
    return normalized, step


def _parse_named_op(name: str, op: dict[str, Any]) -> tuple[dict[str, Any], Step]:
    if name == "rename":
        normalized = named.parse_rename(op)
        parts = pointer_parts(op, "path", root_allowed=False)
        return normalized, partial(named.rename, parts=parts, to=normalized["to"])
    if name == "cast":
        normalized = named.parse_cast(op)
        parts = pointer_parts(op, "path", root_allowed=False)
        return normalized, partial(named.cast, parts=parts, to=normalized["to"])
    if name == "parse_json":
        normalized = named.parse_parse_json(op)
        parts = pointer_parts(op, "path", root_allowed=False)
        return normalized, partial(named.parse_json, parts=parts)
    if name == "set_timestamp":
        normalized = named.parse_set_timestamp(op)
        if "value" in normalized:
            return normalized, partial(named.set_timestamp, text=normalized["value"])
        parts = pointer_parts(op, "from", root_allowed=False)
        return normalized, partial(_timestamp_from, parts=parts, form=normalized["format"])
    if name == "drop_deeper_than":
        normalized = named.parse_drop_deeper_than(op)
        return normalized, partial(named.drop_deeper_than, depth=normalized["depth"])
    normalized = named.parse_replace_payload(op)
    return normalized, _unreachable


def _timestamp_from(doc: Any, parts: list[str], form: str) -> Any:
    text = named.timestamp_from(locate(doc, parts), form, pointer_text(parts))
    return named.set_timestamp(doc, text)


def _unreachable(doc: Any) -> Any:
    # replace_payload is always alone, and apply_plan answers it without parsing the payload.
    raise Failed("replace_payload must be the only operation")


@dataclass(frozen=True, slots=True)
class _PatchStep:
    op: dict[str, Any]
    patch: jsonpatch.JsonPatch
    parts: list[str]
    from_parts: list[str]

    def __call__(self, doc: Any) -> Any:
        try:
            # Only a move changes the document before it can fail (it removes, then adds);
            # undoing that keeps the explanation true. The journal roughly doubles its cost.
            return self.patch.apply(doc, in_place=True, atomic=self.op["op"] == "move")
        except (jsonpatch.JsonPatchException, JsonPointerException) as exc:
            raise Failed(self._explain(doc, exc)) from None

    def _explain(self, doc: Any, exc: Exception) -> str:
        """Why the operation failed, in our words, against the document before it ran."""
        name, parts, source = self.op["op"], self.parts, self.from_parts
        try:
            if name == "test":
                try:
                    actual = locate(doc, parts)
                except Failed as failure:
                    return f"test failed: {failure.reason}"
                where = pointer_text(parts) or "the payload"
                return f"test failed: {where} is {show(actual)}, not {show(self.op['value'])}"
            if name == "move" and parts[: len(source)] == source and parts != source:
                return (
                    f"cannot move {pointer_text(source) or 'the payload'} into its own child "
                    f"{pointer_text(parts)}"
                )
            if name in ("move", "copy"):
                locate(doc, source)
            if name in ("remove", "replace"):
                locate(doc, parts)
            elif parts:
                container = locate(doc, parts[:-1])
                if type(container) is list:
                    named.array_index(container, parts, len(parts) - 1, allow_end=True)
                elif type(container) is not dict:
                    raise Failed(
                        f"path {pointer_text(parts)} cannot be added: "
                        f"{pointer_text(parts[:-1]) or 'the payload'} is {named.kind(container)}"
                    )
        except Failed as failure:
            return failure.reason
        return f"{name} failed: {str(exc)[:200]}"


def _json_problem(op: dict[Any, Any]) -> str | None:
    """Why the operation cannot be carried as JSON by orjson, or None.

    The request's JSON parser may accept NaN, Infinity and integers of any size; orjson would
    write NaN as null and refuses the others, so they are refused here, with where they are.
    """
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(op, 0, ())]
    while stack:
        node, depth, where = stack.pop()
        kind = type(node)
        if kind is dict or kind is list:
            if depth > MAX_VALUE_DEPTH:
                return f"{_where(where)} nests more than {MAX_VALUE_DEPTH} levels"
            if kind is dict:
                for key, value in node.items():
                    if type(key) is not str:
                        return f"{_where(where)} has a member name that is not a string"
                    if not _encodable(key):
                        return f"{_where(where)} has a member name that is not valid UTF-8 (a lone surrogate)"
                    stack.append((value, depth + 1, where + (key,)))
            else:
                stack.extend((value, depth + 1, where + (str(i),)) for i, value in enumerate(node))
        elif kind is str:
            if not _encodable(node):
                return f"{_where(where)} is a string that is not valid UTF-8 (a lone surrogate)"
        elif kind is int:
            if not _MIN_INT <= node <= _MAX_INT:
                return f"{_where(where)} is a number beyond 64 bits"
        elif kind is float:
            if node - node != 0.0:
                return f"{_where(where)} is {node!r}, which is not a JSON number"
        elif node is not None and kind is not bool:
            return f"{_where(where)} is not a JSON value"
    return None


def _where(where: tuple[Any, ...]) -> str:
    if not where:
        return "the operation"
    member = f"{str(where[0])[:50]!r}"
    return f"{member} at {pointer_text(where[1:])}" if len(where) > 1 else member


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
