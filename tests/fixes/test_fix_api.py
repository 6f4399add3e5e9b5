"""POST /errors/fix (preview and apply), GET /fixes: on both databases, with rejections
stored by the worker's own BatchWriter (tests/api/problem_support.py)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.api.app import create_app
from app.api.replay import fetch_dlq_record
from app.ingest.steps.keen import keen_id_for
from app.kafka.client_options import plaintext
from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.models import ApiKey, AuditEntry, Fix
from app.store.projects import create_project
from tests.api.conftest import ADMIN_TOKEN, admin, auth
from tests.api.problem_support import Rejector, bad_json, dollar_name

PRICED = b'{"items": [{"$price": 1}]}'
RENAME = [{"op": "rename", "path": "/items/0/$price", "to": "price"}]
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(db_url: str, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(db_url, admin_token=ADMIN_TOKEN)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c
    engine_for(settings.effective_database_url).dispose()


@pytest.fixture
def projects(settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    with session_scope(engine_for(settings.effective_database_url)) as session:
        return create_project(session, "fix A"), create_project(session, "fix B")


def outcome(status: str, **shown: object) -> dict:
    """A sample's outcome: the fields of the other outcomes are null."""
    fields = ("keen_id", "code", "message", "index", "reason")
    return {"status": status, **dict.fromkeys(fields), **shown}


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def fix(client: TestClient, project: dict[str, str], body: dict) -> dict:
    r = client.post(
        f"/3.0/projects/{project['project_id']}/errors/fix",
        json=body,
        headers=auth(project["master_key"]),
    )
    assert r.status_code == 200, r.text
    return r.json()


def source_offset(client: TestClient, project: dict[str, str], error_id: str) -> int:
    r = client.get(
        f"/3.0/projects/{project['project_id']}/errors/{error_id}",
        headers=auth(project["master_key"]),
    )
    return r.json()["source"]["offset"]


def problem_of(client: TestClient, project: dict[str, str], error_id: str) -> str:
    r = client.get(
        f"/3.0/projects/{project['project_id']}/errors/{error_id}",
        headers=auth(project["master_key"]),
    )
    return r.json()["problem_id"]


def test_preview_counts_and_samples_are_exact(client, settings, projects) -> None:
    a, _ = projects
    pid = a["project_id"]
    rejector = Rejector(settings.effective_database_url, pid)
    fine = rejector.reject(dollar_name(), times=1, at=at(1), value=PRICED)
    fine += rejector.reject(dollar_name(), times=1, at=at(2), value=PRICED)
    # The rename works, but another bad name stays: still rejected, by the real pipeline.
    still = rejector.reject(dollar_name(), at=at(3), value=b'{"items": [{"$price": 2}], "$tax": 1}')
    # The path is not there: the operation fails on this payload.
    missing = rejector.reject(dollar_name(), at=at(4), value=b'{"items": []}')
    # Another problem of the project: not in the filter.
    rejector.reject(bad_json(), at=at(5), value=b"{bad")
    problem = problem_of(client, a, fine[0])

    got = fix(client, a, {"filter": {"problem_id": problem}, "operations": RENAME})

    topic = f"in.{pid}.purchases"
    keen_ids = [keen_id_for(topic, 0, source_offset(client, a, e)) for e in fine]
    assert got == {
        "dry_run": True,
        "fix_id": None,
        "matched": 4,
        "examined": 4,
        "would_accept": 2,
        "would_reject": 1,
        "would_reject_by_code": {"invalid_property_name": 1},
        "failed_to_apply": 1,
        "failures": [
            {
                "index": 0,
                "reason": "path /items/0 does not exist: the array has 0 elements",
                "count": 1,
            }
        ],
        "samples": [
            {
                "error_id": fine[0],
                "before": '{"items": [{"$price": 1}]}',
                "after": '{"items":[{"price":1}]}',
                "outcome": outcome("accepted", keen_id=keen_ids[0]),
            },
            {
                "error_id": fine[1],
                "before": '{"items": [{"$price": 1}]}',
                "after": '{"items":[{"price":1}]}',
                "outcome": outcome("accepted", keen_id=keen_ids[1]),
            },
            {
                "error_id": still[0],
                "before": '{"items": [{"$price": 2}], "$tax": 1}',
                "after": '{"items":[{"price":2}],"$tax":1}',
                "outcome": outcome(
                    "rejected",
                    code="invalid_property_name",
                    message=got["samples"][2]["outcome"]["message"],
                ),
            },
            {
                "error_id": missing[0],
                "before": '{"items": []}',
                "after": None,
                "outcome": outcome(
                    "failed",
                    index=0,
                    reason="path /items/0 does not exist: the array has 0 elements",
                ),
            },
        ],
        "replayed": 0,
        "refused": [],
        "remaining": 2,
    }
    assert "$tax" in got["samples"][2]["outcome"]["message"]
    with session_scope(engine_for(settings.effective_database_url)) as s:
        assert s.scalars(select(Fix)).all() == [], "a preview stores nothing"


