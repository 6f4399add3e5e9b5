"""Each auth failure, the one error shape, and project isolation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import auth, insert_error, insert_events

COUNT = "/3.0/projects/{}/queries/count?event_collection=purchases"


def _shape(body: dict) -> None:
    assert set(body) >= {"error_code", "message"}
    assert isinstance(body["message"], str) and body["message"]


def test_missing_and_unknown_key_are_401(client: TestClient, projects: tuple) -> None:
    a, _ = projects
    r = client.get(COUNT.format(a["project_id"]))
    assert r.status_code == 401
    _shape(r.json())
    assert r.json()["error_code"] == "InvalidApiKeyError"
    r = client.get(COUNT.format(a["project_id"]), headers=auth("f" * 64))
    assert r.status_code == 401
    _shape(r.json())


def test_key_in_header_bearer_or_query_parameter(client: TestClient, projects: tuple) -> None:
    a, _ = projects
    pid = a["project_id"]
    assert client.get(COUNT.format(pid), headers=auth(a["read_key"])).status_code == 200
    assert (
        client.get(COUNT.format(pid), headers={"Authorization": f"Bearer {a['read_key']}"})
    ).status_code == 200
    assert client.get(COUNT.format(pid) + f"&api_key={a['read_key']}").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "key_kind"),
    [
        ("post", "/3.0/projects/{}/events/purchases", "read_key"),
        ("post", "/3.0/projects/{}/events", "read_key"),
        ("get", "/3.0/projects/{}/queries/count?event_collection=x", "write_key"),
        ("get", "/3.0/projects/{}/queries/extraction?event_collection=x", "write_key"),
        ("get", "/3.0/projects/{}/errors", "read_key"),
        ("get", "/3.0/projects/{}/errors", "write_key"),
        ("get", "/3.0/projects/{}/errors/summary", "read_key"),
        ("get", "/3.0/projects/{}/errors/abc", "read_key"),
        ("patch", "/3.0/projects/{}/errors/abc", "read_key"),
        ("post", "/3.0/projects/{}/errors/replay", "write_key"),
        ("get", "/3.0/projects/{}/reconciliation", "read_key"),
        ("get", "/3.0/projects/{}/keys", "read_key"),
        ("post", "/3.0/projects/{}/keys", "write_key"),
        ("post", "/3.0/projects/{}/keys/abc/revoke", "read_key"),
    ],
)
def test_wrong_permission_is_403(
    client: TestClient, projects: tuple, method: str, path: str, key_kind: str
) -> None:
    a, _ = projects
    r = client.request(method, path.format(a["project_id"]), headers=auth(a[key_kind]), json={})
    assert r.status_code == 403, r.text
    _shape(r.json())


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/3.0/projects/{}/events/purchases"),
        ("post", "/3.0/projects/{}/events"),
        ("get", "/3.0/projects/{}/queries/count?event_collection=purchases"),
        ("post", "/3.0/projects/{}/queries/extraction"),
        ("get", "/3.0/projects/{}/errors"),
        ("get", "/3.0/projects/{}/errors/summary"),
        ("post", "/3.0/projects/{}/errors/replay"),
        ("get", "/3.0/projects/{}/reconciliation"),
        ("get", "/3.0/projects/{}/keys"),
    ],
)
def test_another_projects_master_key_is_403(
    client: TestClient, projects: tuple, method: str, path: str
) -> None:
    a, b = projects
    r = client.request(method, path.format(b["project_id"]), headers=auth(a["master_key"]), json={})
    assert r.status_code == 403, r.text
    _shape(r.json())


def test_project_a_sees_nothing_of_b(client: TestClient, projects: tuple, db_url: str) -> None:
    a, b = projects
    now = datetime.now(UTC)
    insert_events(db_url, a["project_id"], "purchases", [(now, {"who": "a"})])
    insert_events(db_url, b["project_id"], "purchases", [(now, {"who": "b"})] * 3)
    b_error = insert_error(db_url, b["project_id"])
    a_error = insert_error(db_url, a["project_id"])
    ha = auth(a["master_key"])
    pa = a["project_id"]
    assert client.get(COUNT.format(pa), headers=ha).json() == {"result": 1}
    events = client.get(
        f"/3.0/projects/{pa}/queries/extraction?event_collection=purchases", headers=ha
    ).json()["result"]
    assert [e["who"] for e in events] == ["a"]
    listed = client.get(f"/3.0/projects/{pa}/errors", headers=ha).json()["errors"]
    assert [e["error_id"] for e in listed] == [a_error]
    # B's error id through A's path: not found, not leaked.
    assert client.get(f"/3.0/projects/{pa}/errors/{b_error}", headers=ha).status_code == 404
    assert (
        client.patch(
            f"/3.0/projects/{pa}/errors/{b_error}", headers=ha, json={"status": "ignored"}
        ).status_code
        == 404
    )
    r = client.post(f"/3.0/projects/{pa}/errors/replay", headers=ha, json={"error_id": b_error})
    assert r.status_code == 404
    summary = client.get(f"/3.0/projects/{pa}/errors/summary", headers=ha).json()
    assert summary["totals"]["total"] == 1
    keys = client.get(f"/3.0/projects/{pa}/keys", headers=ha).json()
    assert {k["project_id"] for k in keys} == {pa}


def test_revoked_key_stops_working_at_once(client: TestClient, projects: tuple) -> None:
    a, _ = projects
    pid, hm = a["project_id"], auth(a["master_key"])
    created = client.post(
        f"/3.0/projects/{pid}/keys", headers=hm, json={"name": "dash", "permitted": ["queries"]}
    )
    assert created.status_code == 201
    key = created.json()
    assert client.get(COUNT.format(pid), headers=auth(key["key"])).status_code == 200
    r = client.post(f"/3.0/projects/{pid}/keys/{key['key_id']}/revoke", headers=hm)
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert client.get(COUNT.format(pid), headers=auth(key["key"])).status_code == 401


def test_unknown_route_and_bad_body_use_the_error_shape(
    client: TestClient, projects: tuple
) -> None:
    a, _ = projects
    r = client.get("/nope")
    assert r.status_code == 404
    _shape(r.json())
    r = client.post(
        f"/3.0/projects/{a['project_id']}/queries/count",
        headers=auth(a["read_key"]),
        content=b"not json",
    )
    assert r.status_code == 400
    _shape(r.json())
