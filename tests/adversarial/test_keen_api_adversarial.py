"""Hostile input against the Keen endpoints of issue #17: funnel, multi_analysis, collection
inspection, deleting events and the HTTP events' up-front checks, on SQLite and PostgreSQL.

Each test pins a defect found by probing (now fixed) or an invariant worth keeping: a hostile
query is a 400 (never a 500), a forced filter never widens, another project's events are never
counted, inspected or deleted, and a refused delete deletes and audits nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.api.app import create_app
from app.api.http_rejections import check_event
from app.contract.errors import Rejection
from app.ingest.addons import AddonRegistry
from app.ingest.persist import BatchOutcome, BatchWriter
from app.ingest.pipeline import process
from app.ingest.records import Accepted, ProjectInfo, RawRecord
from app.settings import Settings
from app.store.collection_schema import read_schemas
from app.store.db import engine_for, session_scope
from app.store.keys import KeyInfo, create_key
from app.store.models import AuditEntry, CollectionProperty, Event
from app.store.projects import create_project
from tests.api.conftest import insert_events

ADMIN_TOKEN = "adversarial-admin-token-0123456789"
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
WEEK = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-08T00:00:00Z"}
SIGNUPS = [(T0, {"user": {"id": "u1"}}), (T0, {"user": {"id": "u2"}})]


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        cache_dir=tmp_path / "cache",
        database_url=db_url,
        admin_token=ADMIN_TOKEN,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c
    engine_for(settings.effective_database_url).dispose()


@pytest.fixture
def projects(db_url: str) -> tuple[dict[str, str], dict[str, str]]:
    """Projects A and B with the same two signups (u1, u2); A also has an access key that
    forces the filter user.id = u1."""
    with session_scope(engine_for(db_url)) as session:
        a = create_project(session, "A")
        b = create_project(session, "B")
        forced = create_key(
            session,
            a["project_id"],
            "access",
            permitted=["queries"],
            options={
                "queries": {
                    "filters": [
                        {"property_name": "user.id", "operator": "eq", "property_value": "u1"}
                    ]
                }
            },
        )
        a["forced_key"] = forced.secret
    for p in (a, b):
        insert_events(db_url, p["project_id"], "signups", SIGNUPS)
    return a, b


def _refused(r: Any, words: str) -> dict:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error_code"] == "InvalidQueryError", body
    assert words in body["message"], body
    return body


def _funnel(client: TestClient, p: dict, steps: list[dict], key: str = "read_key") -> Any:
    return client.post(
        f"/3.0/projects/{p['project_id']}/queries/funnel",
        json={"steps": steps, "timeframe": WEEK},
        headers={"Authorization": p[key]},
    )


def _step(**more: Any) -> dict:
    return {"event_collection": "signups", "actor_property": "user.id", **more}


# ---------------------------------------------------------------------------------------------
# Property paths with a NUL: SQLite's JSON path parser and PostgreSQL's text both refused them
# in the database, a 500 on every query route and on DELETE.


def test_a_nul_in_a_funnel_actor_property_is_a_400(client: TestClient, projects: tuple) -> None:
    a, _ = projects
    body = _refused(_funnel(client, a, [_step(actor_property="user.i\x00d")]), "dotted path")
    assert body["reason"] == "invalid_actor_property"


def test_a_nul_in_a_multi_analysis_target_is_a_400(client: TestClient, projects: tuple) -> None:
    a, _ = projects
    r = client.post(
        f"/3.0/projects/{a['project_id']}/queries/multi_analysis",
        json={
            "event_collection": "signups",
            "timeframe": WEEK,
            "analyses": {"n": {"analysis_type": "sum", "target_property": "pri\x00ce"}},
        },
        headers={"Authorization": a["read_key"]},
    )
    _refused(r, "dotted path")


def test_a_nul_in_a_filter_property_is_a_400_and_deletes_nothing(
    client: TestClient, projects: tuple, db_url: str
) -> None:
    a, _ = projects
    bad = [{"property_name": "user.i\x00d", "operator": "exists", "property_value": True}]
    r = client.post(
        f"/3.0/projects/{a['project_id']}/queries/funnel",
        json={"steps": [_step(filters=bad)], "timeframe": WEEK},
        headers={"Authorization": a["read_key"]},
    )
    assert _refused(r, "dotted path")["reason"] == "invalid_step"
    r = client.delete(
        f"/3.0/projects/{a['project_id']}/events/signups",
        params={"filters": orjson.dumps(bad).decode()},
        headers={"Authorization": a["master_key"]},
    )
    _refused(r, "dotted path")
    assert _event_count(db_url, a["project_id"]) == 2
    assert _audited(db_url) == 0


@pytest.mark.parametrize("route", ["funnel", "multi_analysis", "count"])
def test_a_nul_in_the_event_collection_is_a_400(
    client: TestClient, projects: tuple, route: str
) -> None:
    a, _ = projects
    body: dict[str, Any] = {"event_collection": "sign\x00ups", "timeframe": WEEK}
    if route == "funnel":
        body = {"steps": [_step(event_collection="sign\x00ups")], "timeframe": WEEK}
    elif route == "multi_analysis":
        body["analyses"] = {"n": {"analysis_type": "count"}}
    r = client.post(
        f"/3.0/projects/{a['project_id']}/queries/{route}",
        json=body,
        headers={"Authorization": a["read_key"]},
    )
    _refused(r, "NUL")


# ---------------------------------------------------------------------------------------------
# Funnel: a GET step's timezone as a JSON number with a fraction was taken (the offset cut to
# whole seconds) and echoed as given, which the answer's model refused: a 500.


def test_a_fractional_timezone_in_a_get_funnel_step_is_a_400(
    client: TestClient, projects: tuple
) -> None:
    a, _ = projects
    steps = [_step(timezone=1.5)]
    r = client.get(
        f"/3.0/projects/{a['project_id']}/queries/funnel",
        params={"steps": orjson.dumps(steps).decode(), "timeframe": "this_1_days"},
        headers={"Authorization": a["read_key"]},
    )
    assert _refused(r, "timezone")["reason"] == "invalid_timeframe"


def test_a_whole_timezone_number_in_a_get_funnel_step_is_taken(
    client: TestClient, projects: tuple
) -> None:
    a, _ = projects
    steps = [_step(timezone=3600.0)]
    r = client.get(
        f"/3.0/projects/{a['project_id']}/queries/funnel",
        params={"steps": orjson.dumps(steps).decode(), "timeframe": orjson.dumps(WEEK).decode()},
        headers={"Authorization": a["read_key"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"] == [2]
    assert r.json()["steps"][0]["timezone"] == 3600


# ---------------------------------------------------------------------------------------------
# Funnel and multi_analysis: invariants under hostile bodies


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        ([_step()] * 10_000, "too_many_steps"),
        ([_step(actor_property='user."id')], "invalid_actor_property"),
        ([_step(actor_property="a." * 40 + "a")], "invalid_actor_property"),
        ([_step(actor_property="x" * 100_000)], "invalid_actor_property"),
        (
            [_step(timeframe={"start": "-0001-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"})],
            "invalid_timeframe",
        ),
        ([_step(timeframe="this_9999_years")], "invalid_timeframe"),
        ([_step(timezone="../../etc/passwd")], "invalid_timeframe"),
        ([_step(timezone="\x00")], "invalid_timeframe"),
    ],
    ids=["10k-steps", "quote", "deep", "huge", "year-0", "9999-years", "tz-path", "tz-nul"],
)
def test_hostile_funnel_steps_are_refused_with_their_reason(
    client: TestClient, projects: tuple, steps: list, reason: str
) -> None:
    a, _ = projects
    r = _funnel(client, a, steps)
    assert r.status_code == 400, r.text
    assert r.json()["reason"] == reason, r.json()


def test_sql_in_an_actor_property_is_only_a_name(client: TestClient, projects: tuple) -> None:
    a, _ = projects
    r = _funnel(client, a, [_step(actor_property="user.id'); DELETE FROM events;--")])
    assert r.status_code == 200, r.text
    assert r.json()["result"] == [0]
    assert _funnel(client, a, [_step()]).json()["result"] == [2]


def test_a_forced_filter_is_not_widened_by_a_funnel(client: TestClient, projects: tuple) -> None:
    a, _ = projects
    # The key sees u1 only; a step asking for everyone but u1 must find nobody.
    others = [{"property_name": "user.id", "operator": "ne", "property_value": "u1"}]
    r = _funnel(client, a, [_step(with_actors=True)], key="forced_key")
    assert r.json()["result"] == [1] and r.json()["actors"] == [["u1"]]
    r = _funnel(client, a, [_step(filters=others)], key="forced_key")
    assert r.json()["result"] == [0]


def test_another_projects_key_gets_403_not_its_own_data(
    client: TestClient, projects: tuple
) -> None:
    a, b = projects
    r = client.post(
        f"/3.0/projects/{a['project_id']}/queries/funnel",
        json={"steps": [_step()], "timeframe": WEEK},
        headers={"Authorization": b["read_key"]},
    )
    assert r.status_code == 403, r.text


def test_filters_of_every_operator_on_wrong_types_are_never_a_500(
    client: TestClient, projects: tuple
) -> None:
    a, _ = projects
    values: list[Any] = [None, {"a": 1}, [1, "x"], [], 1e308, -(2**63), "x", True, "(a+)+$"]
    values.append({"coordinates": ["a", 2], "max_distance_miles": 1})
    values += ["a\x00b", ["a\x00b"], {"a\x00": 1}]
    operators = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "not_contains")
    for op in (*operators, "within", "regex", "exists"):
        for value in values:
            f = [{"property_name": "user.id", "operator": op, "property_value": value}]
            r = _funnel(client, a, [_step(filters=f)])
            assert r.status_code in (200, 400), (op, value, r.text)
            r = client.post(
                f"/3.0/projects/{a['project_id']}/queries/multi_analysis",
                json={
                    "event_collection": "signups",
                    "timeframe": WEEK,
                    "filters": f,
                    "analyses": {"n": {"analysis_type": "count"}},
                },
                headers={"Authorization": a["read_key"]},
            )
            assert r.status_code in (200, 400), (op, value, r.text)


# ---------------------------------------------------------------------------------------------
# Collections: inspection and deletion with hostile names, keys and filters


@pytest.mark.parametrize(
    "name", ["a\x00b", "a" * 65, "a" * 5000, "ü", "signups'--", ".."], ids=repr
)
def test_hostile_collection_names_are_404_on_inspection(
    client: TestClient, projects: tuple, name: str
) -> None:
    a, _ = projects
    r = client.get(
        f"/3.0/projects/{a['project_id']}/events/{quote(name, safe='')}",
        headers={"Authorization": a["master_key"]},
    )
    assert r.status_code == 404, r.text
    assert r.json()["error_code"] == "ResourceNotFoundError"


@pytest.mark.parametrize("name", ["a\x00b", "a" * 65, "a-DLQ", "a b"], ids=repr)
def test_deleting_from_an_impossible_collection_is_a_400_and_not_audited(
    client: TestClient, projects: tuple, db_url: str, name: str
) -> None:
    # No event can be stored under such a name: refused, not audited as a delete of nothing.
    a, _ = projects
    r = client.delete(
        f"/3.0/projects/{a['project_id']}/events/{quote(name, safe='')}",
        headers={"Authorization": a["master_key"]},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "InvalidCollectionNameError", r.json()
    assert _audited(db_url) == 0


@pytest.mark.parametrize("key", ["read_key", "write_key", "forced_key", None])
def test_only_the_master_key_deletes(
    client: TestClient, projects: tuple, db_url: str, key: str | None
) -> None:
    a, _ = projects
    headers = {"Authorization": a[key]} if key else {}
    r = client.delete(f"/3.0/projects/{a['project_id']}/events/signups", headers=headers)
    assert r.status_code == (401 if key is None else 403), r.text
    assert _event_count(db_url, a["project_id"]) == 2


@pytest.mark.parametrize(
    "params",
    [
        {"filters": "[{"},
        {"filters": '{"property_name": "user.id"}'},
        {"filters": '[{"property_name": "user.id", "operator": "lt", "property_value": {}}]'},
        {
            "filters": '[{"property_name": "user.id", "operator": "regex", "property_value": "(?=x)"}]'
        },
        {
            "filters": '[{"property_name": "user.id", "operator": "ne", "property_value": "\\u0000"}]'
        },
        {"timeframe": "{bad"},
        {"timeframe": "this_9999_years"},
        {"timeframe": "this_1_days", "timezone": "Mars/Olympus"},
    ],
)
def test_a_malformed_delete_deletes_and_audits_nothing(
    client: TestClient, projects: tuple, db_url: str, params: dict
) -> None:
    a, b = projects
    r = client.delete(
        f"/3.0/projects/{a['project_id']}/events/signups",
        params=params,
        headers={"Authorization": a["master_key"]},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "InvalidQueryError"
    assert _event_count(db_url, a["project_id"]) == 2
    assert _audited(db_url) == 0


def test_a_delete_leaves_another_projects_events(
    client: TestClient, projects: tuple, db_url: str
) -> None:
    a, b = projects
    nobody = '[{"property_name": "user.id", "operator": "eq", "property_value": "nobody"}]'
    r = client.delete(
        f"/3.0/projects/{a['project_id']}/events/signups",
        params={"filters": nobody},
        headers={"Authorization": a["master_key"]},
    )
    assert r.json() == {"deleted": 0}
    r = client.delete(
        f"/3.0/projects/{a['project_id']}/events/signups",
        headers={"Authorization": a["master_key"]},
    )
    assert r.json() == {"deleted": 2}
    assert _event_count(db_url, a["project_id"]) == 0
    assert _event_count(db_url, b["project_id"]) == 2


# ---------------------------------------------------------------------------------------------
# The worker's schema walk (BatchWriter) with hostile events: bounded rows


def _accepted(project_id: str, body: dict) -> Accepted:
    keen_id = uuid.uuid4().hex
    body = {**body, "keen": {"id": keen_id, "timestamp": "2026-03-02T12:00:00.000Z"}}
    return Accepted(project_id, "wide", keen_id, T0, T0, body)


def test_hostile_events_give_a_bounded_schema(db_url: str, projects: tuple) -> None:
    a, _ = projects
    pid = a["project_id"]
    deep: dict = {"leaf": 1}
    for _ in range(31):  # 32 levels with the event: the worker's limit
        deep = {"n" * 200: deep}
    events = [
        {f"k{i}": i for i in range(100_000)},
        deep,
        {"ключ" * 60: "x", "😀": True, "e" * 256: None},
        {f"z{i}": {} for i in range(50_000)},  # empty objects: no leaves
    ]
    writer = BatchWriter(engine_for(db_url), payload_cap=1024)
    writer.write(BatchOutcome(accepted=[_accepted(pid, e) for e in events]))
    with session_scope(engine_for(db_url)) as session:
        rows = session.scalar(
            select(func.count())
            .select_from(CollectionProperty)
            .where(CollectionProperty.project_id == pid)
        )
        schema = read_schemas(session, pid, "wide")["wide"]
    # 1,000 pairs at most per collection; the 32-deep path is 31*201+4 = 6,235 chars: left out.
    assert rows == 1000
    assert not any(path.startswith("n" * 200) for path in schema)


@pytest.mark.parametrize(
    "payload",
    [b'{"note": "a\\u0000b"}', b'{"items": [{"sku": "x"}, {"sku": "\\u0000"}]}'],
)
def test_a_nul_in_a_string_value_is_refused_before_it_can_reach_the_database(
    payload: bytes,
) -> None:
    # PostgreSQL's jsonb refuses \u0000: an event holding one would make the batch write
    # raise and the worker retry that batch for ever, holding up every tenant in it. It is
    # refused up front, on HTTP and in the worker, with the same code.
    from datetime import UTC, datetime

    from app.api.fixes.preview import shared_addons
    from app.ingest.pipeline import RawRecord, validate

    pid = "a" * 24
    refused = check_event(pid, "wide", payload)
    assert refused is not None and refused.code == "invalid_property_value"
    record = RawRecord(f"in.{pid}.wide", 0, 0, None, None, payload, ())
    worker = validate(record, datetime.now(UTC), shared_addons(None))
    assert worker is not None and worker.code == "invalid_property_value"


# ---------------------------------------------------------------------------------------------
# HTTP events: the up-front check gives the worker's code on the same bytes (pure, no database)

_PID = "p" * 24
_HOSTILE = [
    b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
    b'{"a": "\\ud800"}',  # a lone surrogate escape
    b'{"a\x00": 1}',  # a raw NUL (a control character in a string)
    b'{"a\\u0000": 1}',  # an escaped NUL in a name
    b"\xff{}",
    b"[]",
    b"1",
    b"",
    b'{"a": 1e400}',
    b'{"a": NaN}',
    b'{"a": 1} {"b": 2}',
    b'{"$a": 1}',
    b'{"keen": {"timestamp": "99999-01-01T00:00:00Z"}}',
    b'{"keen": {"addons": [{"name": "keen:ip_to_geo"}]}}',
    b"[" * 2000 + b"]" * 2000,
    b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}",
    b'{"k": "' + b"a" * (921_600 - 8) + b'"}',  # 921,600 bytes: the limit, taken
    b'{"k": "' + b"a" * (921_600 - 7) + b'"}',  # 921,601 bytes: one over
]


class _Everyone:
    """A look-up in which the project exists and the key may write to it."""

    def project(self, project_id: str) -> ProjectInfo:
        return ProjectInfo(project_id, True)

    def key(self, key_id: str) -> KeyInfo:
        return KeyInfo(key_id, _PID, can_write=True, autofill={})


@pytest.mark.parametrize("payload", _HOSTILE, ids=range(len(_HOSTILE)))
@pytest.mark.parametrize("collection", ["c" * 64, "c" * 65, "c" * 256, "a-DLQ", "purchases"])
def test_http_refuses_what_the_worker_refuses_with_its_code(
    payload: bytes, collection: str
) -> None:
    now = datetime.now(UTC)
    record = RawRecord(
        f"in.{_PID}.{collection}", 0, 0, None, None, payload, (("inbound.key_id", b"k"),)
    )
    worker = process(record, _Everyone(), now, AddonRegistry())
    http = check_event(_PID, collection, payload)
    if isinstance(worker, Rejection):
        assert http is not None and http.code == worker.code, (http, worker.code)
        assert http.stage == "http"
    else:
        assert http is None, http


# ---------------------------------------------------------------------------------------------
# helpers


def _event_count(url: str, project_id: str) -> int:
    with session_scope(engine_for(url)) as session:
        return session.scalar(
            select(func.count()).select_from(Event).where(Event.project_id == project_id)
        )


def _audited(url: str) -> int:
    with session_scope(engine_for(url)) as session:
        return session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "events.delete")
        )
