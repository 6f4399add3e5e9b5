"""Migrations and projects on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from sqlalchemy import create_engine, inspect, select

from app.store.db import make_engine, session_scope
from app.store.keys import can_write, create_key, find_key, hash_key
from app.store.migrate import downgrade, upgrade
from app.store.models import ApiKey, Base, Project
from app.store.projects import create_project


def test_migrations_upgrade_and_downgrade_cleanly(db_url: str) -> None:
    engine = make_engine(db_url)
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    downgrade(db_url, "base")
    engine.dispose()
    engine = make_engine(db_url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(db_url)
    engine.dispose()
    engine = make_engine(db_url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_models_match_migrations(db_url: str) -> None:
    """Autogenerate finds nothing to do: the migrations describe exactly the models."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    # The PostgreSQL-only GIN index (migration 0002) lives outside the models by design.
    diff = [d for d in diff if not (d[0] == "remove_index" and d[1].name == "ix_events_body_gin")]
    assert diff == []


def test_project_create_stores_hashed_keys(db_url: str) -> None:
    engine = make_engine(db_url)
    with session_scope(engine) as session:
        created = create_project(session, "shop")
    assert re.fullmatch(r"[0-9a-f]{24}", created["project_id"])
    with session_scope(engine) as session:
        keys = session.scalars(select(ApiKey)).all()
        assert {k.kind for k in keys} == {"master", "write", "read"}
        stored = {k.key_hash for k in keys}
        for kind in ("master_key", "write_key", "read_key"):
            assert created[kind] not in stored  # never in clear
            assert hash_key(created[kind]) in stored
        write = find_key(session, created["write_key"])
        read = find_key(session, created["read_key"])
        assert write is not None and can_write(write)
        assert read is not None and not can_write(read)
        assert find_key(session, "not-a-key") is None
    engine.dispose()


def test_access_key_with_autofill_and_revocation(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with session_scope(engine) as session:
        project = create_project(session, "p")
        made = create_key(
            session,
            project["project_id"],
            "access",
            name="mobile",
            permitted=["writes"],
            options={"writes": {"autofill": {"app": "ios"}}},
        )
        secret = made.secret
    with session_scope(engine) as session:
        key = find_key(session, secret)
        assert key is not None and can_write(key)
        assert key.options["writes"]["autofill"] == {"app": "ios"}
        key.is_active = False
    with session_scope(engine) as session:
        assert find_key(session, secret) is None
    engine.dispose()


def test_unknown_access_permission_is_refused(sqlite_url: str) -> None:
    import pytest

    engine = make_engine(sqlite_url)
    with session_scope(engine) as session:
        project = create_project(session, "p")
        with pytest.raises(ValueError, match="unknown permissions"):
            create_key(session, project["project_id"], "access", permitted=["delete_everything"])
    engine.dispose()


def test_cli_project_create_prints_json(db_url: str, tmp_path) -> None:
    env = {**os.environ, "INBOUND_DATABASE_URL": db_url, "INBOUND_DATA_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "app.cli.main", "project", "create", "--name", "demo"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    created = json.loads(out)
    assert set(created) >= {"project_id", "master_key", "write_key", "read_key"}
    engine = create_engine(db_url)
    with engine.connect() as conn:
        names = [r.name for r in conn.execute(select(Project.name))]
    engine.dispose()
    assert names == ["demo"]


def test_sqlite_default_uses_wal(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()
