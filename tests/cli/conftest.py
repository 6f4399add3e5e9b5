"""Fixtures of the CLI tests: databases nothing has migrated yet, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database no migration has touched: a SQLite file that does not exist yet, or a new
    PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh' / 'inbound.db'}"
    return fresh_postgres_database(request.getfixturevalue("postgres_server"))
