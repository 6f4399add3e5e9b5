"""Access keys: created by the master key, shown once, their options applied."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from app.settings import Settings
from tests.api.conftest import auth, insert_events, read_all


def test_access_key_lifecycle_and_forced_filters(
    client: TestClient, projects: tuple, db_url: str
) -> None:
    a, _ = projects
    pid, hm = a["project_id"], auth(a["master_key"])
    now = datetime.now(UTC)
    insert_events(
        db_url,
        pid,
        "purchases",
        [(now, {"tenant": "t1", "n": 1}), (now, {"tenant": "t2", "n": 2}), (now, {"n": 3})],
    )
    body = {
        "name": "tenant one dashboard",
        "permitted": ["queries"],
        "options": {
            "queries": {
                "filters": [{"property_name": "tenant", "operator": "eq", "property_value": "t1"}]
            }
        },
    }
    r = client.post(f"/3.0/projects/{pid}/keys", headers=hm, json=body)
    assert r.status_code == 201, r.text
    secret = r.json()["key"]
    listed = client.get(f"/3.0/projects/{pid}/keys", headers=hm).json()
    assert len(listed) == 4
    assert all("key" not in k for k in listed)
    assert all(secret not in str(k) for k in listed)
    # The key's filter is added to the caller's: it cannot be widened.
    q = {"event_collection": "purchases"}
    assert client.post(
        f"/3.0/projects/{pid}/queries/count", headers=auth(secret), json=q
    ).json() == {"result": 1}
    widen = {
        **q,
        "filters": [{"property_name": "tenant", "operator": "eq", "property_value": "t2"}],
    }
    r = client.post(f"/3.0/projects/{pid}/queries/count", headers=auth(secret), json=widen)
    assert r.json() == {"result": 0}
    extracted = client.post(
        f"/3.0/projects/{pid}/queries/extraction", headers=auth(secret), json=q
    ).json()["result"]
    assert [e["tenant"] for e in extracted] == ["t1"]
    # No write permission.
    r = client.post(f"/3.0/projects/{pid}/events/purchases", headers=auth(secret), json={})
    assert r.status_code == 403


def test_key_validation(client: TestClient, projects: tuple) -> None:
    a, _ = projects
    pid, hm = a["project_id"], auth(a["master_key"])
    bad = [
        {"permitted": ["fly"]},
        {"permitted": ["writes"], "options": {"writes": {"autofill": {"keen": {"x": 1}}}}},
        {"permitted": ["queries"], "options": {"queries": {"filters": [{"operator": "eq"}]}}},
    ]
    for body in bad:
        assert client.post(f"/3.0/projects/{pid}/keys", headers=hm, json=body).status_code == 400
    # A master key makes access keys only; other kinds are the admin's.
    r = client.post(f"/3.0/projects/{pid}/keys", headers=hm, json={"kind": "master"})
    assert r.status_code == 403
    master_id = next(
        k["key_id"]
        for k in client.get(f"/3.0/projects/{pid}/keys", headers=hm).json()
        if k["kind"] == "master"
    )
    assert (
        client.post(f"/3.0/projects/{pid}/keys/{master_id}/revoke", headers=hm).status_code == 400
    )
    assert client.post(f"/3.0/projects/{pid}/keys/nokey/revoke", headers=hm).status_code == 404


@pytest.mark.kafka
def test_revoking_a_key_tells_every_worker_at_once(
    kafka_client: TestClient, kafka_settings: Settings, projects: tuple
) -> None:
    """The revoke answer is followed by an invalidate_keys command on inbound.control, which
    every worker reads (app/ingest/control_listener.py), so none waits for its key cache."""
    import time

    import orjson

    from tests.support.worker import wait_until

    a, _ = projects
    pid, h = a["project_id"], auth(a["master_key"])
    created = kafka_client.post(
        f"/3.0/projects/{pid}/keys", headers=h, json={"name": "to-revoke", "options": {}}
    )
    assert created.status_code == 201, created.text
    before_ms = int(time.time() * 1000)  # the command is timestamped by this machine too
    r = kafka_client.post(f"/3.0/projects/{pid}/keys/{created.json()['key_id']}/revoke", headers=h)
    assert r.status_code == 200, r.text

    def commands() -> list[dict]:
        records = read_all(kafka_settings.kafka_bootstrap, "inbound.control")
        return [orjson.loads(m.value) for m in records if m.timestamp >= before_ms]

    found = wait_until(
        lambda: [c for c in commands() if c == {"type": "invalidate_keys"}], 30, "no command"
    )
    assert found == [{"type": "invalidate_keys"}]
