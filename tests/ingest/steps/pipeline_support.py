"""Test data for the pipeline tests: an in-memory Lookup, records and a shared registry."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from app.contract.errors import Rejection
from app.contract.headers import KEY_ID
from app.ingest.addons import AddonRegistry
from app.ingest.pipeline import Accepted, KeyInfo, ProjectInfo, RawRecord, process

PROJECT = "0123456789abcdef01234567"
OTHER_PROJECT = "fedcba9876543210fedcba98"
TOPIC = f"in.{PROJECT}.purchases"
NOW = datetime(2026, 11, 24, 19, 7, 46, 123456, tzinfo=UTC)
# 2026-11-20T08:00:00.250Z
RECORD_MS = 1_795_161_600_250


class MemoryLookup:
    def __init__(self) -> None:
        self.projects = {
            PROJECT: ProjectInfo(PROJECT, True),
            OTHER_PROJECT: ProjectInfo(OTHER_PROJECT, True),
            "aaaaaaaaaaaaaaaaaaaaaaaa": ProjectInfo("aaaaaaaaaaaaaaaaaaaaaaaa", False),
        }
        self.keys = {
            "writer": KeyInfo("writer", PROJECT, True, {}),
            "reader": KeyInfo("reader", PROJECT, False, {}),
            "foreign": KeyInfo("foreign", OTHER_PROJECT, True, {}),
            "filler": KeyInfo(
                "filler",
                PROJECT,
                True,
                {
                    "plan": "pro",
                    "app": {"name": "shop", "version": "1.2"},
                    "tags": ["a", "b"],
                    "keen": {"timestamp": "2001-01-01T00:00:00Z"},
                },
            ),
        }

    def project(self, project_id: str) -> ProjectInfo | None:
        return self.projects.get(project_id)

    def key(self, key_id: str) -> KeyInfo | None:
        return self.keys.get(key_id)


@lru_cache(maxsize=1)
def registry() -> AddonRegistry:
    return AddonRegistry(None)


def record(
    value: bytes | dict | None,
    *,
    topic: str = TOPIC,
    partition: int = 0,
    offset: int = 42,
    timestamp_ms: int | None = RECORD_MS,
    headers: tuple[tuple[str, bytes], ...] = ((KEY_ID, b"writer"),),
) -> RawRecord:
    raw = orjson.dumps(value) if isinstance(value, dict) else value
    return RawRecord(topic, partition, offset, timestamp_ms, None, raw, headers)


def run(raw: RawRecord, lookup: MemoryLookup | None = None) -> Accepted | Rejection:
    return process(raw, lookup or MemoryLookup(), NOW, registry())


def accept(value: Any, **kwargs: Any) -> Accepted:
    result = run(record(value, **kwargs))
    assert isinstance(result, Accepted), result
    orjson.dumps(result.body)  # always JSON-serialisable
    return result


def reject(value: Any, code: str, **kwargs: Any) -> Rejection:
    lookup = kwargs.pop("lookup", None)
    result = run(record(value, **kwargs), lookup)
    assert isinstance(result, Rejection), result
    assert result.code == code, result
    assert len(orjson.dumps(result.detail)) < 2048
    assert len(result.message) < 1024
    return result
