"""The replay request and its answer."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ReplayFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a 400, never ignored

    collection: str | None = None
    code: str | None = Field(default=None, examples=["invalid_timestamp"])
    status: str = Field(default="open", description="Statuses to replay (comma-separated).")
    problem_id: str | None = Field(default=None, description="Only the errors of this problem.")
    since: str | None = None
    until: str | None = None


class ReplayRequest(BaseModel):
    error_id: str | None = Field(default=None, description="Replay this one error ...")
    filter: ReplayFilter | None = Field(default=None, description="... or all matching this.")
    dry_run: bool = Field(default=False, description="Only count what would be replayed.")
    limit: int = Field(default=100, ge=1, le=10000, description="Most errors per call.")

    model_config = {
        "extra": "forbid",  # {"filter": {"error_ids": ...}} must not match everything
        "json_schema_extra": {
            "examples": [
                {"error_id": "9f3c2a7b5d1e4c6a8b0f2e4d6c8a0b1c"},
                {
                    "filter": {"collection": "purchases", "code": "invalid_timestamp"},
                    "dry_run": True,
                },
            ]
        },
    }


class Replayed(BaseModel):
    error_id: str
    topic: str
    partition: int
    offset: int
    replay_count: int


class ReplayRefused(BaseModel):
    error_id: str
    reason: str = Field(examples=["replay_cap_reached"])


class ReplayResult(BaseModel):
    dry_run: bool
    matched: int = Field(description="Errors matching the request.")
    replayed: list[Replayed]
    refused: list[ReplayRefused]
    remaining: int = Field(description="Matching errors left for a later call (limit, rate).")