def test_a_test_op_that_does_not_match_fails_to_apply(client, settings, projects) -> None:
    a, _ = projects
    rejector = Rejector(settings.effective_database_url, a["project_id"])
    [error_id] = rejector.reject(dollar_name(), at=at(1), value=PRICED)
    ops = [{"op": "test", "path": "/items/0/$price", "value": 2}, *RENAME]
    got = fix(client, a, {"error_id": error_id, "operations": ops})
    assert (got["matched"], got["would_accept"], got["failed_to_apply"]) == (1, 0, 1)
    assert got["failures"] == [
        {"index": 0, "reason": "test failed: /items/0/$price is 1, not 2", "count": 1}
    ]
    # The second operation failing is reported under its own index.
    ops = [*RENAME, {"op": "remove", "path": "/nope"}]
    got = fix(client, a, {"error_id": error_id, "operations": ops})
    assert got["failures"] == [{"index": 1, "reason": "path /nope does not exist", "count": 1}]


def test_the_writing_key_is_checked_and_the_cap_is_known(client, settings, projects) -> None:
    a, _ = projects
    url = settings.effective_database_url
    with session_scope(engine_for(url)) as s:
        write_key = s.scalar(
            select(ApiKey).where(ApiKey.project_id == a["project_id"], ApiKey.kind == "write")
        )
        write_key.is_active = False  # revoked since the event came in
        key_id = write_key.id
    rejector = Rejector(url, a["project_id"])
    [revoked] = rejector.reject(dollar_name(), at=at(1), value=PRICED, key_id=key_id)
    got = fix(client, a, {"error_id": revoked, "operations": RENAME})
    assert got["would_reject_by_code"] == {"key_not_permitted": 1}

    [capped] = rejector.reject(dollar_name(), at=at(2), value=PRICED)
    with session_scope(engine_for(url)) as s:
        from app.store.models import IngestError

        s.get(IngestError, capped).replay_count = settings.replay_cap
    got = fix(client, a, {"error_id": capped, "operations": RENAME})
    assert got["failures"] == [{"index": -1, "reason": "replay_cap_reached", "count": 1}]


def test_bad_operations_are_400_with_their_index(client, settings, projects) -> None:
    a, _ = projects
    [error_id] = Rejector(settings.effective_database_url, a["project_id"]).reject(
        dollar_name(), value=PRICED
    )
    url = f"/3.0/projects/{a['project_id']}/errors/fix"
    cases = [
        ([*RENAME, {"op": "nope"}], 1),
        ([{"op": "rename", "path": "/a"}], 0),
        ([], -1),
        ({"op": "rename"}, -1),
    ]
    for operations, index in cases:
        r = client.post(
            url,
            json={"error_id": error_id, "operations": operations},
            headers=auth(a["master_key"]),
        )
        assert r.status_code == 400, r.text
        body = r.json()
        assert (body["error_code"], body["index"]) == ("InvalidFixError", index), body
        assert body["reason"]
    r = client.post(
        url,
        json={"error_id": error_id, "operations": [{"op": "rename", "path": "/a"}]},
        headers=auth(a["master_key"]),
    )
    assert r.json()["reason"] == "'rename' needs the member 'to': it takes op, path, to"
    # The target, as for replay: exactly one of error_id and filter.
    for target in ({}, {"error_id": error_id, "filter": {}}):
        r = client.post(url, json={**target, "operations": RENAME}, headers=auth(a["master_key"]))
        assert (r.status_code, r.json()["error_code"]) == (400, "InvalidParameterError")


