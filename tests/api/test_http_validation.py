"""Issue #17 point 1: the HTTP API runs the worker's own pure steps before answering, so an
invalid event is refused at once (Keen's error name, our code and error_id) and recorded once,
exactly as a worker rejection is; valid events still go through Kafka."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.contract.errors import Rejection
from app.contract.headers import KEY_ID
from app.ingest.addons import AddonRegistry
from app.ingest.pipeline import Accepted, KeyInfo, ProjectInfo, RawRecord, process, validate
from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.keys import hash_key
from app.store.models import ApiKey, IngestError, Notification, Problem
from tests.api.conftest import auth, read_all, read_records

_DEEP = b'{"a":' * 33 + b"1" + b"}" * 33  # 33 levels of objects: one over the limit
_ADDON_UNKNOWN = {"keen": {"addons": [{"name": "keen:nope", "input": {}, "output": "x"}]}}
_ADDON_NO_INPUT = {
    "keen": {"addons": [{"name": "keen:url_parser", "input": {}, "output": "parsed"}]}
}

# (collection, body, our code, Keen's error name)
INVALID = [
    ("purchases", b'{"$bad": 1}', "invalid_property_name", "InvalidPropertyNameError"),
    ("purchases", b'{"a": {"b.c": 1}}', "invalid_property_name", "InvalidPropertyNameError"),
    ("purchases", _DEEP, "too_deeply_nested", "InvalidEventError"),
    ("purchases", b'{"keen": {"id": "mine"}}', "reserved_property", "InvalidPropertyNameError"),
    ("purchases", b'{"keen": "x"}', "reserved_property", "InvalidPropertyNameError"),
    (
        "purchases",
        b'{"keen": {"timestamp": "yesterday"}}',
        "invalid_timestamp",
        "InvalidPropertyValueError",
    ),
    ("purchases", orjson.dumps(_ADDON_UNKNOWN), "addon_error", "InvalidPropertyValueError"),
    ("purchases", orjson.dumps(_ADDON_NO_INPUT), "addon_error", "InvalidPropertyValueError"),
    ("purchases", b'{"keen": {"addons": "x"}}', "addon_error", "InvalidPropertyValueError"),
    ("purchases", b"", "empty_value", "InvalidEventError"),
    ("purchases", b"{not json", "invalid_json", "InvalidEventError"),
    ("purchases", b"\xff\xfe", "invalid_utf8", "InvalidEventError"),
    ("purchases", b"[1, 2]", "not_an_object", "InvalidEventError"),
    ("bad name", b"{}", "invalid_collection_name", "InvalidCollectionNameError"),
    ("x" * 65, b"{}", "collection_name_too_long", "InvalidCollectionNameError"),
]
_IDS = [f"{code}-{i}" for i, (_, _, code, _) in enumerate(INVALID)]

VALID = [
    b'{"item": "golden widget", "price": 25.5}',
    b'{"keen": {"timestamp": "2026-11-24T19:07:46.123Z"}, "n": 1}',
    b'{"keen": {"timestamp": null, "addons": null}}',
    orjson.dumps(
        {
            "page": "https://example.com/a?b=1",
            "keen": {
                "addons": [
                    {"name": "keen:url_parser", "input": {"url": "page"}, "output": "parsed"}
                ]
            },
        }
    ),
    b'{"a":' * 32 + b"1" + b"}" * 32,  # 32 levels of objects, the event the first: the limit
]


class _Lookup:
    """The worker's look-ups for one project and its key, as the database would answer."""

    def __init__(self, project_id: str, key_id: str) -> None:
        self._project = ProjectInfo(project_id, True)
        self._key = KeyInfo(key_id, project_id, True, {})

    def project(self, project_id: str) -> ProjectInfo | None:
        return self._project if project_id == self._project.id else None

    def key(self, key_id: str) -> KeyInfo | None:
        return self._key if key_id == self._key.id else None


_REGISTRY = AddonRegistry()


def _worker_verdict(project_id: str, key_id: str, collection: str, value: bytes) -> str | None:
    """The code the worker's whole pipeline gives these bytes as the HTTP API produces them."""
    record = RawRecord(
        topic=f"in.{project_id}.{collection}",
        partition=0,
        offset=7,
        timestamp_ms=None,
        key=None,
        value=value,
        headers=((KEY_ID, key_id.encode()),),
    )
    got = process(record, _Lookup(project_id, key_id), datetime.now(UTC), _REGISTRY)
    return got.code if isinstance(got, Rejection) else None


def _key_id(settings: Settings, secret: str) -> str:
    with session_scope(engine_for(settings.effective_database_url)) as s:
        return s.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(secret)))


