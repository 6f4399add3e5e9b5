"""Bodies of the problems routes (customer and support staff) and of the problems settings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas.errors import ErrorSummaryItem

# 100 years: longer is "never" in practice, and the worker's time arithmetic stays in range.
MAX_QUIET_HOURS = 100 * 365 * 24.0
# An ignore by count ends at count + ignore_count: both must fit a 64-bit column.
MAX_IGNORE_COUNT = 10**15

_PROBLEM_ID = "0f4c9d6a2b8e1f3a5c7d9e0b2a4c6e8f"


class DlqCoordinates(BaseModel):
    topic: str | None = Field(
        description="The DLQ as the customer sees it.", examples=["purchases-DLQ"]
    )
    backend_topic: str | None = None
    partition: int | None = None
    offset: int | None = None


class ProblemSample(BaseModel):
    error_id: str = Field(description="The latest error of the problem that has a dead letter.")
    dlq: DlqCoordinates = Field(description="Where to read that error's record in the DLQ.")


class ProblemItem(BaseModel):
    problem_id: str = Field(examples=[_PROBLEM_ID])
    project_id: str
    title: str = Field(examples=["Property name `$price` starts with `$` in items[]"])
    code: str = Field(examples=["invalid_property_name"])
    stage: str = Field(examples=["validate"])
    collection: str = Field(examples=["purchases"])
    location: str = Field(
        description="The normalized property path; empty for codes without one.",
        examples=["items[].$price"],
    )
    status: Literal["open", "resolved", "regressed", "ignored"] = Field(examples=["open"])
    count: int = Field(description="Error rows of the problem (exact).", examples=[1204])
    first_seen: str = Field(examples=["2026-05-01T10:00:00.000Z"])
    last_seen: str = Field(examples=["2026-05-02T08:13:27.401Z"])
    first_error_id: str
    last_error_id: str
    sample: ProblemSample | None = Field(
        description="A dead letter of the problem (null when none of its errors has one, "
        "e.g. events refused by the HTTP API)."
    )
    status_changed_at: str | None
    status_changed_by: str | None = Field(examples=["key:4f1e2d3c4b5a69788796a5b4c3d2e1f0"])
    resolved_at: str | None
    regressed_at: str | None
    ignore_until: str | None = Field(description="An ignore ends at this time.")
    ignore_until_count: int | None = Field(
        description="An ignore ends once `count` reaches this total."
    )
    daily: list[int] = Field(
        description="Errors per UTC day over the last 14 days, oldest first (today last).",
        min_length=14,
        max_length=14,
        examples=[[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 840, 352]],
    )


class ProblemPage(BaseModel):
    problems: list[ProblemItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class HourCount(BaseModel):
    hour: str = Field(examples=["2026-05-02T08:00:00.000Z"])
    count: int = Field(examples=[17])


class ProblemKeyCount(BaseModel):
    key_id: str
    name: str | None = Field(description="The key's name; null if unnamed or unknown.")
    count: int
    last_seen: str


class ProblemDetail(ProblemItem):
    hourly: list[HourCount] = Field(
        description="Errors per hour over the last 14 days (336 hours), oldest first."
    )
    keys: list[ProblemKeyCount] = Field(
        description="The keys that sent the problem's errors, most errors first (at most 100)."
    )
    samples: list[ErrorSummaryItem] = Field(description="The 5 newest errors of the problem.")
    explanation: str = Field(description="What the code means and what to do about it.")


class ProblemStatusChange(BaseModel):
    model_config = ConfigDict(
        extra="forbid",  # an unknown field is a 400, never ignored
        json_schema_extra={
            "examples": [
                {"status": "resolved"},
                {"status": "ignored", "ignore_until": "2026-06-01T00:00:00Z"},
                {"status": "ignored", "ignore_count": 1000},
            ]
        },
    )

    status: Literal["resolved", "ignored", "open"] = Field(
        description="`regressed` is only ever set by a new error after a resolution."
    )
    ignore_until: str | None = Field(
        default=None, description="With `ignored`: the ignore ends at this ISO-8601 time."
    )
    ignore_count: int | None = Field(
        default=None,
        ge=1,
        le=MAX_IGNORE_COUNT,
        description="With `ignored`: the ignore ends after this many more errors.",
    )


class ProblemSettings(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"resolve_after_quiet_hours": 24}]},
    )

    resolve_after_quiet_hours: float | None = Field(
        gt=0,
        le=MAX_QUIET_HOURS,
        description="Hours without a new error after which an open or regressed problem is "
        "resolved by itself; null: the server's default.",
    )


class ProblemSettingsView(BaseModel):
    resolve_after_quiet_hours: float | None = Field(
        description="This project's setting; null: none (the server's default applies).",
        examples=[24],
    )
    effective_resolve_after_quiet_hours: float = Field(
        description="What applies: this project's setting, else the server's "
        "INBOUND_PROBLEM_RESOLVE_AFTER_QUIET_HOURS (0: never).",
        examples=[24],
    )
