"""The customer's errors API: list, one with payload (audited), summary, status,
reconciliation, and replay up to the record on the backend topic."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.models import AuditEntry, IngestCounter, IngestError
from tests.api.conftest import auth, insert_error, read_records


def test_list_filters_and_cursor(client: TestClient, projects: tuple, db_url: str) -> None:
    a, _ = projects
    pid, h = a["project_id"], auth(a["master_key"])
    base = datetime(2026, 5, 1, tzinfo=UTC)
    ids = [
        insert_error(
            db_url,
            pid,
            collection="c1" if i % 2 else "c2",
            code="invalid_json" if i < 5 else "invalid_timestamp",
            created_at=base + timedelta(minutes=i),
            status="ignored" if i == 9 else "open",
        )
        for i in range(10)
    ]
    url = f"/3.0/projects/{pid}/errors"
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get(url, headers=h, params=params).json()
        seen += [e["error_id"] for e in page["errors"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))  # newest first, no gaps, no repeats
    only = client.get(url, headers=h, params={"collection": "c1", "code": "invalid_timestamp"})
    assert {e["error_id"] for e in only.json()["errors"]} == {ids[5], ids[7], ids[9]}
    opened = client.get(url, headers=h, params={"status": "open"}).json()["errors"]
    assert ids[9] not in {e["error_id"] for e in opened}
    frame = {"since": "2026-05-01T00:02:00Z", "until": "2026-05-01T00:04:00Z"}
    assert [e["error_id"] for e in client.get(url, headers=h, params=frame).json()["errors"]] == [
        ids[3],
        ids[2],
    ]
    assert client.get(url, headers=h, params={"status": "weird"}).status_code == 400
    assert client.get(url, headers=h, params={"cursor": "!!"}).status_code == 400


def test_one_error_with_payload_is_audited(
    client: TestClient, projects: tuple, db_url: str
) -> None:
    a, _ = projects
    pid, h = a["project_id"], auth(a["master_key"])
    text_id = insert_error(db_url, pid, payload=b'{"price": 1', headers=[("trace", b"t-1")])
    binary_id = insert_error(db_url, pid, code="invalid_utf8", payload=b"\xff\x00abc")
    big_id = insert_error(db_url, pid, payload=b"x" * 100, cap=10)
    r = client.get(f"/3.0/projects/{pid}/errors/{text_id}", headers=h)
    assert r.status_code == 200
    body = r.json()
    assert body["payload"] == {
        "utf8": '{"price": 1',
        "base64": base64.b64encode(b'{"price": 1').decode(),
    }
    assert body["headers"] == [{"name": "trace", "value_base64": "dC0x", "value_utf8": "t-1"}]
    assert body["dlq"] == {
        "topic": "purchases-DLQ",
        "backend_topic": f"dlq.{pid}.purchases",
        "partition": 0,
        "offset": 7,
    }
    assert body["source"]["backend_topic"] == f"in.{pid}.purchases"
    binary = client.get(f"/3.0/projects/{pid}/errors/{binary_id}", headers=h).json()
    assert binary["payload"]["utf8"] is None
    assert base64.b64decode(binary["payload"]["base64"]) == b"\xff\x00abc"
    big = client.get(f"/3.0/projects/{pid}/errors/{big_id}", headers=h).json()
    assert big["payload_truncated"] is True and big["payload_size"] == 100
    assert client.get(f"/3.0/projects/{pid}/errors/nope", headers=h).status_code == 404
    with session_scope(engine_for(db_url)) as s:
        audit = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [(e.action, e.target, e.project_id) for e in audit] == [
            ("error.payload.read", text_id, pid),
            ("error.payload.read", binary_id, pid),
            ("error.payload.read", big_id, pid),
        ]
        assert audit[0].actor.startswith("key:")


def test_summary_status_and_reconciliation(
    client: TestClient, projects: tuple, db_url: str
) -> None:
    a, _ = projects
    pid, h = a["project_id"], auth(a["master_key"])
    base = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    insert_error(db_url, pid, collection="c1", created_at=base + timedelta(minutes=5))
    insert_error(db_url, pid, collection="c1", created_at=base + timedelta(minutes=65))
    eid = insert_error(
        db_url, pid, collection="c2", code="invalid_timestamp", created_at=base + timedelta(hours=1)
    )
    r = client.get(
        f"/3.0/projects/{pid}/errors/summary",
        headers=h,
        params={"since": "2026-05-01T10:00:00Z", "until": "2026-05-01T12:00:00Z"},
    )
    s = r.json()
    assert s["totals"] == {
        "total": 3,
        "by_code": {"invalid_json": 2, "invalid_timestamp": 1},
        "by_collection": {"c1": 2, "c2": 1},
    }
    assert [b["total"] for b in s["buckets"]] == [1, 2]
    day = client.get(
        f"/3.0/projects/{pid}/errors/summary",
        headers=h,
        params={"since": "2026-05-01T00:00:00Z", "until": "2026-05-03T00:00:00Z", "bucket": "day"},
    ).json()
    assert [b["total"] for b in day["buckets"]] == [3, 0]

    r = client.patch(f"/3.0/projects/{pid}/errors/{eid}", headers=h, json={"status": "resolved"})
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    assert (
        client.patch(f"/3.0/projects/{pid}/errors/{eid}", headers=h, json={"status": "x"})
    ).status_code == 400

    with session_scope(engine_for(db_url)) as session:
        session.add_all(
            [
                IngestCounter(
                    project_id=pid,
                    collection="c1",
                    bucket=base,
                    received=10,
                    accepted=7,
                    rejected=2,
                    dropped=1,
                    dropped_reasons={"dlq_paused": 1},
                ),
                IngestCounter(
                    project_id=pid,
                    collection="c2",
                    bucket=base + timedelta(hours=1),
                    received=5,
                    accepted=4,
                    rejected=0,
                    dropped=0,
                    dropped_reasons={},
                ),
            ]
        )
    rec = client.get(
        f"/3.0/projects/{pid}/reconciliation",
        headers=h,
        params={"since": "2026-05-01T10:30:00Z", "until": "2026-05-01T12:00:00Z"},
    ).json()
    assert rec["totals"] == {
        "received": 15,
        "accepted": 11,
        "rejected": 2,
        "dropped": 1,
        "unaccounted": 1,
        "deleted": 0,
    }
    assert rec["balanced"] is False
    assert [(r["collection"], r["unaccounted"]) for r in rec["rows"]] == [("c1", 0), ("c2", 1)]
    assert rec["rows"][0]["dropped_reasons"] == {"dlq_paused": 1}


def test_replay_dry_run_and_validation(client: TestClient, projects: tuple, db_url: str) -> None:
    a, _ = projects
    pid, h = a["project_id"], auth(a["master_key"])
    for _ in range(3):
        insert_error(db_url, pid, code="invalid_timestamp")
    insert_error(db_url, pid, code="invalid_json")
    url = f"/3.0/projects/{pid}/errors/replay"
    r = client.post(url, headers=h, json={"filter": {"code": "invalid_timestamp"}, "dry_run": True})
    assert r.json() == {
        "dry_run": True,
        "matched": 3,
        "replayed": [],
        "refused": [],
        "remaining": 3,
    }
    assert client.post(url, headers=h, json={}).status_code == 400
    both = {"error_id": "x", "filter": {}}
    assert client.post(url, headers=h, json=both).status_code == 400
    assert client.post(url, headers=h, json={"error_id": "nope"}).status_code == 404
    # Without Kafka the replay cannot produce: 503, and nothing is marked replayed.
    r = client.post(url, headers=h, json={"filter": {"code": "invalid_json"}})
    assert r.status_code == 503
    with session_scope(engine_for(db_url)) as s:
        assert {e.status for e in s.scalars(select(IngestError))} == {"open"}


@pytest.mark.kafka
def test_replay_reproduces_the_original_record(
    kafka_client: TestClient, kafka_settings: Settings, projects: tuple, db_url: str
) -> None:
    a, _ = projects
    pid, h = a["project_id"], auth(a["master_key"])
    source = (f"in.{pid}.orders", 2, 41)
    eid = insert_error(
        db_url,
        pid,
        collection="orders",
        code="invalid_timestamp",
        payload=b'{"keen": {"timestamp": "fixed"}}',
        key=b"order-7",
        source=source,
        headers=[
            ("inbound.key_id", b"k1"),
            ("trace", b"abc"),
            ("inbound.error.code", b"invalid_timestamp"),
        ],
    )
    capped = insert_error(db_url, pid, collection="orders", replay_count=3)
    http_bad_name = insert_error(
        db_url, pid, collection="bad name", stage="http", source=("", 0, 0)
    )
    url = f"/3.0/projects/{pid}/errors/replay"
    r = kafka_client.post(url, headers=h, json={"filter": {"collection": "orders"}})
    assert r.status_code == 200, r.text
    out = r.json()
    assert [x["error_id"] for x in out["replayed"]] == [eid]
    assert out["refused"] == [{"error_id": capped, "reason": "replay_cap_reached"}]
    records = read_records(kafka_settings.kafka_bootstrap, f"in.{pid}.orders", 1)
    [record] = records
    assert record.value == b'{"keen": {"timestamp": "fixed"}}'
    assert record.key == b"order-7"
    headers = dict(record.headers)
    assert headers["trace"] == b"abc"
    assert headers["inbound.key_id"] == b"k1"
    assert headers["inbound.replay.count"] == b"1"
    assert headers["inbound.replay.source"] == f"{source[0]}/{source[1]}/{source[2]}".encode()
    assert headers["inbound.replay.error_id"] == eid.encode()
    assert "inbound.error.code" not in headers
    with session_scope(engine_for(db_url)) as s:
        row = s.get(IngestError, eid)
        assert row.status == "replayed" and row.replay_count == 1
        assert row.replay_outcome["status"] == "pending"
        assert row.replay_outcome["offset"] == record.offset
    r = kafka_client.post(url, headers=h, json={"error_id": http_bad_name})
    assert r.json()["refused"] == [{"error_id": http_bad_name, "reason": "collection_name_invalid"}]
    # Replays count up to the cap, then stop: no loops.
    for expected in (2, 3):
        r = kafka_client.post(url, headers=h, json={"error_id": eid}).json()
        assert r["replayed"][0]["replay_count"] == expected
    r = kafka_client.post(url, headers=h, json={"error_id": eid}).json()
    assert r["refused"] == [{"error_id": eid, "reason": "replay_cap_reached"}]


@pytest.mark.kafka
def test_replay_is_rate_limited(
    db_url: str, make_settings: object, kafka_bootstrap: str, projects: tuple
) -> None:
    from app.api.app import create_app
    from app.api.deps import get_replay_limiter
    from app.api.replay_limit import ReplayLimiter

    a, _ = projects
    pid, h = a["project_id"], auth(a["master_key"])
    for _ in range(3):
        insert_error(db_url, pid, collection="slow")
    settings = make_settings(  # type: ignore[operator]
        db_url, kafka_bootstrap=kafka_bootstrap, replay_burst=2, replay_rate_per_second=0.5
    )
    now = [1000.0]  # the limiter's clock: moved by the test, never slept on
    limiter = ReplayLimiter(
        settings.replay_rate_per_second, settings.replay_burst, clock=lambda: now[0]
    )
    app = create_app(settings)
    app.dependency_overrides[get_replay_limiter] = lambda: limiter
    with TestClient(app) as c:
        url = f"/3.0/projects/{pid}/errors/replay"
        r = c.post(url, headers=h, json={"filter": {"collection": "slow"}})
        assert len(r.json()["replayed"]) == 2 and r.json()["remaining"] == 1
        r = c.post(url, headers=h, json={"filter": {"collection": "slow"}})
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "2"  # one record at 0.5 a second
        now[0] += 1.9
        r = c.post(url, headers=h, json={"filter": {"collection": "slow"}})
        assert r.status_code == 429  # not quite a whole token yet
        now[0] += 0.2
        r = c.post(url, headers=h, json={"filter": {"collection": "slow"}})
        assert len(r.json()["replayed"]) == 1
