"""Migration 0004 assigns every error row written before it to its problem, with the rule the
worker uses, on SQLite and PostgreSQL; and it downgrades cleanly to 0003."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.contract.errors import Rejection
from app.contract.fingerprint import problem_of
from app.ingest.dlq import dead_letter
from app.ingest.persist import BatchOutcome, BatchWriter
from app.ingest.records import RawRecord
from app.store.db import make_engine
from app.store.migrate import downgrade, upgrade
from tests.conftest import fresh_postgres_database

PID = "ab" * 12
OTHER = "cd" * 12
T0 = datetime(2026, 10, 1, 8, 30, tzinfo=UTC)
DOLLAR = "starts with '$'"
BULK = 5_003  # more than the migration's chunk of 5,000 rows


def rule(project: str, collection: str, code: str, location: str) -> str:
    joined = "\x1f".join((project, collection, code, location))
    return hashlib.sha256(joined.encode()).hexdigest()[:32]


PRICE = rule(PID, "purchases", "invalid_property_name", "items[].$price")
JSON = rule(PID, "purchases", "invalid_json", "")
KEEN = rule(PID, "purchases", "reserved_property", "keen.location")
USERS = rule(OTHER, "signups", "invalid_property_name", "users.*.$x")
ACCESS = rule(OTHER, "signups", "key_not_permitted", "")
BULK_ID = rule(PID, "bulk", "invalid_json", "")


@pytest.fixture(params=["sqlite", "postgresql"])
def old_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database migrated only to 0003, before problems existed."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'inbound.db'}"
    else:
        url = fresh_postgres_database(request.getfixturevalue("postgres_server"))
    upgrade(url, "0003")
    return url


def old_row(n: int, project: str, collection: str, code: str, detail: object, **kw: object):  # noqa: ANN201
    at = kw.pop("at", T0 + timedelta(minutes=n))
    row = {
        "id": f"{n:032x}",
        "project_id": project,
        "collection": collection,
        "code": code,
        "stage": "validate",
        "message": "bad",
        "detail": detail,
        "source_topic": f"in.{project}.{collection}",
        "source_partition": 0,
        "source_offset": n,
        "record_timestamp": None,
        "payload": b"{}",
        "payload_size": 2,
        "payload_sha256": "0" * 64,
        "record_key": None,
        "headers": [],
        "key_id": None,
        "status": "open",
        "replay_count": 0,
        "replay_outcome": None,
        "dlq_topic": None,
        "dlq_partition": None,
        "dlq_offset": None,
        "created_at": at,
        "updated_at": at,
    }
    return row | kw


def price(n: int, index: int, **kw: object):  # noqa: ANN201
    detail = {"path": f"items[{index}].$price", "reason": DOLLAR, "count": 1}
    return old_row(n, PID, "purchases", "invalid_property_name", detail, **kw)


ROWS = [
    # open + resolved + ignored: open
    price(1, 3, status="open", key_id="k1", at=T0),
    price(2, 7, status="resolved", key_id="k1", at=T0 + timedelta(minutes=50)),
    price(
        3,
        0,
        status="ignored",
        key_id="k2",
        at=T0 + timedelta(hours=1),
        dlq_topic=f"dlq.{PID}.purchases",
        dlq_partition=1,
        dlq_offset=40,
    ),
    # resolved + replayed: resolved
    old_row(
        4, PID, "purchases", "invalid_json", {"char_offset": 1, "reason": "a"}, status="resolved"
    ),
    old_row(
        5, PID, "purchases", "invalid_json", {"char_offset": 9, "reason": "b"}, status="replayed"
    ),
    # all ignored: ignored
    old_row(6, PID, "purchases", "reserved_property", {"path": "keen.location"}, status="ignored"),
    old_row(7, PID, "purchases", "reserved_property", {"path": "keen.location"}, status="ignored"),
    # another project; id-like map keys collapse; a detail stored as JSON null or a list
    old_row(
        8,
        OTHER,
        "signups",
        "invalid_property_name",
        {"path": "users.123e4567-e89b-12d3-a456-426614174000.$x", "reason": DOLLAR},
        key_id="k3",
    ),
    old_row(9, OTHER, "signups", "invalid_property_name", {"path": "users.42.$x"}, key_id="k3"),
    old_row(10, OTHER, "signups", "key_not_permitted", None),
    old_row(11, OTHER, "signups", "key_not_permitted", ["odd"]),
]


def load_old_rows(url: str) -> None:
    engine = make_engine(url)
    errors = sa.Table("ingest_errors", sa.MetaData(), autoload_with=engine)
    assert "problem_id" not in errors.c  # the table as 0003 left it
    bulk = [
        old_row(
            1000 + i,
            PID,
            "bulk",
            "invalid_json",
            {"char_offset": i},
            at=T0 + timedelta(seconds=i),
            status="resolved" if i % 2 else "open",
        )
        for i in range(BULK)
    ]
    with engine.begin() as conn:
        conn.execute(errors.insert(), ROWS + bulk)
    engine.dispose()


def utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def test_upgrade_assigns_old_error_rows_to_their_problems(old_url: str) -> None:
    load_old_rows(old_url)
    upgrade(old_url)
    engine = make_engine(old_url)
    meta = sa.MetaData()
    errors = sa.Table("ingest_errors", meta, autoload_with=engine)
    problems = sa.Table("problems", meta, autoload_with=engine)
    hours = sa.Table("problem_hours", meta, autoload_with=engine)
    keys = sa.Table("problem_keys", meta, autoload_with=engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(errors)).all()
        found = {p.id: p for p in conn.execute(sa.select(problems))}
        hour_rows = conn.execute(sa.select(hours)).all()
        key_rows = conn.execute(sa.select(keys)).all()
    engine.dispose()

    assert len(rows) == len(ROWS) + BULK
    for r in rows:
        detail = r.detail if isinstance(r.detail, dict) else {}
        assert r.problem_id == problem_of(r.project_id, r.collection, r.code, detail).problem_id
    per_problem = Counter(r.problem_id for r in rows)
    assert set(found) == {PRICE, JSON, KEEN, USERS, ACCESS, BULK_ID}
    assert {pid: p.count for pid, p in found.items()} == dict(per_problem)
    assert per_problem == {PRICE: 3, JSON: 2, KEEN: 2, USERS: 2, ACCESS: 2, BULK_ID: BULK}
    assert sum(p.count for p in found.values()) == len(rows)

    statuses = {pid: p.status for pid, p in found.items()}
    assert statuses == {
        PRICE: "open",
        JSON: "resolved",
        KEEN: "ignored",
        USERS: "open",
        ACCESS: "open",
        BULK_ID: "open",
    }
    assert found[JSON].resolved_at is not None and found[PRICE].resolved_at is None

    p = found[PRICE]
    assert (p.project_id, p.collection, p.code, p.stage) == (
        PID,
        "purchases",
        "invalid_property_name",
        "validate",
    )
    assert p.location == "items[].$price"
    assert p.title == "Property name `$price` starts with `$` in items[]"
    assert (utc(p.first_seen), p.first_error_id) == (T0, f"{1:032x}")
    assert (utc(p.last_seen), p.last_error_id) == (T0 + timedelta(hours=1), f"{3:032x}")
    assert (p.sample_error_id, p.sample_dlq_topic, p.sample_dlq_partition, p.sample_dlq_offset) == (
        f"{3:032x}",
        f"dlq.{PID}.purchases",
        1,
        40,
    )
    assert found[USERS].location == "users.*.$x"
    assert found[JSON].sample_error_id is None
    bulk = found[BULK_ID]
    assert utc(bulk.last_seen) == T0 + timedelta(seconds=BULK - 1)
    assert bulk.last_error_id == f"{1000 + BULK - 1:032x}"

    per_hour = {(h.problem_id, utc(h.bucket)): h.count for h in hour_rows}
    # 08:30 in the first hour; 09:20 and 09:30 in the second.
    assert per_hour[(PRICE, datetime(2026, 10, 1, 8, tzinfo=UTC))] == 1
    assert per_hour[(PRICE, datetime(2026, 10, 1, 9, tzinfo=UTC))] == 2
    # 5,003 seconds from 08:30:00: 1,800 in the first hour, 3,203 in the second.
    assert per_hour[(BULK_ID, datetime(2026, 10, 1, 8, tzinfo=UTC))] == 1_800
    assert per_hour[(BULK_ID, datetime(2026, 10, 1, 9, tzinfo=UTC))] == 3_203
    summed: Counter = Counter()
    for h in hour_rows:
        summed[h.problem_id] += h.count
    assert summed == per_problem

    assert sorted((k.problem_id, k.key_id, k.count, utc(k.last_seen)) for k in key_rows) == sorted(
        [
            (PRICE, "k1", 2, T0 + timedelta(minutes=50)),
            (PRICE, "k2", 1, T0 + timedelta(hours=1)),
            (USERS, "k3", 2, T0 + timedelta(minutes=9)),
        ]
    )


def test_downgrade_to_0003_takes_the_problems_away(old_url: str) -> None:
    engine = make_engine(old_url)
    before = sa.inspect(engine)
    indexes = sorted(
        (i["name"], tuple(i["column_names"])) for i in before.get_indexes("ingest_errors")
    )
    uniques = sorted(
        tuple(u["column_names"]) for u in before.get_unique_constraints("ingest_errors")
    )
    engine.dispose()
    load_old_rows(old_url)
    upgrade(old_url)
    downgrade(old_url, "0003")
    engine = make_engine(old_url)
    after = sa.inspect(engine)
    tables = set(after.get_table_names())
    assert not tables & {"problems", "problem_hours", "problem_keys"}
    assert "problem_id" not in {c["name"] for c in after.get_columns("ingest_errors")}
    # The table is as 0003 made it, rows and all.
    assert (
        sorted((i["name"], tuple(i["column_names"])) for i in after.get_indexes("ingest_errors"))
        == indexes
    )
    assert (
        sorted(tuple(u["column_names"]) for u in after.get_unique_constraints("ingest_errors"))
        == uniques
    )
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM ingest_errors")) == len(ROWS) + BULK
        version = conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
    engine.dispose()
    assert version == "0003"
    # And up again: the backfill runs once more, to the same problems.
    upgrade(old_url)
    engine = make_engine(old_url)
    with engine.connect() as conn:
        total = conn.scalar(sa.text("SELECT sum(count) FROM problems"))
        unassigned = conn.scalar(
            sa.text("SELECT count(*) FROM ingest_errors WHERE problem_id IS NULL")
        )
    engine.dispose()
    assert (total, unassigned) == (len(ROWS) + BULK, 0)


def test_the_worker_counts_on_from_the_backfilled_problems(old_url: str) -> None:
    load_old_rows(old_url)
    upgrade(old_url)
    engine = make_engine(old_url)
    record = RawRecord(f"in.{PID}.purchases", 3, 1, None, None, b"{", ())
    rejection = Rejection("invalid_json", "decode", "not JSON", {"char_offset": 1})
    letter = dead_letter(record, rejection, T0 + timedelta(days=1))
    assert letter.problem.problem_id == JSON
    BatchWriter(engine, payload_cap=16).write(BatchOutcome(rejected=[letter]))
    problems = sa.Table("problems", sa.MetaData(), autoload_with=engine)
    notifications = sa.Table("notifications", sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        row = conn.execute(sa.select(problems).where(problems.c.id == JSON)).one()
        kinds = conn.scalars(sa.select(notifications.c.type).order_by(notifications.c.type)).all()
    engine.dispose()
    # The backfilled problem was resolved: its next error regresses it, and nothing is new.
    assert (row.count, row.status, row.last_error_id) == (3, "regressed", letter.error_id)
    assert kinds == ["ingest.failed", "problem.regressed"]
