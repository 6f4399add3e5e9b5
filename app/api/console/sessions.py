"""Console sessions: a secret (a project's master key, or the admin token) exchanged for a
random session token kept in a cookie, with its row in ``console_sessions``.

The row is keyed by the token's sha256, so a copy of the table signs no one in; it lives in
the database so that any API process serves any session. A session ends on sign-out, after
``INBOUND_CONSOLE_IDLE_MINUTES`` without a request, when its master key is revoked or its
project deactivated, and (support staff) when the admin token changes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.store.keys import find_key
from app.store.models import ApiKey, ConsoleSession, Project

CUSTOMER = "customer"
STAFF = "staff"
# last_seen_at is written at most this often: a page view is a read, not a write each time.
TOUCH_EVERY = timedelta(seconds=60)
ACTOR_NAME_MAX = 100


@dataclass(frozen=True)
class ConsoleUser:
    """Who is signed in: a customer of one project, or support staff (``project_id`` None)."""

    kind: str
    project_id: str | None
    actor: str
    csrf_token: str

    @property
    def is_staff(self) -> bool:
        return self.kind == STAFF

    def may_see(self, project_id: str) -> bool:
        return self.is_staff or self.project_id == project_id

    def scope(self, project_id: str) -> str | None:
        """The ``project_id`` argument of the JSON API's view functions: None lets staff
        see any project; a customer is always held to their own."""
        return None if self.is_staff else self.project_id


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def customer_key(db: Session, project_id: str, secret: str) -> ApiKey | None:
    """The active master key of an active ``project_id`` with this secret, or None."""
    key = find_key(db, secret) if secret and "\x00" not in secret else None
    if key is None or key.kind != "master" or key.project_id != project_id:
        return None
    project = db.get(Project, project_id)
    return key if project is not None and project.is_active else None


def staff_token_ok(admin_token: str | None, given: str) -> bool:
    """True when ``given`` is the admin token (compared in constant time); never when unset."""
    if not admin_token or not given:
        return False
    return secrets.compare_digest(given.encode(), admin_token.encode())


def staff_actor(name: str) -> str:
    """The audit log's name of a staff member: ``admin`` or ``admin:<name>``, as the JSON
    API's X-Inbound-Actor gives."""
    who = "".join(ch for ch in name.strip() if ch.isprintable())[:ACTOR_NAME_MAX]
    return f"admin:{who}" if who else "admin"


def open_session(
    db: Session,
    *,
    kind: str,
    actor: str,
    project_id: str | None = None,
    key_id: str | None = None,
    admin_token: str | None = None,
    now: datetime | None = None,
) -> tuple[str, ConsoleUser]:
    """A new session (the caller commits); the cookie's token and who it signs in."""
    now = now or datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    row = ConsoleSession(
        id=_digest(token),
        kind=kind,
        project_id=project_id,
        key_id=key_id,
        token_digest=_digest(admin_token) if kind == STAFF and admin_token else None,
        actor=actor,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
    )
    db.add(row)
    return token, _user(row)


def _user(row: ConsoleSession) -> ConsoleUser:
    return ConsoleUser(
        kind=row.kind, project_id=row.project_id, actor=row.actor, csrf_token=row.csrf_token
    )


def load_session(
    db: Session,
    token: str | None,
    *,
    idle: timedelta,
    admin_token: str | None,
    now: datetime | None = None,
) -> ConsoleUser | None:
    """Who the cookie's token signs in, or None (unknown, idle too long, key revoked, admin
    token changed: such a row is deleted). Commits the touch and any deletion."""
    if not token or len(token) > 100:
        return None
    now = now or datetime.now(UTC)
    with db.begin():
        row = db.get(ConsoleSession, _digest(token))
        if row is None:
            return None
        if not _still_valid(db, row, now, idle, admin_token):
            db.delete(row)
            return None
        if now - _utc(row.last_seen_at) >= TOUCH_EVERY:
            row.last_seen_at = now
        return _user(row)


def _still_valid(
    db: Session, row: ConsoleSession, now: datetime, idle: timedelta, admin_token: str | None
) -> bool:
    if now - _utc(row.last_seen_at) > idle:
        return False
    if row.kind == STAFF:
        return bool(admin_token) and secrets.compare_digest(
            row.token_digest or "", _digest(admin_token or "")
        )
    key = db.get(ApiKey, row.key_id) if row.key_id else None
    if key is None or not key.is_active or key.kind != "master" or key.project_id != row.project_id:
        return False
    project = db.get(Project, row.project_id) if row.project_id else None
    return project is not None and project.is_active


def close_session(db: Session, token: str | None) -> None:
    """Sign-out: the row is deleted (the caller commits)."""
    if token and len(token) <= 100:
        db.execute(delete(ConsoleSession).where(ConsoleSession.id == _digest(token)))


def purge_idle(db: Session, idle: timedelta, now: datetime | None = None) -> int:
    """Delete sessions idle for longer than ``idle`` (run at each sign-in); how many."""
    cutoff = (now or datetime.now(UTC)) - idle
    result = db.execute(delete(ConsoleSession).where(ConsoleSession.last_seen_at < cutoff))
    return int(result.rowcount or 0)
