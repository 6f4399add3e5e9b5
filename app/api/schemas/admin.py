"""Bodies of the support-staff routes (projects, overview, pauses, audit log)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas.errors import ErrorSummaryItem


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a 400, never ignored

    name: str = Field(min_length=1, max_length=200, examples=["shop"])


class ProjectCreated(BaseModel):
    project_id: str
    name: str
    master_key: str
    write_key: str
    read_key: str


class ProjectView(BaseModel):
    project_id: str
    name: str
    is_active: bool
    created_at: str


class PauseView(BaseModel):
    pause_id: int
    collection: str
    topic: str
    partition: int
    reason: str
    paused_at: str
    resumed_at: str | None
    resumed_by: str | None


class Overview(BaseModel):
    project: ProjectView
    window_hours: int
    received: int
    rejected: int
    error_rate: float = Field(description="rejected / received over the window (0 when none).")
    errors_by_code: dict[str, int]
    open_errors: int
    last_error: ErrorSummaryItem | None
    paused_streams: list[PauseView]


class AuditView(BaseModel):
    id: int
    at: str
    actor: str
    action: str = Field(examples=["error.payload.read"])
    project_id: str | None
    target: str | None


class AuditPage(BaseModel):
    entries: list[AuditView]
    next_cursor: int | None = Field(description="Pass as `before_id` for older entries.")
