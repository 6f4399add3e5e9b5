"""Showing client-supplied text in logs without letting it forge log lines."""

from __future__ import annotations

_LIMIT = 200


def shown(value: object, limit: int = _LIMIT) -> str:
    """``value`` quoted with control characters escaped (repr), cut to ``limit`` characters."""
    if value is None:
        return "None"
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        return repr(text[:limit]) + f"... ({len(text)} chars)"
    return repr(text)
