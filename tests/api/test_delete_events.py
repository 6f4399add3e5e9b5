"""DELETE /3.0/projects/{id}/events/{collection} on both databases: Keen's filters, timeframe
and timezone parameters (as the Keen SDK sends them), master key only, bounded batches, the
audit entry, and the reconciliation's deleted figure apart from rejections."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from app.api.event_deletion import delete_events, parse_deletion
from app.api.query_build import FilterLimits
from app.ingest.persist import BatchOutcome, BatchWriter
from app.ingest.pipeline import Accepted
from app.store.db import engine_for, make_engine, session_scope
from app.store.models import AuditEntry, CollectionProperty, Event, IngestCounter
from tests.api.conftest import auth

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
STAMP = "2026-05-01T10:00:00.000Z"


def store(db_url: str, pid: str, collection: str, events: list[tuple[datetime, datetime, dict]]):
    """(keen.timestamp, created_at, properties) stored by the worker's batch write."""
    engine = make_engine(db_url)
    accepted = []
    for at, created, props in events:
        keen_id = uuid.uuid4().hex[:24]
        body = {**props, "keen": {"timestamp": STAMP, "created_at": STAMP, "id": keen_id}}
        accepted.append(Accepted(pid, collection, keen_id, at, created, body))
    BatchWriter(engine, payload_cap=64).write(BatchOutcome(accepted=accepted))
    engine.dispose()


def remaining(db_url: str, pid: str, collection: str) -> list[int]:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        bodies = conn.scalars(
            select(Event.body)
            .where(Event.project_id == pid, Event.collection == collection)
            .order_by(Event.id)
        ).all()
    engine.dispose()
    return [b["n"] for b in bodies]


