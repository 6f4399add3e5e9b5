"""Step 1: the size of the record value, checked before any parsing work is spent on it."""

from __future__ import annotations

from app.contract.errors import Rejection

# 900 KB, the limit named for the Kafka path (spec §1).
MAX_EVENT_BYTES = 921_600


def check_size(value: bytes | None) -> Rejection | None:
    if not value:
        # A tombstone or empty record carries no event at all; to the customer it reads as
        # "this is not JSON", which is the most useful thing to say about it.
        return Rejection(
            "invalid_json",
            "decode",
            "The record value is empty; send one JSON object per record.",
            {"bytes": 0},
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
