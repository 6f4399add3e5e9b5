"""Which problem a rejection belongs to (docs/design.md, "Problems").

A problem is one kind of failure in one collection: every rejection of a project maps to
exactly one, through ``problem_id = sha256(project, collection, code, location)`` (the
collection is empty for the codes about a collection or project name itself, which group per
project). The location
is the property path of the rejection's detail with the parts that vary from event to event
collapsed — array positions (``items[3]`` → ``items[]``) and map keys that look like ids
(``users.5f1c9a0e2b7d.$x`` → ``users.*.$x``) — so one producer gone wrong makes one problem,
not one per event. Codes whose detail has no path (``invalid_json``, ``key_not_permitted``, ...)
group by the code alone.

The rule is a contract: ids stay stable across versions, so it is extended, never changed.
Pure and cached: a bad producer repeats the same few locations.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_INDEX = re.compile(r"\[\d+\]")
_UUID = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
_HEX = re.compile(r"[0-9a-fA-F]{12,}")
# A ULID: 26 Crockford base-32 characters (no I, L, O, U), the first 0-7 (a 48-bit time).
_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}", re.IGNORECASE)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,}")
# The property step marks a path it cut at its cap (300 characters) with this.
CUT_MARK = "…"
_CUT_INDEX = re.compile(r"\[\d+…$")
_HEX_START = re.compile(r"[0-9a-fA-F-]+")
_TOKEN_START = re.compile(r"[A-Za-z0-9_-]+")
# Locations are shown and stored; the detail's path is already capped at about 300.
_LOCATION_CAP = 320
_NAME_SHOWN = 64

# What the title says about each code; codes with a location add where.
_TITLES = {
    "event_too_large": "Event larger than 900 KB",
    "empty_value": "Empty record value (null or zero bytes)",
    "invalid_utf8": "Event is not valid UTF-8",
    "invalid_json": "Event is not valid JSON",
    "not_an_object": "Event is not a JSON object",
    "invalid_collection_name": "Invalid collection name",
    "collection_name_too_long": "Collection name longer than 64 characters",
    "unknown_project": "Unknown or disabled project",
    "key_not_permitted": "Key not permitted to write to this project",
    "invalid_property_name": "Invalid property name",
    "invalid_property_value": "String value contains the NUL character",
    "reserved_property": "Reserved property",
    "invalid_timestamp": "keen.timestamp is not an ISO-8601 date-time",
    "too_deeply_nested": "Nested more than 32 levels deep",
    "addon_error": "Add-on error",
}
_REASONS = {
    "empty": "is empty",
    "longer than 256 characters": "is longer than 256 characters",
    "starts with '$'": "starts with `$`",
    "contains '.'": "contains `.`",
    "contains the NUL character": "contains the NUL character",
}


@dataclass(frozen=True, slots=True)
class ProblemKey:
    problem_id: str
    code: str
    location: str  # "" for a code without a path
    title: str
    collection: str  # the problem's collection; "" for one that spans the project


def looks_like_id(segment: str) -> bool:
    """A map key that names one thing among many (an id), not a property: all digits, a UUID,
    12+ hex characters with a digit, a ULID, or 16+ token characters of which a third are
    digits."""
    if not segment:
        return False
    if segment.isdigit() and segment.isascii():
        return True
    if _UUID.fullmatch(segment):
        return True
    if _HEX.fullmatch(segment) and any(c.isdigit() for c in segment):
        return True
    if _ULID.fullmatch(segment):
        return True
    if _TOKEN.fullmatch(segment):
        return sum(c.isdigit() for c in segment) * 3 >= len(segment)
    return False


def _could_be_id_start(text: str) -> bool:
    """The start of a map key cut by the path cap that may be an id: digits, hex (or a UUID's
    dashes) with a digit, or token characters of which a third are digits."""
    if not text or not text.isascii():
        return False
    if text.isdigit() or (_HEX_START.fullmatch(text) and any(c.isdigit() for c in text)):
        return True
    return bool(_TOKEN_START.fullmatch(text)) and sum(c.isdigit() for c in text) * 3 >= len(text)


def _collapse_cut_end(parts: list[str]) -> None:
    """A path cut at its cap ends in part of a segment: an array position (``[12…``) or an
    id-like map key (``5f1c9a…``) cut there would make one location per event."""
    last = _CUT_INDEX.sub("[]" + CUT_MARK, parts[-1])
    bare = last[: -len(CUT_MARK)]
    if "[" not in bare and _could_be_id_start(bare):
        last = "*" + CUT_MARK
    parts[-1] = last


def normalize_path(path: str) -> str:
    """``items[3].$price`` → ``items[].$price``; id-like map keys become ``*``."""
    text = _INDEX.sub("[]", path.replace("\x00", "\ufffd"))
    parts = []
    for segment in text.split("."):
        bare = segment.rstrip("[]")
        suffix = segment[len(bare) :]
        parts.append(("*" if looks_like_id(bare) else bare) + suffix)
    if text.endswith(CUT_MARK):
        _collapse_cut_end(parts)
    return ".".join(parts)[:_LOCATION_CAP]


def _shown(text: str) -> str:
    return text if len(text) <= _NAME_SHOWN else text[:_NAME_SHOWN] + "…"


def _title(code: str, location: str, reason: str | None) -> str:
    base = _TITLES.get(code, code)
    if code == "invalid_property_name":
        parent, _, name = location.rpartition(".")
        where = f" in {_shown(parent)}" if parent else ""
        said = _REASONS.get(reason or "", "is not allowed")
        if reason == "contains '.'":
            # The rendered path joins names with '.', so the name itself cannot be told apart.
            return f"A property name contains `.` at `{_shown(location)}`"
        if not name:
            return f"A property name {said}{where}"
        return f"Property name `{_shown(name)}` {said}{where}"
    if not location or code == "invalid_timestamp":
        return base
    return f"{base} at `{_shown(location)}`"


# Codes about the name itself: the bad names are what varies (and a client can make up any
# number of them), so the problem spans the project instead of one per name.
PROJECT_WIDE_CODES = frozenset(
    {"invalid_collection_name", "collection_name_too_long", "unknown_project"}
)


@lru_cache(maxsize=8192)
def _key(project_id: str, collection: str, code: str, path: str, reason: str) -> ProblemKey:
    if code in PROJECT_WIDE_CODES:
        collection = ""
    location = normalize_path(path) if path else ""
    digest = hashlib.sha256(
        "\x1f".join((project_id, collection, code, location)).encode("utf-8", "surrogatepass")
    ).hexdigest()[:32]
    return ProblemKey(digest, code, location, _title(code, location, reason or None), collection)


# The location of the one problem per project and code that takes the errors of new
# problems once a project has as many as it may keep (a producer sending random property
# names, or to random collections, must not create a problem per event).
OVERFLOW_LOCATION = "(other locations)"


def overflow_of(project_id: str, code: str) -> ProblemKey:
    """Where a rejection goes when its own problem would exceed the project's problem limit:
    at most one per code, so a project never has more than the limit plus one per code."""
    # A fifth field, so no real location can hash to it.
    parts = (project_id, "", code, OVERFLOW_LOCATION, "overflow")
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    title = f"{_TITLES.get(code, code)} (other problems, over the project's problem limit)"
    return ProblemKey(digest[:32], code, OVERFLOW_LOCATION, title, "")


def problem_of(project_id: str, collection: str, code: str, detail: dict[str, Any]) -> ProblemKey:
    """The problem of a rejection. ``collection`` as the error row stores it (capped, no NUL),
    so the same rule applied to stored rows gives the same id."""
    path = detail.get("path") if detail else None
    # Only this code's title says the reason; others' reasons quote the event (invalid_json's
    # names the column), and passing them would make a cache entry per bad event.
    reason = detail.get("reason") if detail and code == "invalid_property_name" else None
    return _key(
        project_id,
        collection,
        code,
        path if type(path) is str else "",
        reason if type(reason) is str else "",
    )
