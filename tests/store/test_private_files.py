"""The data directory is 0700 and the SQLite database 0600: no other local user reads them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import text

from app.store.db import make_engine
from app.store.migrate import upgrade
from app.store.private import ensure_private_dir, ensure_private_file


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_sqlite_database_and_data_dir_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a usual umask: without care the files would be 0644/0755
    try:
        data_dir = tmp_path / "data" / "nested"
        url = f"sqlite:///{data_dir / 'inbound.db'}"
        upgrade(url)
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        assert _mode(data_dir) == 0o700
        assert _mode(data_dir.parent) == 0o700
        assert _mode(data_dir / "inbound.db") == 0o600
        for side in ("inbound.db-wal", "inbound.db-shm"):
            if (data_dir / side).exists():
                assert _mode(data_dir / side) & 0o077 == 0, side
        engine.dispose()
    finally:
        os.umask(old)


def test_an_existing_database_file_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    db.write_bytes(b"")
    os.chmod(db, 0o644)
    before = _mode(tmp_path)
    make_engine(f"sqlite:///{db}").dispose()
    assert _mode(db) == 0o600
    assert _mode(tmp_path) == before  # a directory the service did not create is left alone


def test_helpers(tmp_path: Path) -> None:
    ensure_private_dir(tmp_path / "a" / "b")
    assert _mode(tmp_path / "a") == 0o700 and _mode(tmp_path / "a" / "b") == 0o700
    f = ensure_private_file(tmp_path / "c" / "secret.key")
    assert _mode(f) == 0o600 and _mode(f.parent) == 0o700
