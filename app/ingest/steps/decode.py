"""Step 2: bytes -> a JSON object.

orjson validates UTF-8 itself, so the happy path decodes once. Only when orjson refuses the
input do we look closer, to tell the customer which of three things is wrong:

- the bytes are not UTF-8 (`invalid_utf8`);
- the text is UTF-8 but names a lone surrogate through an escape such as ``"\\ud800"``: such a
  string cannot be represented in UTF-8 at all, so it is reported as `invalid_utf8` too;
- anything else is `invalid_json` (this includes ``NaN`` and ``Infinity``, which are not JSON,
  numbers too large for a double, and a UTF-8 byte order mark).

orjson stops at 1024 levels of nesting; that refusal is reported as `too_deeply_nested`, the
code the property rules use for anything over 32 levels.

Duplicate keys in one object: the last value wins (orjson's behaviour, and what most JSON
parsers and browsers do). We accept such events rather than reject them, because producers
that emit duplicates usually do so by merging dictionaries, and the last value is the one
they meant.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.contract.errors import Rejection

_JSON_TYPE_NAMES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def decode_event(value: bytes) -> dict[str, Any] | Rejection:
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return _explain(value, exc)
    if type(event) is not dict:
        kind = _JSON_TYPE_NAMES.get(type(event), "not an object")
        return Rejection(
            "not_an_object",
            "decode",
            f"The event is {kind}; send one JSON object per record, e.g. "
            '{"item": "book", "price": 12}.',
            {"type": kind},
        )
    return event


def _explain(value: bytes, exc: orjson.JSONDecodeError) -> Rejection:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as bad:
        return Rejection(
            "invalid_utf8",
            "decode",
            "The event is not valid UTF-8; encode the JSON text as UTF-8.",
            {"byte_offset": bad.start},
        )
    reason = str(exc.msg) if hasattr(exc, "msg") else str(exc)
    position = getattr(exc, "pos", None)
    if "depth limit" in reason:
        return Rejection(
            "too_deeply_nested",
            "validate",
            "The event nests objects or arrays more than 32 levels deep; flatten it to at "
            "most 32 levels.",
            {"limit": 32},
        )
    if "surrogate" in reason:
        return Rejection(
            "invalid_utf8",
            "decode",
            "The event contains a \\u escape of a lone UTF-16 surrogate, which is not a "
            "character; fix the string (often a truncated emoji) before sending.",
            {"char_offset": position, "reason": "lone surrogate escape"},
        )
    return Rejection(
        "invalid_json",
        "decode",
        f"The event is not valid JSON ({reason[:200]}); send one JSON object per record.",
        {"char_offset": position, "reason": reason[:200]},
    )