def test_replace_payload_only_for_one_error(client, settings, projects) -> None:
    a, _ = projects
    rejector = Rejector(settings.effective_database_url, a["project_id"])
    [broken] = rejector.reject(bad_json(), value=b"{bad")
    replace = [{"op": "replace_payload", "text": '{"fixed": true}'}]
    r = client.post(
        f"/3.0/projects/{a['project_id']}/errors/fix",
        json={"filter": {"code": "invalid_json"}, "operations": replace},
        headers=auth(a["master_key"]),
    )
    assert r.status_code == 400
    assert (r.json()["error_code"], r.json()["index"]) == ("InvalidFixError", 0)

    got = fix(client, a, {"error_id": broken, "operations": replace})
    assert got["would_accept"] == 1
    assert got["samples"][0]["before"] == "{bad"
    assert got["samples"][0]["after"] == '{"fixed": true}'
    # JSON Patch on a payload that is no JSON: a failure that says what to use.
    got = fix(client, a, {"error_id": broken, "operations": RENAME})
    assert got["failures"] == [
        {"index": 0, "reason": "the payload is not JSON: use replace_payload", "count": 1}
    ]


def test_another_projects_error_is_404(client, settings, projects) -> None:
    a, b = projects
    [error_id] = Rejector(settings.effective_database_url, a["project_id"]).reject(
        dollar_name(), value=PRICED
    )
    for body in (
        {"error_id": error_id, "operations": RENAME},
        {"error_id": error_id, "operations": RENAME, "dry_run": False},
    ):
        r = client.post(
            f"/3.0/projects/{b['project_id']}/errors/fix", json=body, headers=auth(b["master_key"])
        )
        assert r.status_code == 404, r.text
    # B's filter does not see A's errors either.
    got = fix(client, b, {"filter": {"code": "invalid_property_name"}, "operations": RENAME})
    assert (got["matched"], got["samples"]) == (0, [])
    # A's key on B's path: refused before anything is read.
    r = client.post(
        f"/3.0/projects/{b['project_id']}/errors/fix",
        json={"error_id": error_id, "operations": RENAME},
        headers=auth(a["master_key"]),
    )
    assert r.status_code in (401, 403)
    r = client.get(
        f"/3.0/projects/{b['project_id']}/fixes/{'0' * 32}", headers=auth(b["master_key"])
    )
    assert r.status_code == 404


