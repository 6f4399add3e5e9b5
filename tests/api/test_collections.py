"""Keen's inspection endpoints, GET /3.0/projects/{id}/events and /events/{collection}, on both
databases: the schema the worker's batch write keeps (BatchWriter, as the worker calls it),
Keen's shape and type names, the caps against hostile events, and who may inspect."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.ingest.persist import BatchOutcome, BatchWriter
from app.ingest.pipeline import Accepted
from app.store.db import make_engine, session_scope
from app.store.keys import create_key
from app.store.models import CollectionProperty
from tests.api.conftest import auth

NOW = datetime(2026, 12, 6, 10, 30, tzinfo=UTC)
STAMP = "2026-12-06T10:30:00.000Z"


class Writer:
    """Stores events the way the worker does (one BatchWriter.write per batch)."""

    def __init__(self, db_url: str) -> None:
        self.engine = make_engine(db_url)
        self.writer = BatchWriter(self.engine, payload_cap=1024)
        self.n = 0

    def batch(self, project_id: str, collection: str, bodies: list[dict[str, Any]]) -> None:
        accepted = []
        for props in bodies:
            self.n += 1
            keen_id = f"{self.n:024x}"
            body = {**props, "keen": {"timestamp": STAMP, "created_at": STAMP, "id": keen_id}}
            accepted.append(Accepted(project_id, collection, keen_id, NOW, NOW, body))
        self.writer.write(BatchOutcome(accepted=accepted))

    def rows(self, project_id: str) -> int:
        with self.engine.connect() as conn:
            return conn.scalar(
                select(func.count())
                .select_from(CollectionProperty)
                .where(CollectionProperty.project_id == project_id)
            )


KEEN = {"keen.created_at": "datetime", "keen.id": "string", "keen.timestamp": "datetime"}


def test_collections_and_their_properties_in_keens_shape(
    client: TestClient, projects: tuple, db_url: str
) -> None:
    a, b = projects
    pid = a["project_id"]
    w = Writer(db_url)
    w.batch(
        pid,
        "purchases",
        [
            {"item": {"name": "shoe", "price": 12.5}, "qty": 2, "gift": False, "tags": ["a"]},
            {"item": {"name": "hat", "price": 3}, "coupon": None, "meta": {}},
        ],
    )
    # A later batch: a new property, a type the path already had, and a second type.
    w.batch(pid, "purchases", [{"qty": 1, "coupon": "SAVE10", "note": "first"}])
    w.batch(pid, "signups", [{"user": {"plan": {"tier": "pro"}}, "ref": None}])
    w.batch(b["project_id"], "other", [{"secret_name": 1}])

    r = client.get(f"/3.0/projects/{pid}/events", headers=auth(a["read_key"]))
    assert r.status_code == 200, r.text
    assert r.json() == [
        {
            "name": "purchases",
            "properties": {
                # null and then a string: a path with a non-null type is answered by it
                "coupon": "string",
                "gift": "bool",
                "item.name": "string",
                "item.price": "num",
                **KEEN,
                "note": "string",
                "qty": "num",
                "tags": "list",
            },
            "url": f"/3.0/projects/{pid}/events/purchases",
        },
        {
            "name": "signups",
            "properties": {**KEEN, "ref": "null", "user.plan.tier": "string"},
            "url": f"/3.0/projects/{pid}/events/signups",
        },
    ]
    one = client.get(f"/3.0/projects/{pid}/events/signups", headers=auth(a["master_key"]))
    assert one.status_code == 200
    assert one.json() == {
        "name": "signups",
        "properties": {**KEEN, "ref": "null", "user.plan.tier": "string"},
        "url": f"/3.0/projects/{pid}/events/signups",
    }
    missing = client.get(f"/3.0/projects/{pid}/events/nope", headers=auth(a["read_key"]))
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "ResourceNotFoundError"
    # Project B's schema is its own.
    other = client.get(f"/3.0/projects/{b['project_id']}/events", headers=auth(b["read_key"]))
    assert [c["name"] for c in other.json()] == ["other"]
    assert other.json()[0]["properties"]["secret_name"] == "num"
    # One row per (path, type): purchases 10 paths, coupon twice (null, string); signups 5.
    assert w.rows(pid) == 16
    w.engine.dispose()


def test_a_string_then_a_number_is_answered_string(
    client: TestClient, projects: tuple, db_url: str
) -> None:
    a, _ = projects
    w = Writer(db_url)
    w.batch(a["project_id"], "c", [{"v": 1}, {"v": "1"}, {"w": 2}, {"w": True}])
    r = client.get(f"/3.0/projects/{a['project_id']}/events/c", headers=auth(a["read_key"]))
    assert r.json()["properties"] == {**KEEN, "v": "string", "w": "num"}
    w.engine.dispose()


def test_a_hostile_event_cannot_bloat_the_schema(
    client: TestClient, projects: tuple, db_url: str
) -> None:
    a, _ = projects
    pid = a["project_id"]
    w = Writer(db_url)
    # 1,500 keys in one event: the walk stops at 1,000 leaves.
    w.batch(pid, "wide", [{f"k{i:05d}": i for i in range(1500)}])
    assert w.rows(pid) == 1000
    # The collection is full: 1,000 pairs at most, whatever later batches bring.
    w.batch(pid, "wide", [{"zzz_new": 1}, {"k00000": "now a string"}])
    assert w.rows(pid) == 1000
    props = client.get(f"/3.0/projects/{pid}/events/wide", headers=auth(a["read_key"])).json()
    assert len(props["properties"]) == 1000
    assert "zzz_new" not in props["properties"]
    # A path longer than 512 characters is left out; the rest of the event is kept.
    deep = {"a" * 200: {"b" * 200: {"c" * 200: 1}}, "short": 1}
    w.batch(pid, "deep", [deep])
    got = client.get(f"/3.0/projects/{pid}/events/deep", headers=auth(a["read_key"])).json()
    assert got["properties"] == {**KEEN, "short": "num"}
    w.engine.dispose()


def test_who_may_inspect(client: TestClient, projects: tuple, db_url: str) -> None:
    a, b = projects
    pid = a["project_id"]
    w = Writer(db_url)
    w.batch(pid, "purchases", [{"price": 1}])
    engine = make_engine(db_url)
    with session_scope(engine) as s:
        filtered = create_key(
            s,
            pid,
            "access",
            name="shop 7 only",
            permitted=["queries"],
            options={
                "queries": {
                    "filters": [{"property_name": "shop", "operator": "eq", "property_value": 7}]
                }
            },
        ).secret
        schema_only = create_key(s, pid, "access", name="schema", permitted=["schema"]).secret
        writes_only = create_key(s, pid, "access", name="w", permitted=["writes"]).secret
    engine.dispose()
    url = f"/3.0/projects/{pid}/events"
    for key in (a["master_key"], a["read_key"], schema_only):
        r = client.get(url, headers=auth(key))
        assert r.status_code == 200, r.text
        assert [c["name"] for c in r.json()] == ["purchases"]
    for key in (a["write_key"], writes_only, b["read_key"], filtered):
        r = client.get(url, headers=auth(key))
        assert r.status_code == 403, (key, r.text)
        r = client.get(f"{url}/purchases", headers=auth(key))
        assert r.status_code == 403
    refused = client.get(url, headers=auth(filtered)).json()
    assert "forces query filters" in refused["message"]
    assert client.get(url).status_code == 401
    assert client.get(url, headers=auth("not-a-key")).status_code == 401
    # The POST on the same path is untouched by the GET: still the write route.
    assert client.post(f"{url}/purchases", headers=auth(a["read_key"]), json={}).status_code == 403
    w.engine.dispose()
