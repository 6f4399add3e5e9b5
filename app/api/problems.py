"""The one JSON error shape of the HTTP API: {"error_code": ..., "message": ...}."""

from __future__ import annotations

from fastapi import HTTPException


class ApiError(HTTPException):
    def __init__(self, status_code: int, error_code: str, message: str) -> None:
        super().__init__(
            status_code=status_code, detail={"error_code": error_code, "message": message}
        )
        self.error_code = error_code
        self.message = message
