"""Engine and sessions for SQLite (embedded default, WAL) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app.settings import get_settings
from app.store.private import ensure_private_file


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


# orjson is several times faster than the stdlib for the event bodies the worker writes.
_JSON_ARGS = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = make_url(url).database  # None or "" for an in-memory database
        if path and path != ":memory:" and not path.startswith("file:"):
            # The data directory 0700 and the database 0600: events and secrets are private.
            # SQLite gives its -wal and -shm files the database file's mode.
            ensure_private_file(Path(path))
        engine = create_engine(url, connect_args={"timeout": 30}, **_JSON_ARGS)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001 - DBAPI hook
            cur = dbapi_conn.cursor()
            # WAL lets the API read while the worker writes.
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: the worker commits Kafka offsets once a batch is committed here, so the
            # commit must survive an OS crash too (NORMAL only survives a process crash).
            # One fsync per batch is cheap.
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, **_JSON_ARGS)


@lru_cache(maxsize=4)
def engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine() -> Engine:
    return engine_for(get_settings().effective_database_url)


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    return sessionmaker(engine or get_engine(), expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
