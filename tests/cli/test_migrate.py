"""`inbound migrate` (README, "The `inbound` command": upgrade the database schema with Alembic)
on a fresh SQLite file and on PostgreSQL: the newest revision is reached, an older schema is
upgraded, and a second run changes nothing."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from app.store.db import session_scope
from app.store.models import Base
from app.store.projects import create_project
from tests.support.cli import inbound, inbound_env

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def _head() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    heads = ScriptDirectory.from_config(cfg).get_heads()
    assert len(heads) == 1, f"the migrations have more than one head: {heads}"
    return heads[0]


def _state(url: str) -> tuple[list[str], set[str], dict[str, list[str]]]:
    """(alembic_version rows, tables, columns per table)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            versions = list(conn.scalars(text("SELECT version_num FROM alembic_version")))
        insp = inspect(engine)
        tables = set(insp.get_table_names())
        columns = {t: sorted(c["name"] for c in insp.get_columns(t)) for t in tables}
    finally:
        engine.dispose()
    return versions, tables, columns


def _migrate(url: str, data_dir: Path, *revision: str) -> str:
    env = inbound_env(INBOUND_DATABASE_URL=url, INBOUND_DATA_DIR=str(data_dir))
    done = inbound("migrate", *revision, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_migrate_creates_the_schema_and_a_second_run_is_a_no_op(
    empty_db_url: str, tmp_path: Path
) -> None:
    _migrate(empty_db_url, tmp_path / "data")
    versions, tables, columns = _state(empty_db_url)
    assert versions == [_head()]
    assert set(Base.metadata.tables) <= tables
    # Data written between the runs survives the second one, and the schema is unchanged.
    engine = create_engine(empty_db_url)
    with session_scope(engine) as session:
        create_project(session, "kept")
    engine.dispose()
    _migrate(empty_db_url, tmp_path / "data")
    assert _state(empty_db_url) == (versions, tables, columns)
    engine = create_engine(empty_db_url)
    with engine.connect() as conn:
        assert list(conn.scalars(text("SELECT name FROM projects"))) == ["kept"]
    engine.dispose()


def test_migrate_upgrades_an_older_schema(empty_db_url: str, tmp_path: Path) -> None:
    _migrate(empty_db_url, tmp_path / "data", "0001")
    assert _state(empty_db_url)[0] == ["0001"]
    _migrate(empty_db_url, tmp_path / "data")
    versions, tables, _ = _state(empty_db_url)
    assert versions == [_head()] and _head() != "0001"
    assert set(Base.metadata.tables) <= tables


def test_migrate_without_a_database_url_uses_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    """Settings table: INBOUND_DATABASE_URL unset means SQLite at <data_dir>/inbound.db."""
    data_dir = tmp_path / "data"
    env = inbound_env(INBOUND_DATA_DIR=str(data_dir))
    done = inbound("migrate", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    db = data_dir / "inbound.db"
    assert db.is_file()
    assert _state(f"sqlite:///{db}")[0] == [_head()]
