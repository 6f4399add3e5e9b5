"""Support staff: token checks, cross-project search, overview, audit, resume, projects, keys."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.api.app import create_app
from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.models import AuditEntry, IngestCounter, Notification, StreamPause
from tests.api.conftest import admin, auth, insert_error


def test_admin_token_required(client: TestClient, db_url: str, make_settings: Callable) -> None:
    assert client.get("/admin/projects").status_code == 401
    r = client.get("/admin/projects", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error_code"] == "InvalidAdminTokenError"
    assert client.get("/admin/projects", headers=admin()).status_code == 200
    # A project key is not an admin token.
    with TestClient(create_app(make_settings(db_url))) as disabled:
        assert disabled.get("/admin/projects", headers=admin()).status_code == 404


def test_projects_and_keys(client: TestClient) -> None:
    r = client.post("/admin/projects", headers=admin(), json={"name": "shop"})
    assert r.status_code == 201
    created = r.json()
    pid = created["project_id"]
    assert set(created) == {"project_id", "name", "master_key", "write_key", "read_key"}
    assert pid in [p["project_id"] for p in client.get("/admin/projects", headers=admin()).json()]
    # The new keys work.
    url = f"/3.0/projects/{pid}/queries/count?event_collection=x"
    assert client.get(url, headers=auth(created["read_key"])).json() == {"result": 0}
    r = client.post(
        f"/admin/projects/{pid}/keys",
        headers=admin(),
        json={
            "kind": "access",
            "name": "ingest",
            "permitted": ["writes"],
            "options": {"writes": {"autofill": {"source": "web"}}},
        },
    )
    assert r.status_code == 201
    access = r.json()
    assert access["options"] == {"writes": {"autofill": {"source": "web"}}}
    r = client.post(f"/admin/projects/{pid}/keys", headers=admin(), json={"kind": "read"})
    read2 = r.json()
    keys = client.get(f"/admin/projects/{pid}/keys", headers=admin()).json()
    assert len(keys) == 5
    secrets = {created["master_key"], created["write_key"], created["read_key"], read2["key"]}
    assert not any(s in str(keys) for s in secrets)
    r = client.delete(f"/admin/projects/{pid}/keys/{read2['key_id']}", headers=admin())
    assert r.json()["is_active"] is False and r.json()["revoked_at"]
    assert client.get(url, headers=auth(read2["key"])).status_code == 401
    assert client.get("/admin/projects/nope/keys", headers=admin()).status_code == 404
    assert client.post("/admin/projects", headers=admin(), json={"name": ""}).status_code == 400


def test_search_overview_audit_and_resume(
    client: TestClient, projects: tuple, db_url: str, api_settings: Settings
) -> None:
    a, b = projects
    ea = insert_error(db_url, a["project_id"], code="invalid_json")
    eb = insert_error(db_url, b["project_id"], code="invalid_timestamp")
    found = client.get("/admin/errors", headers=admin()).json()["errors"]
    assert {e["error_id"] for e in found} == {ea, eb}
    only_b = client.get("/admin/errors", headers=admin(), params={"project_id": b["project_id"]})
    assert [e["error_id"] for e in only_b.json()["errors"]] == [eb]
    r = client.get(f"/admin/errors/{eb}", headers={**admin(), "X-Inbound-Actor": "sam"})
    assert r.status_code == 200 and r.json()["payload"]["utf8"] == '{"price": 1'
    assert client.get("/admin/errors/nope", headers=admin()).status_code == 404

    now = datetime.now(UTC)
    with session_scope(engine_for(db_url)) as s:
        s.add(
            IngestCounter(
                project_id=a["project_id"],
                collection="purchases",
                bucket=now.replace(minute=0, second=0, microsecond=0),
                received=4,
                accepted=3,
                rejected=1,
                dropped=0,
                dropped_reasons={},
            )
        )
        pause = StreamPause(
            project_id=a["project_id"],
            collection="purchases",
            topic=f"in.{a['project_id']}.purchases",
            partition=1,
            reason="90% rejected",
            paused_at=now - timedelta(minutes=5),
        )
        s.add(pause)
        s.flush()
        pause_id = pause.id
    ov = client.get(f"/admin/projects/{a['project_id']}/overview", headers=admin()).json()
    assert (ov["received"], ov["rejected"], ov["error_rate"]) == (4, 1, 0.25)
    assert ov["last_error"]["error_id"] == ea
    assert ov["errors_by_code"] == {"invalid_json": 1}
    assert [p["pause_id"] for p in ov["paused_streams"]] == [pause_id]
    assert client.get("/admin/projects/nope/overview", headers=admin()).status_code == 404
    rec = client.get(f"/admin/projects/{a['project_id']}/reconciliation", headers=admin()).json()
    assert rec["totals"]["received"] == 4 and rec["balanced"] is True

    resume = f"/admin/projects/{a['project_id']}/pauses/{pause_id}/resume"
    r = client.post(resume, headers=admin())
    assert r.status_code == 200 and r.json()["resumed_by"] == "admin"
    assert client.post(resume, headers=admin()).status_code == 409
    # Webhooks are told, once (the 409 adds nothing), as `inbound dlq resume` tells them.
    with session_scope(engine_for(db_url)) as s:
        told = s.scalars(select(Notification).where(Notification.type == "dlq.resumed")).all()
        assert [(n.project_id, n.payload) for n in told] == [
            (
                a["project_id"],
                {
                    "collection": "purchases",
                    "topic": "purchases",
                    "partitions": [1],
                    "resumed_by": "admin",
                },
            )
        ]
    # Another project's path does not reach this pause.
    wrong = f"/admin/projects/{b['project_id']}/pauses/{pause_id}/resume"
    assert client.post(wrong, headers=admin()).status_code == 404
    assert client.get(f"/admin/projects/{a['project_id']}/pauses", headers=admin()).json() == []
    all_pauses = client.get(
        f"/admin/projects/{a['project_id']}/pauses",
        headers=admin(),
        params={"include_resumed": True},
    ).json()
    assert all_pauses[0]["resumed_at"]

    log = client.get("/admin/audit", headers=admin()).json()["entries"]
    assert [(e["actor"], e["action"], e["target"]) for e in log][:2] == [
        ("admin", "stream.resume", f"in.{a['project_id']}.purchases/1"),
        ("admin:sam", "error.payload.read", eb),
    ]
    page = client.get(
        "/admin/audit", headers=admin(), params={"limit": 1, "action": "error.payload.read"}
    ).json()
    assert len(page["entries"]) == 1 and page["next_cursor"] is None
    with session_scope(engine_for(db_url)) as s:
        assert (
            s.scalar(select(AuditEntry).where(AuditEntry.target == eb)).project_id
            == (b["project_id"])
        )