def test_delete_with_filters_and_timeframe(
    client: TestClient, projects: tuple, db_url: str
) -> None:
    a, b = projects
    pid = a["project_id"]
    hour = timedelta(hours=1)
    store(
        db_url,
        pid,
        "signups",
        [
            (T0, T0, {"n": 0, "user": "bob"}),
            (T0 + hour, T0, {"n": 1, "user": "bob"}),
            (T0 + 2 * hour, T0 + hour, {"n": 2, "user": "bob"}),
            (T0 + hour, T0 + hour, {"n": 3, "user": "amy"}),
        ],
    )
    store(db_url, b["project_id"], "signups", [(T0, T0, {"n": 9, "user": "bob"})])
    url = f"/3.0/projects/{pid}/events/signups"
    bob = json.dumps([{"property_name": "user", "operator": "eq", "property_value": "bob"}])
    # 10:00 to 12:00 at UTC+1 is 09:00 to 11:00 UTC: of bob's events only n=0 (10:00 UTC);
    # n=1 at 11:00 is past the frame's (exclusive) end.
    frame = json.dumps({"start": "2026-05-01T10:00:00", "end": "2026-05-01T12:00:00"})
    r = client.delete(
        url,
        headers=auth(a["master_key"]),
        params={"filters": bob, "timeframe": frame, "timezone": "3600"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"deleted": 1}
    assert remaining(db_url, pid, "signups") == [1, 2, 3]
    # Filters alone: bob's other two.
    r = client.delete(url, headers=auth(a["master_key"]), params={"filters": bob})
    assert r.json() == {"deleted": 2}
    assert remaining(db_url, pid, "signups") == [3]
    # Nothing matches: 0, still audited.
    r = client.delete(url, headers=auth(a["master_key"]), params={"filters": bob})
    assert r.json() == {"deleted": 0}
    # Project B's events are untouched.
    assert remaining(db_url, b["project_id"], "signups") == [9]

    with session_scope(engine_for(db_url)) as s:
        audit = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        entries = [(e.action, e.project_id, e.target) for e in audit]
        actor = audit[0].actor
    bob_target = '[["user","eq","bob"]]'
    assert entries == [
        (
            "events.delete",
            pid,
            'signups {"timeframe":{"start":"2026-05-01T09:00:00.000Z",'
            '"end":"2026-05-01T11:00:00.000Z"},"filters":' + bob_target + "}",
        ),
        ("events.delete", pid, 'signups {"timeframe":null,"filters":' + bob_target + "}"),
        ("events.delete", pid, 'signups {"timeframe":null,"filters":' + bob_target + "}"),
    ]
    assert actor.startswith("key:")

    # The reconciliation: received = accepted + rejected still balances; deleted apart, in
    # the hour each deleted event was accepted (n=0, 1 at 10:00; n=2 at 11:00).
    rec = client.get(
        f"/3.0/projects/{pid}/reconciliation",
        headers=auth(a["master_key"]),
        params={"since": "2026-05-01T10:00:00Z", "until": "2026-05-01T12:00:00Z"},
    ).json()
    assert rec["balanced"] is True
    assert [
        (r["collection"], r["bucket_start"], r["received"], r["accepted"], r["deleted"])
        for r in rec["rows"]
    ] == [
        ("signups", "2026-05-01T10:00:00.000Z", 2, 2, 2),
        ("signups", "2026-05-01T11:00:00.000Z", 2, 2, 1),
    ]
    assert rec["totals"] == {
        "received": 4,
        "accepted": 4,
        "rejected": 0,
        "dropped": 0,
        "unaccounted": 0,
        "deleted": 3,
    }


def test_delete_everything_removes_the_collection_and_its_schema(
    client: TestClient, projects: tuple, db_url: str
) -> None:
    a, _ = projects
    pid = a["project_id"]
    store(db_url, pid, "gone", [(T0, T0, {"n": i, "x": 1}) for i in range(3)])
    store(db_url, pid, "kept", [(T0, T0, {"n": 0, "y": 1})])
    r = client.delete(f"/3.0/projects/{pid}/events/gone", headers=auth(a["master_key"]))
    assert r.json() == {"deleted": 3}
    assert remaining(db_url, pid, "gone") == []
    names = client.get(f"/3.0/projects/{pid}/events", headers=auth(a["read_key"])).json()
    assert [c["name"] for c in names] == ["kept"]
    assert (
        client.get(f"/3.0/projects/{pid}/events/gone", headers=auth(a["read_key"])).status_code
        == 404
    )
    # A filtered delete that leaves events keeps the schema.
    store(db_url, pid, "kept", [(T0, T0, {"n": 1, "z": "s"})])
    one = json.dumps([{"property_name": "n", "operator": "eq", "property_value": 0}])
    r = client.delete(
        f"/3.0/projects/{pid}/events/kept", headers=auth(a["master_key"]), params={"filters": one}
    )
    assert r.json() == {"deleted": 1}
    kept = client.get(f"/3.0/projects/{pid}/events/kept", headers=auth(a["read_key"])).json()
    assert set(kept["properties"]) >= {"n", "y", "z"}


def test_only_the_master_key_deletes_and_bad_parameters_are_400(
    client: TestClient, projects: tuple, db_url: str
) -> None:
    a, b = projects
    pid = a["project_id"]
    store(db_url, pid, "c", [(T0, T0, {"n": 0})])
    url = f"/3.0/projects/{pid}/events/c"
    for key in (a["read_key"], a["write_key"], b["master_key"]):
        assert client.delete(url, headers=auth(key)).status_code == 403
    assert client.delete(url).status_code == 401
    for params in (
        {"filters": "[{"},
        {"filters": json.dumps([{"property_name": "n", "operator": "nope"}])},
        {"timeframe": "last_fortnight"},
        {"timezone": "Mars/Olympus"},
        {
            "filters": json.dumps(
                [{"property_name": "n", "operator": "regex", "property_value": "(?=x)"}]
            )
        },
    ):
        r = client.delete(url, headers=auth(a["master_key"]), params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["error_code"] == "InvalidQueryError"
    assert remaining(db_url, pid, "c") == [0]
    with session_scope(engine_for(db_url)) as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == 0


@pytest.mark.parametrize("batch_size", [2, 5000])
def test_deletion_goes_in_bounded_batches(db_url: str, projects: tuple, batch_size: int) -> None:
    a, _ = projects
    pid = a["project_id"]
    engine = make_engine(db_url)
    total = 5_003 if batch_size == 5000 else 7
    with engine.begin() as conn:
        conn.execute(
            insert(Event),
            [
                {
                    "project_id": pid,
                    "collection": "bulk",
                    "keen_id": f"{i:024x}",
                    "keen_timestamp": T0,
                    "created_at": T0 + timedelta(hours=i % 2),
                    "body": {"n": i, "odd": i % 2 == 1},
                }
                for i in range(total)
            ],
        )
    query = parse_deletion(pid, "bulk", {}, FilterLimits())
    with session_scope(engine) as session:
        result = delete_events(
            session, query, actor="key:test", audit="bulk", batch_size=batch_size
        )
    expected_batches = {2: 4, 5000: 2}[batch_size]  # 7 rows: 2+2+2+1; 5,003: 5,000+3
    assert (result.deleted, result.batches) == (total, expected_batches)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Event)) == 0
        counters = conn.execute(
            select(IngestCounter.bucket, IngestCounter.deleted).order_by(IngestCounter.bucket)
        ).all()
        audits = conn.scalar(select(func.count()).select_from(AuditEntry))
        schema = conn.scalar(select(func.count()).select_from(CollectionProperty))
    engine.dispose()
    # Even ids were accepted at 10:00, odd ones at 11:00; one audit entry per call.
    evens = (total + 1) // 2
    assert [d for _, d in counters] == [evens, total - evens]
    assert (audits, schema) == (1, 0)
