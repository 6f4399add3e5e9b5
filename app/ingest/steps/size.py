"""Step 1: the size of the record value, checked before any parsing work is spent on it."""

from __future__ import annotations

from app.contract.errors import Rejection

# 900 KB, the limit Keen names for its Kafka inbound path.
MAX_EVENT_BYTES = 921_600


def check_size(value: bytes | None) -> Rejection | None:
    if not value:
        # A tombstone (null value) or an empty record carries no event at all.
        return Rejection(
            "empty_value",
            "decode",
            "The record value is "
            + ("null (a tombstone)" if value is None else "empty")
            + "; send one JSON object per record.",
            {"bytes": 0, "null": value is None},
        )
    size = len(value)
    if size > MAX_EVENT_BYTES:
        return Rejection(
            "event_too_large",
            "decode",
            f"The event is {size} bytes; send at most 900 KB ({MAX_EVENT_BYTES} bytes) per "
            "event, for example by splitting it or dropping large properties.",
            {"bytes": size, "limit": MAX_EVENT_BYTES},
        )
    return None
