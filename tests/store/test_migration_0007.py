"""Migration 0007 gives the events stored before it their collection schemas (in chunks, with
the worker's rule and caps) and ingest_counters a deleted column, on SQLite and PostgreSQL;
it downgrades cleanly to 0006, and up again to the same schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.store.db import make_engine
from app.store.migrate import downgrade, upgrade
from tests.conftest import fresh_postgres_database

PID = "ab" * 12
OTHER = "cd" * 12
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
BULK = 5_003  # more than the migration's chunk of 5,000 events
STAMP = "2026-11-01T08:00:00.000Z"


@pytest.fixture(params=["sqlite", "postgresql"])
def old_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database migrated only to 0006, before collection schemas existed."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'inbound.db'}"
    else:
        url = fresh_postgres_database(request.getfixturevalue("postgres_server"))
    upgrade(url, "0006")
    return url


def body(n: int, props: dict) -> dict:
    return {**props, "keen": {"timestamp": STAMP, "created_at": STAMP, "id": f"{n:024x}"}}


def load_old_rows(url: str) -> None:
    engine = make_engine(url)
    meta = sa.MetaData()
    events = sa.Table("events", meta, autoload_with=engine)
    counters = sa.Table("ingest_counters", meta, autoload_with=engine)
    assert "deleted" not in counters.c  # the table as 0006 left it
    rows = [
        {"project_id": PID, "collection": "bulk", "body": body(i, {"n": i})} for i in range(BULK)
    ]
    # Only the last event, in the second chunk, has these: the backfill reads every chunk.
    rows.append({"project_id": PID, "collection": "bulk", "body": body(BULK, {"late": [1]})})
    rows.append(
        {
            "project_id": PID,
            "collection": "purchases",
            "body": body(BULK + 1, {"item": {"price": 2.5, "name": "hat"}, "gift": None}),
        }
    )
    rows.append(
        {
            "project_id": OTHER,
            "collection": "wide",
            "body": body(BULK + 2, {f"k{i:04d}": i for i in range(1200)}),
        }
    )
    with engine.begin() as conn:
        conn.execute(
            events.insert(),
            [
                {
                    **r,
                    "keen_id": r["body"]["keen"]["id"],
                    "keen_timestamp": T0,
                    "created_at": T0,
                }
                for r in rows
            ],
        )
        conn.execute(
            counters.insert(),
            [
                {
                    "project_id": PID,
                    "collection": "bulk",
                    "bucket": T0,
                    "received": BULK + 1,
                    "accepted": BULK + 1,
                    "rejected": 0,
                    "dropped": 0,
                    "dropped_reasons": {},
                }
            ],
        )
    engine.dispose()


def schema_rows(url: str) -> list[tuple[str, str, str, str]]:
    engine = make_engine(url)
    table = sa.Table("collection_properties", sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(table.c.project_id, table.c.collection, table.c.path, table.c.type)
        ).all()
    engine.dispose()
    return sorted(tuple(r) for r in rows)


KEEN = [("keen.created_at", "datetime"), ("keen.id", "string"), ("keen.timestamp", "datetime")]


def test_upgrade_backfills_the_schemas_of_stored_events(old_url: str) -> None:
    load_old_rows(old_url)
    upgrade(old_url)
    rows = schema_rows(old_url)
    mine = [r for r in rows if r[0] == PID]
    assert mine == sorted(
        [(PID, "bulk", path, kind) for path, kind in [*KEEN, ("late", "list"), ("n", "num")]]
        + [
            (PID, "purchases", path, kind)
            for path, kind in [
                *KEEN,
                ("gift", "null"),
                ("item.name", "string"),
                ("item.price", "num"),
            ]
        ]
    )
    # 1,200 keys in one event: the walk keeps 1,000 leaves.
    assert len([r for r in rows if r[0] == OTHER]) == 1000
    engine = make_engine(old_url)
    with engine.connect() as conn:
        counter = conn.execute(sa.text("SELECT received, deleted FROM ingest_counters")).one()
    engine.dispose()
    assert tuple(counter) == (BULK + 1, 0)


def test_downgrade_to_0006_and_up_again(old_url: str) -> None:
    load_old_rows(old_url)
    upgrade(old_url)
    before = schema_rows(old_url)
    downgrade(old_url, "0006")
    engine = make_engine(old_url)
    inspector = sa.inspect(engine)
    assert "collection_properties" not in inspector.get_table_names()
    assert "deleted" not in {c["name"] for c in inspector.get_columns("ingest_counters")}
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT received FROM ingest_counters")) == BULK + 1
        assert conn.scalar(sa.text("SELECT count(*) FROM events")) == BULK + 3
        assert conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0006"
    engine.dispose()
    upgrade(old_url)
    assert schema_rows(old_url) == before
