"""The one JSON error shape of the HTTP API: {"error_code": ..., "message": ...}.

Every route declares the error statuses it can answer with ``error_responses(...)`` so the
OpenAPI document (and schemathesis, which checks responses against it) knows them.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field


class ApiError(HTTPException):
    def __init__(
        self,
        status_code: int,
        error_code: str,
        message: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        detail: dict[str, Any] = {"error_code": error_code, "message": message}
        if extra:
            detail.update(extra)
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.error_code = error_code
        self.message = message


class ErrorBody(BaseModel):
    """Keen's error body; ingest failures add the `error_id` of their error-table row."""

    model_config = ConfigDict(extra="allow")

    error_code: str = Field(examples=["InvalidApiKeyError"])
    message: str = Field(examples=["The API key is not valid or has been revoked."])
    error_id: str | None = Field(
        default=None, description="Error-table row of a rejected event (ingest failures only)."
    )


_DESCRIPTIONS = {
    400: "The request is malformed (bad JSON, unknown parameter value, invalid query).",
    401: "No API key, or the key is unknown or revoked.",
    403: "The key belongs to another project or lacks the permission.",
    404: "No such resource in this project.",
    409: "The resource is in a state that forbids the operation.",
    413: "The request body is too large.",
    429: "Rate limited; retry after the number of seconds in Retry-After.",
    503: "A dependency (Kafka or the database) is unavailable; retry later.",
}
_EXAMPLES = {
    400: {"error_code": "InvalidQueryError", "message": "event_collection is required."},
    401: {"error_code": "InvalidApiKeyError", "message": "The API key is not valid."},
    403: {
        "error_code": "InvalidApiKeyError",
        "message": "This key does not belong to this project.",
    },
    404: {"error_code": "ResourceNotFoundError", "message": "No such error in this project."},
    409: {"error_code": "ConflictError", "message": "The stream is not paused."},
    413: {"error_code": "EventTooLargeError", "message": "The body is over the limit."},
    429: {"error_code": "RateLimitedError", "message": "Replay rate limit reached."},
    503: {"error_code": "ServiceUnavailableError", "message": "Kafka is unavailable."},
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the given error statuses, all with the one error shape."""
    return {
        status: {
            "model": ErrorBody,
            "description": _DESCRIPTIONS[status],
            "content": {"application/json": {"example": _EXAMPLES[status]}},
        }
        for status in statuses
    }


# Auth failures every key-authenticated route can answer with (400: parameters; 503: database).
KEY_ERRORS = (400, 401, 403, 503)
