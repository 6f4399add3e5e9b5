"""Key authentication for /3.0/projects/{project_id}/...: header `Authorization` or `api_key`."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from app.api.problems import ApiError
from app.store.keys import find_key
from app.store.models import ApiKey


@dataclass(frozen=True)
class Caller:
    key: ApiKey
    project_id: str

    @property
    def is_master(self) -> bool:
        return self.key.kind == "master"

    def may(self, permission: str) -> bool:
        return self.is_master or permission in (self.key.permitted or [])


def key_from_request(request: Request) -> str | None:
    value = request.headers.get("authorization") or request.query_params.get("api_key")
    if not value:
        return None
    # Keen's clients send the bare key; accept "Bearer <key>" too.
    return value.split(" ", 1)[1].strip() if value.lower().startswith("bearer ") else value.strip()


def authenticate(request: Request, project_id: str, permission: str | None) -> Caller:
    """401 for a missing or unknown key; 403 for a key of another project or without the permission.

    ``permission=None`` means the master key is required.
    """
    secret = key_from_request(request)
    if not secret:
        raise ApiError(
            401,
            "InvalidApiKeyError",
            "No API key: send it in the Authorization header or as ?api_key=.",
        )
    session_factory = request.app.state.session_factory
    with session_factory() as session:
        key = find_key(session, secret)
    if key is None:
        raise ApiError(401, "InvalidApiKeyError", "The API key is not valid or has been revoked.")
    if key.project_id != project_id:
        raise ApiError(403, "InvalidApiKeyError", "This key does not belong to this project.")
    caller = Caller(key=key, project_id=project_id)
    if permission is None and not caller.is_master:
        raise ApiError(403, "InvalidApiKeyError", "This operation needs the project's master key.")
    if permission is not None and not caller.may(permission):
        raise ApiError(403, "InvalidApiKeyError", f"This key is not permitted to do {permission}.")
    return caller
