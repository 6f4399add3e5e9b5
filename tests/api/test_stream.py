"""The stream API against a real broker: events land on the backend inbound topic."""

from __future__ import annotations

import re

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.models import ApiKey, IngestCounter, IngestError, Notification
from tests.api.conftest import auth, read_records

pytestmark = pytest.mark.kafka


def _key_id(settings: Settings, secret: str) -> str:
    from app.store.keys import hash_key

    with session_scope(engine_for(settings.effective_database_url)) as s:
        return s.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(secret)))


def _headers(record: object) -> dict[str, bytes]:
    return dict(record.headers)  # type: ignore[attr-defined]


def test_single_event_goes_to_the_inbound_topic(
    kafka_client: TestClient, kafka_settings: Settings, projects: tuple
) -> None:
    a, _ = projects
    pid = a["project_id"]
    raw = b'{"item": "widget", "price": 2.5}'
    r = kafka_client.post(
        f"/3.0/projects/{pid}/events/purchases",
        headers={**auth(a["write_key"]), "Content-Type": "application/json"},
        content=raw,
    )
    assert r.status_code == 201, r.text
    assert r.json() == {"created": True}
    [record] = read_records(kafka_settings.kafka_bootstrap, f"in.{pid}.purchases", 1)
    assert record.value == raw  # the original bytes, unchanged
    assert _headers(record)["inbound.key_id"] == _key_id(kafka_settings, a["write_key"]).encode()


def test_batch_answers_per_event_in_order(
    kafka_client: TestClient, kafka_settings: Settings, projects: tuple
) -> None:
    a, _ = projects
    pid = a["project_id"]
    body = {
        "signups": [{"plan": "free"}, [1, 2], {"plan": "pro"}],
        "bad name!": [{"x": 1}],
    }
    r = kafka_client.post(f"/3.0/projects/{pid}/events", headers=auth(a["master_key"]), json=body)
    assert r.status_code == 200, r.text
    result = r.json()
    assert [item["success"] for item in result["signups"]] == [True, False, True]
    assert result["signups"][1]["error"]["error_code"] == "not_an_object"
    assert result["bad name!"][0]["error"]["name"] == "InvalidCollectionNameError"
    records = read_records(kafka_settings.kafka_bootstrap, f"in.{pid}.signups", 2)
    assert sorted(orjson.loads(r.value)["plan"] for r in records) == ["free", "pro"]
    master_id = _key_id(kafka_settings, a["master_key"]).encode()
    assert all(_headers(r)["inbound.key_id"] == master_id for r in records)
    with session_scope(engine_for(kafka_settings.effective_database_url)) as s:
        codes = sorted(e.code for e in s.scalars(select(IngestError)))
    assert codes == ["invalid_collection_name", "not_an_object"]


@pytest.mark.parametrize(
    ("collection", "body", "code"),
    [
        ("bad name", b"{}", "invalid_collection_name"),
        ("x" * 65, b"{}", "collection_name_too_long"),
        ("orders-DLQ", b"{}", "invalid_collection_name"),
        ("orders", b"{not json", "invalid_json"),
        ("orders", b"\xff\xfe", "invalid_utf8"),
        ("orders", b"[1, 2]", "not_an_object"),
        ("orders", b'{"a": "' + b"x" * 921600 + b'"}', "event_too_large"),
    ],
)
def test_structural_errors_are_answered_and_recorded(
    kafka_client: TestClient,
    kafka_settings: Settings,
    projects: tuple,
    collection: str,
    body: bytes,
    code: str,
) -> None:
    a, _ = projects
    pid = a["project_id"]
    r = kafka_client.post(
        f"/3.0/projects/{pid}/events/{collection}", headers=auth(a["write_key"]), content=body
    )
    assert r.status_code == 400, r.text
    answer = r.json()
    assert answer["error_code"] == code
    error_id = answer["error_id"]
    with session_scope(engine_for(kafka_settings.effective_database_url)) as s:
        row = s.get(IngestError, error_id)
        assert row is not None and row.project_id == pid
        assert (row.stage, row.code, row.payload_size) == ("http", code, len(body))
        counters = s.scalars(select(IngestCounter).where(IngestCounter.project_id == pid)).all()
        dlq = (row.dlq_topic, row.dlq_partition, row.dlq_offset)
        # Webhooks are told, with the same error_id.
        notes = s.scalars(
            select(Notification).where(
                Notification.project_id == pid, Notification.type == "ingest.failed"
            )
        ).all()
        assert [(n.payload["error_id"], n.payload["code"]) for n in notes] == [(error_id, code)]
    assert [(c.received, c.rejected) for c in counters] == [(1, 1)]
    # The DLQ copy: original bytes and the error headers with the same error_id.
    assert dlq[0] is not None
    records = read_records(kafka_settings.kafka_bootstrap, dlq[0], 1)
    [record] = [rec for rec in records if rec.offset == dlq[2]]
    assert record.value == body
    headers = _headers(record)
    assert headers["inbound.error.id"] == error_id.encode()
    assert headers["inbound.error.stage"] == b"http"
    # The same format as the worker's dead letters: ISO-8601 UTC, milliseconds, Z.
    assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", headers["inbound.failed_at"])
    assert headers["inbound.error.code"] == code.encode()
    # The customer finds it in the error API.
    got = kafka_client.get(f"/3.0/projects/{pid}/errors/{error_id}", headers=auth(a["master_key"]))
    assert got.status_code == 200 and got.json()["code"] == code


def test_batch_body_must_be_an_object_of_lists(kafka_client: TestClient, projects: tuple) -> None:
    a, _ = projects
    url = f"/3.0/projects/{a['project_id']}/events"
    h = auth(a["write_key"])
    assert kafka_client.post(url, headers=h, content=b"nope").status_code == 400
    assert kafka_client.post(url, headers=h, json={"c": {"x": 1}}).status_code == 400


@pytest.mark.parametrize("encoded", ["x%0A", "%2E", "%2E%2E", "a%00b", "%00"])
def test_collection_names_kafka_refuses_are_answered_at_once(
    kafka_client: TestClient, projects: tuple, encoded: str
) -> None:
    """A trailing newline, `.` and `..`: refused by the one collection rule, never sent."""
    a, _ = projects
    r = kafka_client.post(
        f"/3.0/projects/{a['project_id']}/events/{encoded}",
        headers=auth(a["write_key"]),
        content=b"{}",
    )
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "invalid_collection_name"


def test_a_batch_naming_too_many_collections_is_refused_whole(
    kafka_client: TestClient, projects: tuple
) -> None:
    a, _ = projects
    url = f"/3.0/projects/{a['project_id']}/events"
    body = {f"many{i}": [{"i": i}] for i in range(21)}  # the README's limit is 20
    r = kafka_client.post(url, headers=auth(a["write_key"]), json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "TooManyCollectionsError"
    assert "at most 20" in r.json()["message"]
    ok = kafka_client.post(url, headers=auth(a["write_key"]), json=dict(list(body.items())[:20]))
    assert ok.status_code == 200, ok.text
