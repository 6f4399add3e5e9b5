"""Step 8: run the add-ons the event asks for in ``keen.addons``.

Every entry is checked before any add-on runs, so a malformed list refuses the event
without half-enriching it. Entries run in list order, so an add-on may read what an
earlier one wrote. An input property that is missing or null skips that add-on (not an
error); a value of the wrong kind gives the add-on's null-filled output.

Entry shape: ``{"name": str, "input": {param: "dotted.path", ...}, "output": "dotted.path"}``;
``keen:ip_to_geo`` also accepts ``"remove_ip_property": true`` inside ``input``. Input
paths may read ``keen`` (e.g. ``keen.timestamp``); output paths may not write under it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from app.contract.errors import Rejection
from app.ingest.steps.properties import name_problem

if TYPE_CHECKING:
    from app.ingest.addons import Addon, AddonRegistry

MAX_ADDONS = 16
PARSED_CACHE_SIZE = 4096
# Deep enough for any sensible layout, shallow enough that output plus the add-on's own
# nesting stays inside the 32-level rule.
MAX_PATH_SEGMENTS = 16
_ENTRY_KEYS = frozenset({"name", "input", "output"})


@dataclass(frozen=True, slots=True)
class _Request:
    addon: Addon
    inputs: dict[str, tuple[str, ...]]
    flags: dict[str, bool]
    output: tuple[str, ...]


def run_addons(event: dict[str, Any], registry: AddonRegistry) -> Rejection | None:
    # Keen: "the keen.addons configuration will be omitted from the recorded event".
    entries = event["keen"].pop("addons", None)
    if entries is None:
        return None
    requests = _requests(entries, registry)
    if isinstance(requests, Rejection):
        return requests

    for index, request in enumerate(requests):
        values: dict[str, Any] = {}
        skipped = False
        for param, path in request.inputs.items():
            value = get_path(event, path)
            if value is None:
                if param in request.addon.required:
                    skipped = True
                    break
                continue
            values[param] = value
        if skipped:
            continue
        try:
            result = request.addon.run(values)
        except Exception as exc:  # a parser bug must not stop the worker
            return _error(
                f"The add-on {request.addon.name} failed on this event's input "
                f"({type(exc).__name__}); check the input value or remove the add-on.",
                index,
            )
        if not set_path(event, request.output, result):
            return _error(
                f"The output path {'.'.join(request.output)!r} of {request.addon.name} runs "
                "through a property that is not an object; choose another output path.",
                index,
            )
        if request.flags.get("remove_ip_property") and request.inputs["ip"][0] != "keen":
            delete_path(event, request.inputs["ip"])
    return None


def check_addons(entries: Any, registry: AddonRegistry) -> Rejection | None:
    """The syntax of a ``keen.addons`` list (None: no list), without running any add-on:
    what the HTTP API can tell at once. Running them (bad input values, an output path
    through a non-object, which autofill may change) stays the worker's."""
    if entries is None:
        return None
    requests = _requests(entries, registry)
    return requests if isinstance(requests, Rejection) else None


def _requests(entries: Any, registry: AddonRegistry) -> list[_Request] | Rejection:
    if type(entries) is not list:
        return _error("keen.addons must be a list of add-on requests; send a list.", None)
    if len(entries) > MAX_ADDONS:
        return _error(
            f"keen.addons has {len(entries)} entries; request at most {MAX_ADDONS} add-ons.",
            None,
        )
    return _parse_cached(entries, registry)


def _parse_cached(entries: list[Any], registry: AddonRegistry) -> list[_Request] | Rejection:
    cache = registry.parsed_requests
    try:
        text = orjson.dumps(entries)
    except orjson.JSONEncodeError:
        return _parse_all(entries, registry)
    found = cache.get(text)
    if found is None:
        found = _parse_all(entries, registry)
        if len(cache) >= PARSED_CACHE_SIZE:
            cache.clear()
        cache[text] = found
    return found


def _parse_all(entries: list[Any], registry: AddonRegistry) -> list[_Request] | Rejection:
    requests: list[_Request] = []
    for index, entry in enumerate(entries):
        parsed = _parse_entry(index, entry, registry)
        if isinstance(parsed, Rejection):
            return parsed
        requests.append(parsed)
    return requests


def _parse_entry(index: int, entry: Any, registry: AddonRegistry) -> _Request | Rejection:
    if type(entry) is not dict:
        return _error("Each keen.addons entry must be an object with name, input, output.", index)
    unexpected = [key for key in entry if key not in _ENTRY_KEYS]
    if unexpected:
        return _error(
            f"Unexpected field {unexpected[0][:64]!r} in a keen.addons entry; send only "
            "name, input and output.",
            index,
        )
    name = entry.get("name")
    addon = registry.get(name) if type(name) is str else None
    if addon is None:
        return _error(
            f"Unknown add-on {str(name)[:64]!r}; use one of {', '.join(registry.names)}.", index
        )
    given = entry.get("input")
    if type(given) is not dict:
        return _error(f"{addon.name}: 'input' must be an object of parameter paths.", index)
    inputs: dict[str, tuple[str, ...]] = {}
    flags: dict[str, bool] = {}
    for param, value in given.items():
        if param in addon.flags:
            if type(value) is not bool:
                return _error(f"{addon.name}: input {param!r} must be true or false.", index)
            flags[param] = value
        elif param in addon.required or param in addon.optional:
            path = _parse_path(value)
            if path is None:
                return _error(
                    f"{addon.name}: input {param!r} must be a dotted property path such as "
                    "'user.ip'.",
                    index,
                )
            inputs[param] = path
        else:
            known = sorted(addon.required | addon.optional | addon.flags)
            return _error(
                f"{addon.name}: unknown input {param[:64]!r}; its inputs are {', '.join(known)}.",
                index,
            )
    missing = sorted(addon.required - inputs.keys())
    if missing:
        return _error(
            f"{addon.name}: input {missing[0]!r} is required; map it to a property.", index
        )
    output = _parse_path(entry.get("output"))
    if output is None or any(name_problem(part) for part in output):
        return _error(
            f"{addon.name}: 'output' must be a dotted property path whose names follow the "
            "property rules (no '$' prefix, at most 256 characters); fix the output path.",
            index,
        )
    if output[0] == "keen":
        return _error(
            f"{addon.name}: the output may not be written under 'keen'; choose another path.",
            index,
        )
    return _Request(addon, inputs, flags, output)


def _parse_path(value: Any) -> tuple[str, ...] | None:
    if type(value) is not str or not value:
        return None
    parts = tuple(value.split("."))
    if len(parts) > MAX_PATH_SEGMENTS or not all(parts):
        return None
    return parts


def _error(message: str, index: int | None) -> Rejection:
    detail = {"path": "keen.addons" if index is None else f"keen.addons[{index}]"}
    return Rejection("addon_error", "enrich", message, detail)


def get_path(event: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = event
    for part in path:
        if type(node) is not dict:
            return None
        node = node.get(part)
    return node


def set_path(event: dict[str, Any], path: tuple[str, ...], value: Any) -> bool:
    node: Any = event
    for part in path[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif type(child) is not dict:
            return False
        node = child
    node[path[-1]] = value
    return True


def delete_path(event: dict[str, Any], path: tuple[str, ...]) -> None:
    parent = get_path(event, path[:-1]) if len(path) > 1 else event
    if type(parent) is dict:
        parent.pop(path[-1], None)
