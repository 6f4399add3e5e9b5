"""A replay of many errors is produced in chunks and each chunk marked in one transaction:
every row is still marked with its own record's coordinates and audited once, and a record
the broker refuses fails the call (503) without losing what it acknowledged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.api.app import create_app
from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.models import AuditEntry, IngestError
from tests.api.conftest import auth, insert_error, read_records

pytestmark = pytest.mark.kafka


def _client(
    db_url: str, make_settings: Callable[..., Settings], kafka_bootstrap: str
) -> TestClient:
    settings = make_settings(
        db_url, kafka_bootstrap=kafka_bootstrap, replay_burst=5000, replay_rate_per_second=5000
    )
    return TestClient(create_app(settings))


def test_a_replay_of_1100_errors_marks_each_with_its_own_record(
    db_url: str, make_settings: Callable[..., Settings], kafka_bootstrap: str, projects: tuple
) -> None:
    a, _ = projects
    pid, h = a["project_id"], auth(a["master_key"])
    start = datetime.now(UTC) - timedelta(hours=1)
    ids = [
        insert_error(
            db_url,
            pid,
            collection="many",
            payload=b'{"n": %d' % i,
            created_at=start + timedelta(milliseconds=i),
        )
        for i in range(1100)
    ]
    with _client(db_url, make_settings, kafka_bootstrap) as c:
        r = c.post(
            f"/3.0/projects/{pid}/errors/replay",
            headers=h,
            json={"filter": {"collection": "many"}, "limit": 2000},
        )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["refused"] == [] and out["remaining"] == 0
    assert [x["error_id"] for x in out["replayed"]] == ids
    records = read_records(kafka_bootstrap, f"in.{pid}.many", 1100)
    assert len(records) == 1100
    by_error = {dict(rec.headers)["inbound.replay.error_id"].decode(): rec for rec in records}
    assert set(by_error) == set(ids)
    with session_scope(engine_for(db_url)) as s:
        rows = s.scalars(select(IngestError).where(IngestError.collection == "many")).all()
        for row in rows:
            record = by_error[row.id]
            assert row.status == "replayed" and row.replay_count == 1
            assert (row.replay_outcome["partition"], row.replay_outcome["offset"]) == (
                record.partition,
                record.offset,
            )
            assert record.value == row.payload
        audited = s.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "error.replay", AuditEntry.project_id == pid)
        )
    assert audited == 1100


def test_a_record_the_broker_refuses_fails_the_call_and_keeps_the_others(
    db_url: str, make_settings: Callable[..., Settings], kafka_bootstrap: str, projects: tuple
) -> None:
    a, _ = projects
    pid, h = a["project_id"], auth(a["master_key"])
    start = datetime.now(UTC) - timedelta(hours=1)
    small = [
        insert_error(db_url, pid, collection="mixed", created_at=start + timedelta(seconds=i))
        for i in (0, 1, 3)
    ]
    # 1.2 MB: over the producer's largest request (1 MiB), stored whole in the table.
    huge = insert_error(
        db_url,
        pid,
        collection="mixed",
        payload=b'{"big": "' + b"x" * 1_200_000 + b'"}',
        created_at=start + timedelta(seconds=2),
        cap=2_000_000,
    )
    with _client(db_url, make_settings, kafka_bootstrap) as c:
        r = c.post(
            f"/3.0/projects/{pid}/errors/replay",
            headers=h,
            json={"filter": {"collection": "mixed"}},
        )
    assert r.status_code == 503, r.text
    assert "Kafka did not accept the event" in r.json()["message"]
    records = read_records(kafka_bootstrap, f"in.{pid}.mixed", 3)
    assert sorted(dict(rec.headers)["inbound.replay.error_id"].decode() for rec in records) == (
        sorted(small)
    )
    with session_scope(engine_for(db_url)) as s:
        statuses = {
            row.id: row.status
            for row in s.scalars(select(IngestError).where(IngestError.collection == "mixed"))
        }
    assert statuses == {**dict.fromkeys(small, "replayed"), huge: "open"}
