"""Who is calling: project keys for /3.0/projects/{project_id}/..., a bearer token for /admin.

A project key travels in the `Authorization` header (bare, as Keen's clients send it, or as
"Bearer <key>") or as the `api_key` query parameter. Missing or unknown key: 401. A valid key
of another project, or one without the permission: 403. Every lookup reads the database, so a
revoked key stops working at once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from app.api.deps import SessionsDep, SettingsDep
from app.api.problems import ApiError
from app.store.keys import find_key, permits
from app.store.models import ApiKey

# Declared only so the OpenAPI document shows the schemes; the checks below read the request.
_key_header = APIKeyHeader(name="Authorization", auto_error=False, scheme_name="ApiKeyHeader")
_key_query = APIKeyQuery(name="api_key", auto_error=False, scheme_name="ApiKeyQuery")
_admin_bearer = HTTPBearer(auto_error=False, scheme_name="AdminToken")


@dataclass(frozen=True)
class Caller:
    key: ApiKey
    project_id: str

    @property
    def is_master(self) -> bool:
        return self.key.kind == "master"

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"key:{self.key.id}"

    def may(self, permission: str) -> bool:
        return permits(self.key, permission)

    @property
    def forced_filters(self) -> list[dict]:
        """Filters an access key forces onto every query it makes."""
        if self.key.kind != "access":
            return []
        filters = ((self.key.options or {}).get("queries") or {}).get("filters") or []
        return [f for f in filters if isinstance(f, dict)]


def key_from_request(request: Request) -> str | None:
    value = request.headers.get("authorization") or request.query_params.get("api_key")
    if not value:
        return None
    # Keen's clients send the bare key; accept "Bearer <key>" too.
    return value.split(" ", 1)[1].strip() if value.lower().startswith("bearer ") else value.strip()


def authenticate(
    request: Request, sessions: sessionmaker[Session], project_id: str, permission: str | None
) -> Caller:
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
    try:
        # Its own session, not the route's SessionDep: the route may begin a transaction on
        # that one, and a database failure here is a 503 of its own.
        with sessions() as session:
            key = find_key(session, secret)
    except Exception as exc:  # the database is down: not the caller's fault
        raise ApiError(503, "ServiceUnavailableError", "The database is unavailable.") from exc
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


def require_key(permission: str | None) -> Callable[..., Caller]:
    """A dependency: the caller for the path's project with ``permission`` (None = master)."""

    def dependency(
        request: Request,
        sessions: SessionsDep,
        project_id: str,
        _h: str | None = Depends(_key_header),
        _q: str | None = Depends(_key_query),
    ) -> Caller:
        return authenticate(request, sessions, project_id, permission)

    return dependency


# The dependencies routes use (module-level, so each is built once).
MASTER_KEY = require_key(None)
WRITE_KEY = require_key("writes")
QUERY_KEY = require_key("queries")


def require_admin(
    request: Request,
    settings: SettingsDep,
    credentials: HTTPAuthorizationCredentials | None = Depends(_admin_bearer),
) -> str:
    """The support-staff actor name; 401 without the admin token, 404 when /admin is disabled."""
    token = settings.admin_token
    if not token:
        raise ApiError(404, "ResourceNotFoundError", "The admin API is disabled on this server.")
    given = credentials.credentials if credentials else ""
    if not given or not secrets.compare_digest(given.encode(), token.encode()):
        raise ApiError(401, "InvalidAdminTokenError", "Send the admin token as a Bearer token.")
    # One shared token: the optional X-Inbound-Actor names the person for the audit log.
    who = request.headers.get("x-inbound-actor", "").strip()[:150]
    return f"admin:{who}" if who else "admin"