def _recorded(settings: Settings, project_id: str) -> tuple[list, list, list]:
    """(error rows, problems, ingest.failed notifications) of a project."""
    with session_scope(engine_for(settings.effective_database_url)) as s:
        rows = [
            (e.id, e.code, e.stage, e.collection, e.payload_size, e.dlq_topic, e.dlq_offset)
            for e in s.scalars(select(IngestError).where(IngestError.project_id == project_id))
        ]
        problems = [
            (p.code, p.count, p.last_error_id)
            for p in s.scalars(select(Problem).where(Problem.project_id == project_id))
        ]
        notes = [
            (n.payload["error_id"], n.payload["code"])
            for n in s.scalars(
                select(Notification).where(
                    Notification.project_id == project_id, Notification.type == "ingest.failed"
                )
            )
        ]
    return rows, problems, notes


@pytest.mark.parametrize(("collection", "body", "code", "name"), INVALID, ids=_IDS)
def test_the_validate_step_gives_the_workers_code(
    collection: str, body: bytes, code: str, name: str
) -> None:
    """Pure: the validate-only entry point and the worker's full pipeline agree on each."""
    project_id, key_id = "0123456789abcdef01234567", "k1"
    record = RawRecord(f"in.{project_id}.{collection}", 0, 0, None, None, body, ())
    found = validate(record, datetime.now(UTC), _REGISTRY)
    assert found is not None and found.code == code
    assert _worker_verdict(project_id, key_id, collection, body) == code


@pytest.mark.parametrize("body", VALID)
def test_the_validate_step_passes_what_the_worker_stores(body: bytes) -> None:
    project_id, key_id = "0123456789abcdef01234567", "k1"
    record = RawRecord(f"in.{project_id}.purchases", 0, 0, None, None, body, ())
    assert validate(record, datetime.now(UTC), _REGISTRY) is None
    assert _worker_verdict(project_id, key_id, "purchases", body) is None


def test_running_an_addon_stays_the_workers() -> None:
    """The output path runs through a string: only running the add-on finds that, and
    autofill could change it, so the HTTP path lets it through and the worker refuses it."""
    project_id = "0123456789abcdef01234567"
    body = orjson.dumps(
        {
            "page": "https://example.com/",
            "out": "text",
            "keen": {
                "addons": [
                    {"name": "keen:url_parser", "input": {"url": "page"}, "output": "out.parsed"}
                ]
            },
        }
    )
    record = RawRecord(f"in.{project_id}.purchases", 0, 0, None, None, body, ())
    assert validate(record, datetime.now(UTC), _REGISTRY) is None
    assert _worker_verdict(project_id, "k1", "purchases", body) == "addon_error"


@pytest.mark.kafka
@pytest.mark.parametrize(("collection", "body", "code", "name"), INVALID, ids=_IDS)
def test_an_invalid_event_is_refused_at_once_and_recorded_once(
    kafka_client: TestClient,
    kafka_settings: Settings,
    projects: tuple,
    collection: str,
    body: bytes,
    code: str,
    name: str,
) -> None:
    a, _ = projects
    pid = a["project_id"]
    r = kafka_client.post(
        f"/3.0/projects/{pid}/events/{collection}",
        headers={**auth(a["write_key"]), "Content-Type": "application/json"},
        content=body,
    )
    assert r.status_code == 400, r.text
    answer = r.json()
    assert (answer["error_code"], answer["name"]) == (code, name)
    assert answer["message"]
    error_id = answer["error_id"]
    # The worker, given the same bytes on the topic the API would have produced to, agrees.
    key_id = _key_id(kafka_settings, a["write_key"])
    assert _worker_verdict(pid, key_id, collection, body) == code

    rows, problems, notes = _recorded(kafka_settings, pid)
    [(row_id, row_code, stage, row_collection, size, dlq_topic, dlq_offset)] = rows
    assert (row_id, row_code, stage, row_collection, size) == (
        error_id,
        code,
        "http",
        collection,
        len(body),
    )
    assert problems == [(code, 1, error_id)]
    assert notes == [(error_id, code)]
    # One dead letter under the same error_id, holding the bytes sent.
    assert dlq_topic is not None
    letters = read_all(kafka_settings.kafka_bootstrap, dlq_topic)
    assert [(rec.offset, rec.value) for rec in letters] == [(dlq_offset, body)]
    assert dict(letters[0].headers)["inbound.error.id"] == error_id.encode()
    # Nothing went to the inbound topic the worker reads.
    assert read_all(kafka_settings.kafka_bootstrap, f"in.{pid}.{collection}") == []


@pytest.mark.kafka
@pytest.mark.parametrize("body", VALID)
def test_a_valid_event_still_goes_through_kafka_unchanged(
    kafka_client: TestClient, kafka_settings: Settings, projects: tuple, body: bytes
) -> None:
    a, _ = projects
    pid = a["project_id"]
    r = kafka_client.post(
        f"/3.0/projects/{pid}/events/purchases", headers=auth(a["write_key"]), content=body
    )
    assert (r.status_code, r.json()) == (201, {"created": True})
    [record] = read_records(kafka_settings.kafka_bootstrap, f"in.{pid}.purchases", 1)
    assert record.value == body
    assert _recorded(kafka_settings, pid) == ([], [], [])


