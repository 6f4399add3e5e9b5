"""Request bodies with an unknown field are refused with 400 in the one error shape, never
silently ignored (a replay filter with a misspelt field must not match every open error)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.models import IngestError
from tests.api.conftest import admin, auth, insert_error


def _refused(r) -> str:  # noqa: ANN001 - an httpx response
    assert r.status_code == 400, r.text
    body = r.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == "InvalidParameterError"
    return body["message"]


@pytest.mark.kafka
def test_replay_filter_with_unknown_field_replays_nothing(
    kafka_client: TestClient, kafka_settings: Settings, projects: tuple, db_url: str
) -> None:
    a, _ = projects
    pid, h = a["project_id"], auth(a["master_key"])
    wanted = insert_error(db_url, pid, collection="orders")
    insert_error(db_url, pid, collection="orders")
    url = f"/3.0/projects/{pid}/errors/replay"
    r = kafka_client.post(url, headers=h, json={"filter": {"error_ids": [wanted]}})
    assert "error_ids" in _refused(r)
    r = kafka_client.post(url, headers=h, json={"error_id": wanted, "dryrun": True})
    assert "dryrun" in _refused(r)
    with session_scope(engine_for(db_url)) as s:
        rows = s.scalars(select(IngestError)).all()
        assert {(e.status, e.replay_count) for e in rows} == {("open", 0)}


def test_other_request_bodies_refuse_unknown_fields(client: TestClient, projects: tuple) -> None:
    a, _ = projects
    pid, h = a["project_id"], auth(a["master_key"])
    eid = "0" * 32
    _refused(
        client.patch(
            f"/3.0/projects/{pid}/errors/{eid}", headers=h, json={"status": "resolved", "x": 1}
        )
    )
    _refused(
        client.post(f"/3.0/projects/{pid}/keys", headers=h, json={"kind": "read", "scope": "all"})
    )
    _refused(
        client.post(
            f"/3.0/projects/{pid}/keys",
            headers=h,
            json={"kind": "access", "permitted": ["writes"], "options": {"write": {}}},
        )
    )
    _refused(client.post("/admin/projects", headers=admin(), json={"name": "x", "owner": "y"}))
    hooks = f"/3.0/projects/{pid}/webhooks"
    _refused(client.post(hooks, headers=h, json={"url": "https://example.com/h", "secret": "s"}))
