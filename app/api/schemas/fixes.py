"""The fix request, its preview or result, and the recorded fixes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas.replay import ReplayFilter, ReplayRefused

OPERATIONS_DOC = (
    "JSON Patch operations (RFC 6902: add, remove, replace, move, copy, test; paths are JSON "
    "Pointers, RFC 6901, so `/user.name` and `/$price` name those properties) and the named "
    "ones: rename {path, to}, cast {path, to: number|string|boolean}, parse_json {path}, "
    "set_timestamp {from, format?: iso|unix_s|unix_ms} or {value}, drop_deeper_than "
    "{depth}, replace_payload {text} (alone, with an error_id only). Applied in order."
)


class FixRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "filter": {"problem_id": "6f1d0c2b9a8e7f6d5c4b3a2910ffeedd"},
                    "operations": [{"op": "rename", "path": "/user.name", "to": "user_name"}],
                    "dry_run": True,
                },
                {
                    "error_id": "9f3c2a7b5d1e4c6a8b0f2e4d6c8a0b1c",
                    "operations": [{"op": "replace_payload", "text": '{"price": 1}'}],
                    "dry_run": False,
                },
            ]
        },
    )

    error_id: str | None = Field(default=None, description="Fix this one error ...")
    filter: ReplayFilter | None = Field(
        default=None, description="... or all matching this (as for replay)."
    )
    # Validated by the fix operations themselves, so every bad operation is answered
    # InvalidFixError with its index rather than a generic validation error.
    operations: Any = Field(
        description=OPERATIONS_DOC,
        json_schema_extra={"type": "array", "items": {"type": "object"}, "minItems": 1},
    )
    dry_run: bool = Field(
        default=True, description="Only preview (the default); false patches and replays."
    )
    limit: int = Field(default=100, ge=1, le=10000, description="Most errors per call.")
    save: bool = Field(
        default=False,
        description="Keep the fix on its problem (the filter's `problem_id`, or the "
        "`error_id`'s problem) to apply again later to errors that arrive after it. Allowed "
        "with `dry_run` too: the preview is then recorded (status `preview`, nothing "
        "replayed) and `fix_id` names it. Not with `replace_payload`.",
    )


class SavedFixApply(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"dry_run": True}, {"dry_run": False}]}
    )

    dry_run: bool = Field(
        default=True, description="Only preview (the default); false patches and replays."
    )
    limit: int = Field(default=100, ge=1, le=10000, description="Most errors per call.")


class FixFailure(BaseModel):
    index: int = Field(description="The operation that failed; -1: the event cannot be replayed.")
    reason: str = Field(examples=["path /user.name does not exist"])
    count: int


class SampleOutcome(BaseModel):
    status: Literal["accepted", "rejected", "failed"]
    keen_id: str | None = Field(default=None, description="accepted: the id it would be stored as.")
    code: str | None = Field(default=None, description="rejected: the error code.")
    message: str | None = None
    index: int | None = Field(default=None, description="failed: the operation's index (or -1).")
    reason: str | None = None


class FixSample(BaseModel):
    error_id: str
    before: str | None = Field(description="The stored payload as text (capped).")
    after: str | None = Field(description="The patched payload as text (capped); null: failed.")
    outcome: SampleOutcome


class FixResult(BaseModel):
    dry_run: bool
    fix_id: str | None = Field(
        description="The recorded fix: applied, or saved (a saved preview); null for a preview."
    )
    matched: int = Field(description="Errors matching the target.")
    examined: int = Field(description="Errors patched and checked (at most `limit`).")
    would_accept: int
    would_reject: int
    would_reject_by_code: dict[str, int]
    failed_to_apply: int
    failures: list[FixFailure] = Field(description="By operation and reason, most common first.")
    samples: list[FixSample] = Field(description="The first few examined errors.")
    replayed: int = Field(description="Patched events re-produced (apply only).")
    refused: list[ReplayRefused]
    remaining: int = Field(
        description="Errors left for a later call: would-be-accepted ones over the replay "
        "rate, and matching ones beyond `limit`."
    )


class SavedFixResult(FixResult):
    saved_fix_id: str = Field(description="The saved fix whose operations were applied.")


class FixCounts(BaseModel):
    matched: int
    examined: int
    accepted: int = Field(description="Would be accepted when applied.")
    rejected: int = Field(description="Would still be rejected: not replayed.")
    failed: int = Field(description="Could not be patched: not replayed.")
    replayed: int
    refused: int
    remaining: int


class FixView(BaseModel):
    fix_id: str
    project_id: str
    operations: list[dict[str, Any]]
    target: dict[str, Any] = Field(examples=[{"filter": {"problem_id": "6f1d0c2b9a8e7f6d"}}])
    problem_id: str | None
    actor: str
    created_at: str
    counts: FixCounts
    status: Literal["applied", "preview"] = Field(
        description="applied: its events were replayed; preview: saved from a preview, "
        "nothing replayed."
    )
    saved: bool = Field(description="Kept on its problem, to apply again to later errors.")
    saved_fix_id: str | None = Field(description="The saved fix this one applied again.")
    unsaved_at: str | None = Field(description="When it stopped being saved (it was saved).")
    unsaved_by: str | None = None


class FixPage(BaseModel):
    fixes: list[FixView]
    next_cursor: str | None
