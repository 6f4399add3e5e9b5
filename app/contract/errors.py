"""A rejected event: a stable code, the stage that refused it, a message, a detail
(docs/design.md, "Error codes")."""

from __future__ import annotations

from dataclasses import dataclass, field

# Stable snake_case codes: extend, never rename.
ERROR_CODES: frozenset[str] = frozenset(
    {
        "event_too_large",
        "empty_value",
        "invalid_utf8",
        "invalid_json",
        "not_an_object",
        "invalid_collection_name",
        "collection_name_too_long",
        "unknown_project",
        "key_not_permitted",
        "invalid_property_name",
        "invalid_property_value",
        "reserved_property",
        "invalid_timestamp",
        "too_deeply_nested",
        "addon_error",
    }
)
STAGES: frozenset[str] = frozenset({"edge", "http", "decode", "validate", "enrich", "persist"})


@dataclass(frozen=True)
class Rejection:
    code: str
    stage: str
    message: str
    detail: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.code not in ERROR_CODES:
            raise ValueError(f"unknown error code {self.code!r}")
        if self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r}")