@pytest.mark.kafka
def test_a_batch_answers_each_invalid_event_with_keens_error(
    kafka_client: TestClient, kafka_settings: Settings, projects: tuple
) -> None:
    a, _ = projects
    pid = a["project_id"]
    batch = {
        "purchases": [
            {"item": "ok-1"},
            {"$bad": 1},
            {"keen": {"timestamp": "not a time"}},
            {"item": "ok-2", "keen": {"timestamp": "2026-11-24T19:07:46.123Z"}},
            {"keen": {"addons": [{"name": "keen:nope", "input": {}, "output": "x"}]}},
        ],
        "bad name": [{"x": 1}],
    }
    r = kafka_client.post(f"/3.0/projects/{pid}/events", headers=auth(a["write_key"]), json=batch)
    assert r.status_code == 200, r.text
    result = r.json()
    assert [item["success"] for item in result["purchases"]] == [True, False, False, True, False]
    errors = [item["error"] for item in result["purchases"] if not item["success"]]
    errors += [result["bad name"][0]["error"]]
    assert [(e["name"], e["error_code"]) for e in errors] == [
        ("InvalidPropertyNameError", "invalid_property_name"),
        ("InvalidPropertyValueError", "invalid_timestamp"),
        ("InvalidPropertyValueError", "addon_error"),
        ("InvalidCollectionNameError", "invalid_collection_name"),
    ]
    assert all(e["description"] for e in errors)
    # A stored event's answer is Keen's, exactly: no "error": null beside it.
    assert [result["purchases"][i] for i in (0, 3)] == [{"success": True}, {"success": True}]

    # Each refusal recorded once under the error_id it was answered with.
    rows, problems, notes = _recorded(kafka_settings, pid)
    by_id = {row[0]: row for row in rows}
    assert sorted(by_id) == sorted(e["error_id"] for e in errors)
    assert {(by_id[e["error_id"]][1], by_id[e["error_id"]][2]) for e in errors} == {
        ("invalid_property_name", "http"),
        ("invalid_timestamp", "http"),
        ("addon_error", "http"),
        ("invalid_collection_name", "http"),
    }
    assert sorted(notes) == sorted((e["error_id"], e["error_code"]) for e in errors)
    assert sorted((code, count) for code, count, _ in problems) == [
        ("addon_error", 1),
        ("invalid_collection_name", 1),
        ("invalid_property_name", 1),
        ("invalid_timestamp", 1),
    ]
    # The worker gives each refused event's bytes the same code.
    key_id = _key_id(kafka_settings, a["write_key"])
    refused = [batch["purchases"][i] for i in (1, 2, 4)]
    for event, error in zip(refused, errors, strict=False):
        assert _worker_verdict(pid, key_id, "purchases", orjson.dumps(event)) == error["error_code"]
    # Only the valid events reached the inbound topic.
    stored = read_all(kafka_settings.kafka_bootstrap, f"in.{pid}.purchases")
    assert sorted(orjson.loads(rec.value)["item"] for rec in stored) == ["ok-1", "ok-2"]


def test_without_kafka_the_refusal_is_still_answered_and_recorded(
    client: TestClient, api_settings: Settings, projects: tuple
) -> None:
    """No backend configured: no DLQ copy, but the answer, the row and the problem stand."""
    a, _ = projects
    pid = a["project_id"]
    r = client.post(
        f"/3.0/projects/{pid}/events/purchases", headers=auth(a["write_key"]), content=b'{"$x": 1}'
    )
    assert r.status_code == 400, r.text
    answer = r.json()
    assert (answer["error_code"], answer["name"]) == (
        "invalid_property_name",
        "InvalidPropertyNameError",
    )
    rows, problems, notes = _recorded(api_settings, pid)
    assert [(row[0], row[1], row[2], row[5]) for row in rows] == [
        (answer["error_id"], "invalid_property_name", "http", None)
    ]
    assert problems == [("invalid_property_name", 1, answer["error_id"])]
    assert notes == [(answer["error_id"], "invalid_property_name")]


def test_accepted_is_a_record_the_worker_stores() -> None:
    """Guard for the comparison helper itself: a valid event is stored, not refused."""
    project_id = "0123456789abcdef01234567"
    record = RawRecord(
        f"in.{project_id}.purchases", 0, 0, None, None, b'{"a": 1}', ((KEY_ID, b"k1"),)
    )
    got = process(record, _Lookup(project_id, "k1"), datetime.now(UTC), _REGISTRY)
    assert isinstance(got, Accepted) and got.body["a"] == 1