@pytest.mark.kafka
def test_apply_records_the_fix_and_replays_the_patched_value(
    db_url: str, make_settings: Callable[..., Settings], kafka_bootstrap: str, projects
) -> None:
    a, b = projects
    pid = a["project_id"]
    settings = make_settings(db_url, kafka_bootstrap=kafka_bootstrap, admin_token=ADMIN_TOKEN)
    rejector = Rejector(db_url, pid)
    good = rejector.reject(dollar_name(), times=1, at=at(1), value=PRICED)
    good += rejector.reject(dollar_name(), times=1, at=at(2), value=PRICED)
    [bad] = rejector.reject(dollar_name(), at=at(3), value=b'{"items": []}')
    with TestClient(create_app(settings)) as client:
        problem = problem_of(client, a, good[0])
        target = {"filter": {"problem_id": problem}, "operations": RENAME, "dry_run": False}
        got = fix(client, a, target)
        fix_id = got["fix_id"]
        assert len(fix_id) == 32
        assert (got["dry_run"], got["would_accept"], got["failed_to_apply"]) == (False, 2, 1)
        assert (got["replayed"], got["refused"], got["remaining"]) == (2, [], 0)

        hm = auth(a["master_key"])
        for error_id in good:
            row = client.get(f"/3.0/projects/{pid}/errors/{error_id}", headers=hm).json()
            assert row["status"] == "replayed" and row["replay_count"] == 1
            outcome = row["replay_outcome"]
            assert outcome["fix_id"] == fix_id
            assert outcome["status"] == "pending"  # no worker runs in this test
            assert base64.b64decode(row["payload"]["base64"]) == PRICED, "original kept"
            # What travelled: the patched value, the fix's id, the original's coordinates.
            value, _key, headers = asyncio.run(
                fetch_dlq_record(
                    plaintext(kafka_bootstrap),
                    outcome["topic"],
                    outcome["partition"],
                    outcome["offset"],
                )
            )
            assert value == b'{"items":[{"price":1}]}'
            named = dict(headers)
            assert named["inbound.fix.id"] == fix_id.encode()
            offset = row["source"]["offset"]
            assert named["inbound.replay.source"] == f"in.{pid}.purchases/0/{offset}".encode()
            assert named["inbound.replay.error_id"] == error_id.encode()
        left = client.get(f"/3.0/projects/{pid}/errors/{bad}", headers=hm).json()
        assert (left["status"], left["replay_outcome"]) == ("open", None)

        listed = client.get(f"/3.0/projects/{pid}/fixes", headers=hm).json()
        [view] = listed["fixes"]
        assert listed["next_cursor"] is None
        assert view == {
            "fix_id": fix_id,
            "project_id": pid,
            "operations": RENAME,
            "target": {"filter": {"problem_id": problem, "status": "open"}},
            "problem_id": problem,
            "actor": view["actor"],
            "created_at": view["created_at"],
            "counts": {
                "matched": 3,
                "examined": 3,
                "accepted": 2,
                "rejected": 0,
                "failed": 1,
                "replayed": 2,
                "refused": 0,
                "remaining": 0,
            },
            "status": "applied",
            "saved": False,
            "saved_fix_id": None,
            "unsaved_at": None,
            "unsaved_by": None,
        }
        assert view["actor"].startswith("key:")
        assert client.get(f"/3.0/projects/{pid}/fixes/{fix_id}", headers=hm).json() == view
        # B sees none of it; staff see it under /admin.
        hb = auth(b["master_key"])
        assert client.get(f"/3.0/projects/{b['project_id']}/fixes", headers=hb).json() == {
            "fixes": [],
            "next_cursor": None,
        }
        assert (
            client.get(f"/3.0/projects/{b['project_id']}/fixes/{fix_id}", headers=hb).status_code
            == 404
        )
        assert client.get(f"/admin/fixes/{fix_id}", headers=admin()).json() == view
        assert client.get("/admin/fixes", headers=admin(), params={"project_id": pid}).json()[
            "fixes"
        ] == [view]

        # Staff apply the same fix to the rest: nothing open is left but the failing one.
        r = client.post(f"/admin/projects/{pid}/errors/fix", json=target, headers=admin())
        assert r.status_code == 200, r.text
        second = r.json()
        assert (second["matched"], second["replayed"], second["failed_to_apply"]) == (1, 0, 1)
        page = client.get(f"/3.0/projects/{pid}/fixes", headers=hm, params={"limit": 1}).json()
        assert [f["fix_id"] for f in page["fixes"]] == [second["fix_id"]], "newest first"
        older = client.get(
            f"/3.0/projects/{pid}/fixes",
            headers=hm,
            params={"limit": 1, "cursor": page["next_cursor"]},
        ).json()
        assert [f["fix_id"] for f in older["fixes"]] == [fix_id]
        assert older["next_cursor"] is None

    with session_scope(engine_for(db_url)) as s:
        audit = s.execute(
            select(AuditEntry.action, AuditEntry.target, AuditEntry.actor).where(
                AuditEntry.action == "fix.applied"
            )
        ).all()
    assert sorted(audit) == sorted(
        [("fix.applied", fix_id, view["actor"]), ("fix.applied", second["fix_id"], "admin")]
    )
    engine_for(db_url).dispose()
