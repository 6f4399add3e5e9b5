"""Creating projects with their three standard keys."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from app.store.keys import create_key
from app.store.models import Project


def new_project_id() -> str:
    return secrets.token_hex(12)


def create_project(session: Session, name: str) -> dict[str, str]:
    """Create a project and its master, write and read keys; the secrets are returned once."""
    if not name or len(name) > 200:
        raise ValueError("a project name must be 1 to 200 characters")
    project = Project(
        id=new_project_id(), name=name, is_active=True, options={}, created_at=datetime.now(UTC)
    )
    session.add(project)
    session.flush()
    keys = {
        kind: create_key(session, project.id, kind).secret for kind in ("master", "write", "read")
    }
    return {
        "project_id": project.id,
        "name": name,
        "master_key": keys["master"],
        "write_key": keys["write"],
        "read_key": keys["read"],
    }
