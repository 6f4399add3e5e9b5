"""Bodies of the customer's and support staff's errors routes, and of reconciliation."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Coordinates(BaseModel):
    topic: str | None = Field(description="The name the customer sees.")
    backend_topic: str | None = None
    partition: int | None = None
    offset: int | None = None


class ErrorSummaryItem(BaseModel):
    error_id: str
    project_id: str
    collection: str
    code: str = Field(examples=["invalid_json"])
    stage: str = Field(examples=["decode"])
    message: str
    detail: dict[str, Any]
    status: str = Field(examples=["open"])
    problem_id: str | None = Field(
        description="The problem this error belongs to (null only for rows older than "
        "problems that the migration could not assign).",
        examples=["3f5a0c9e1b7d4a2c8e6f0b1d3a5c7e9f"],
    )
    created_at: str
    updated_at: str
    record_timestamp: str | None
    key_id: str | None
    payload_size: int
    payload_sha256: str
    payload_truncated: bool
    source: Coordinates
    dlq: Coordinates
    replay_count: int
    replay_outcome: dict[str, Any] | None


class Bytes(BaseModel):
    base64: str | None
    utf8: str | None = Field(description="The bytes as text, when they are valid UTF-8.")


class HeaderView(BaseModel):
    name: str
    value_base64: str
    value_utf8: str | None


class ErrorDetail(ErrorSummaryItem):
    payload: Bytes = Field(description="The stored payload (up to the configured cap).")
    record_key: Bytes
    headers: list[HeaderView]


class ErrorPage(BaseModel):
    errors: list[ErrorSummaryItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page.")


class SummaryCounts(BaseModel):
    total: int
    by_code: dict[str, int]
    by_collection: dict[str, int]


class SummaryBucket(SummaryCounts):
    start: str
    end: str


class ErrorSummary(BaseModel):
    start: str
    end: str
    bucket: str
    totals: SummaryCounts
    buckets: list[SummaryBucket]


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a 400, never ignored

    status: Literal["open", "resolved", "ignored"] = Field(examples=["resolved"])


class ReconciliationRow(BaseModel):
    collection: str
    bucket_start: str
    received: int
    accepted: int
    rejected: int
    dropped: int
    dropped_reasons: dict[str, int]
    unaccounted: int = Field(
        description="received - accepted - rejected - dropped; 0 when all is known."
    )
    deleted: int = Field(
        default=0,
        description="Accepted events of this hour deleted since (DELETE .../events/{collection}); "
        "apart from the balance, which it does not change.",
    )


class ProblemsReconciliation(BaseModel):
    error_rows: int = Field(description="The project's error rows, all time.")
    counted_in_problems: int = Field(description="The sum of its problems' counts.")
    unaccounted: int = Field(description="error_rows - counted_in_problems; always 0.")


class Reconciliation(BaseModel):
    start: str
    end: str
    balanced: bool = Field(description="Every bucket has received = accepted + rejected + dropped.")
    totals: dict[str, int]
    rows: list[ReconciliationRow]
    problems: ProblemsReconciliation = Field(
        description="Over all time (not the window): every error row counted in its problem."
    )
