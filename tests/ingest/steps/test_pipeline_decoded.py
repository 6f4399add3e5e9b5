"""`process_decoded` (the fix preview's way in, with the patched object already parsed) decides
exactly as `process` does on the record's bytes."""

from __future__ import annotations

import orjson
import pytest

from app.contract.headers import KEY_ID
from app.ingest.pipeline import process, process_decoded
from tests.ingest.steps.pipeline_support import NOW, MemoryLookup, record, registry

EVENTS = [
    b'{"item": "book", "price": 12}',
    b'{"$price": 1}',
    b'{"user.name": "ada"}',
    b'{"keen": {"timestamp": "not a time"}}',
    b'{"keen": {"timestamp": "2026-11-28T12:00:01.123Z"}, "a": [1, {"b": 2}]}',
    b'{"keen": {"id": "forged"}}',
    b'{"keen": {"addons": [{"name": "keen:nope"}]}}',
]


@pytest.mark.parametrize("key", [b"writer", b"filler", b"reader"])
@pytest.mark.parametrize("value", EVENTS)
def test_process_decoded_decides_as_process(value: bytes, key: bytes) -> None:
    raw = record(value, headers=((KEY_ID, key),))
    expected = process(raw, MemoryLookup(), NOW, registry())
    got = process_decoded(raw, orjson.loads(value), MemoryLookup(), NOW, registry())
    assert got == expected
