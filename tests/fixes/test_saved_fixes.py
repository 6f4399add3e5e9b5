"""Saved fixes (issue #14 point 5): a fix kept on its problem and applied again, in one call,
to the errors of that problem that arrived later. On both databases, with rejections stored by
the worker's own BatchWriter (tests/api/problem_support.py)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.api.app import create_app
from app.api.replay import fetch_dlq_record
from app.kafka.client_options import plaintext
from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.models import AuditEntry, Fix
from app.store.projects import create_project
from tests.api.conftest import ADMIN_TOKEN, admin, auth, insert_error
from tests.api.problem_support import Rejector, dollar_name

PRICED = b'{"items": [{"$price": 1}]}'
EMPTY = b'{"items": []}'  # the rename's path is not there: the operation fails
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
        return create_project(session, "saved A"), create_project(session, "saved B")


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def call(
    client: TestClient, method: str, path: str, key: str, body: dict | None = None, **params
) -> dict:
    r = client.request(method, path, json=body, headers=auth(key), params=params or None)
    assert r.status_code == 200, r.text
    return r.json()


def problem_of(client: TestClient, project: dict[str, str], error_id: str) -> str:
    path = f"/3.0/projects/{project['project_id']}/errors/{error_id}"
    return call(client, "GET", path, project["master_key"])["problem_id"]


def audit(url: str) -> list[tuple[str, str, str]]:
    with session_scope(engine_for(url)) as s:
        rows = s.execute(
            select(AuditEntry.action, AuditEntry.target, AuditEntry.actor)
            .where(AuditEntry.action.like("fix.%"))
            .order_by(AuditEntry.id)
        ).all()
    return [tuple(r) for r in rows]


def counts(**given: int) -> dict[str, int]:
    names = ("matched", "examined", "accepted", "rejected", "failed")
    return {**dict.fromkeys(names, 0), "replayed": 0, "refused": 0, "remaining": 0, **given}


def test_a_saved_preview_is_kept_on_its_problem(client, settings, projects) -> None:
    a, _ = projects
    pid, key = a["project_id"], a["master_key"]
    rejector = Rejector(settings.effective_database_url, pid)
    first = rejector.reject(dollar_name(), times=2, at=at(1), value=PRICED)
    problem = problem_of(client, a, first[0])

    body = {"filter": {"problem_id": problem}, "operations": RENAME, "save": True}
    got = call(client, "POST", f"/3.0/projects/{pid}/errors/fix", key, body)
    fix_id = got["fix_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", fix_id), "a saved preview is recorded"
    assert (got["dry_run"], got["matched"], got["would_accept"]) == (True, 2, 2)
    assert (got["replayed"], got["remaining"]) == (0, 2)

    [view] = call(client, "GET", f"/3.0/projects/{pid}/problems/{problem}/fixes", key)["fixes"]
    assert view == {
        "fix_id": fix_id,
        "project_id": pid,
        "operations": RENAME,
        "target": {"filter": {"problem_id": problem, "status": "open"}},
        "problem_id": problem,
        "actor": view["actor"],
        "created_at": view["created_at"],
        "counts": counts(matched=2, examined=2, accepted=2, remaining=2),
        "status": "preview",
        "saved": True,
        "saved_fix_id": None,
        "unsaved_at": None,
        "unsaved_by": None,
    }
    assert view["actor"].startswith("key:")
    assert call(client, "GET", f"/3.0/projects/{pid}/fixes/{fix_id}", key) == view
    assert call(client, "GET", f"/3.0/projects/{pid}/fixes", key, saved="true")["fixes"] == [view]
    assert call(client, "GET", f"/3.0/projects/{pid}/fixes", key, saved="false")["fixes"] == []
    # Nothing was replayed: the errors are as they were.
    for error_id in first:
        row = call(client, "GET", f"/3.0/projects/{pid}/errors/{error_id}", key)
        assert (row["status"], row["replay_outcome"]) == ("open", None)

    # Saved from one error: the fix is kept on that error's problem.
    body = {"error_id": first[1], "operations": RENAME, "save": True}
    second = call(client, "POST", f"/3.0/projects/{pid}/errors/fix", key, body)["fix_id"]
    page = call(client, "GET", f"/3.0/projects/{pid}/problems/{problem}/fixes", key)
    assert [f["fix_id"] for f in page["fixes"]] == [second, fix_id], "newest first"
    assert page["fixes"][0]["target"] == {"error_id": first[1]}
    assert page["fixes"][0]["problem_id"] == problem
    assert audit(settings.effective_database_url) == [
        ("fix.saved", fix_id, view["actor"]),
        ("fix.saved", second, view["actor"]),
    ]
    # Staff see the same under /admin.
    r = client.get(f"/admin/problems/{problem}/fixes", headers=admin(), params={"limit": 1})
    assert [f["fix_id"] for f in r.json()["fixes"]] == [second]
    assert r.json()["next_cursor"] is not None


def test_a_saved_fix_is_saved_even_with_nothing_to_fix_yet(client, settings, projects) -> None:
    a, _ = projects
    pid, key = a["project_id"], a["master_key"]
    [error_id] = Rejector(settings.effective_database_url, pid).reject(dollar_name(), at=at(1))
    problem = problem_of(client, a, error_id)
    call(client, "PATCH", f"/3.0/projects/{pid}/problems/{problem}", key, {"status": "resolved"})
    body = {"filter": {"problem_id": problem}, "operations": RENAME, "save": True}
    got = call(client, "POST", f"/3.0/projects/{pid}/errors/fix", key, body)
    assert (got["matched"], got["fix_id"] is not None) == (0, True)
    [view] = call(client, "GET", f"/3.0/projects/{pid}/problems/{problem}/fixes", key)["fixes"]
    assert (view["saved"], view["counts"]) == (True, counts())


def test_unsave_keeps_the_record_and_apply_then_refuses(client, settings, projects) -> None:
    a, _ = projects
    pid, key = a["project_id"], a["master_key"]
    [error_id] = Rejector(settings.effective_database_url, pid).reject(dollar_name(), at=at(1))
    problem = problem_of(client, a, error_id)
    body = {"error_id": error_id, "operations": RENAME, "save": True}
    fix_id = call(client, "POST", f"/3.0/projects/{pid}/errors/fix", key, body)["fix_id"]

    view = call(client, "DELETE", f"/3.0/projects/{pid}/fixes/{fix_id}", key)
    assert (view["fix_id"], view["saved"], view["status"]) == (fix_id, False, "preview")
    assert view["unsaved_by"] == view["actor"] and view["unsaved_at"] is not None
    again = call(client, "DELETE", f"/3.0/projects/{pid}/fixes/{fix_id}", key)
    assert again == view, "un-saving twice changes nothing"
    assert call(client, "GET", f"/3.0/projects/{pid}/problems/{problem}/fixes", key) == {
        "fixes": [],
        "next_cursor": None,
    }
    assert [f["fix_id"] for f in call(client, "GET", f"/3.0/projects/{pid}/fixes", key)["fixes"]]
    assert call(client, "GET", f"/3.0/projects/{pid}/fixes/{fix_id}", key) == view

    r = client.post(
        f"/3.0/projects/{pid}/fixes/{fix_id}/apply", json={"dry_run": True}, headers=auth(key)
    )
    assert (r.status_code, r.json()["error_code"]) == (409, "FixNotSavedError")
    r = client.post(f"/admin/fixes/{fix_id}/apply", json={}, headers=admin())
    assert (r.status_code, r.json()["error_code"]) == (409, "FixNotSavedError")
    assert audit(settings.effective_database_url) == [
        ("fix.saved", fix_id, view["actor"]),
        ("fix.unsaved", fix_id, view["actor"]),
    ]


def test_another_projects_fix_or_problem_is_404(client, settings, projects) -> None:
    a, b = projects
    [error_id] = Rejector(settings.effective_database_url, a["project_id"]).reject(
        dollar_name(), at=at(1)
    )
    problem = problem_of(client, a, error_id)
    body = {"filter": {"problem_id": problem}, "operations": RENAME, "save": True}
    fix_id = call(
        client, "POST", f"/3.0/projects/{a['project_id']}/errors/fix", a["master_key"], body
    )["fix_id"]
    base, hb = f"/3.0/projects/{b['project_id']}", auth(b["master_key"])
    for dry_run in (True, False):
        r = client.post(f"{base}/fixes/{fix_id}/apply", json={"dry_run": dry_run}, headers=hb)
        assert (r.status_code, r.json()["error_code"]) == (404, "ResourceNotFoundError"), r.text
    assert client.delete(f"{base}/fixes/{fix_id}", headers=hb).status_code == 404
    assert client.get(f"{base}/problems/{problem}/fixes", headers=hb).status_code == 404
    # B cannot save a fix on A's problem either.
    r = client.post(f"{base}/errors/fix", json=body, headers=hb)
    assert (r.status_code, r.json()["message"]) == (404, "No such problem in this project.")
    r = client.post(f"{base}/errors/fix", json={**body, "dry_run": False}, headers=hb)
    assert r.status_code == 404
    # A's key on B's path is refused before anything is read.
    r = client.post(f"{base}/fixes/{fix_id}/apply", json={}, headers=auth(a["master_key"]))
    assert r.status_code in (401, 403)
    # An unknown fix, and a problem that does not exist.
    assert client.post(f"{base}/fixes/{'0' * 32}/apply", json={}, headers=hb).status_code == 404
    assert client.post(f"/admin/fixes/{'0' * 32}/apply", json={}, headers=admin()).status_code == (
        404
    )
    assert client.get(f"{base}/problems/{'0' * 32}/fixes", headers=hb).status_code == 404
    # Still saved, on A's problem.
    view = call(client, "GET", f"/3.0/projects/{a['project_id']}/fixes/{fix_id}", a["master_key"])
    assert view["saved"] is True
    assert [f for f in audit(settings.effective_database_url) if f[0] != "fix.saved"] == []


def test_bad_input_is_400(client, settings, projects) -> None:
    a, _ = projects
    pid, key = a["project_id"], a["master_key"]
    url = settings.effective_database_url
    [error_id] = Rejector(url, pid).reject(dollar_name(), at=at(1))
    problem = problem_of(client, a, error_id)
    fix_path = f"/3.0/projects/{pid}/errors/fix"

    def refused(path: str, body: object, code: str) -> dict:
        r = client.post(path, json=body, headers=auth(key))
        assert (r.status_code, r.json()["error_code"]) == (400, code), r.text
        return r.json()

    # A fix is saved on a problem: a filter without one cannot keep it.
    got = refused(
        fix_path,
        {"filter": {"code": "invalid_property_name"}, "operations": RENAME, "save": True},
        "InvalidParameterError",
    )
    assert (
        got["message"] == "save needs filter.problem_id or an error_id: a fix is saved on a problem"
    )
    # An error stored without a problem (before problems existed) has nothing to keep it.
    orphan = insert_error(url, pid)
    got = refused(
        fix_path, {"error_id": orphan, "operations": RENAME, "save": True}, "InvalidParameterError"
    )
    assert got["message"] == "this error belongs to no problem: there is nothing to save the fix on"
    # replace_payload is for one error: a saved fix applies to its problem's later errors.
    replace = [{"op": "replace_payload", "text": '{"price": 1}'}]
    got = refused(
        fix_path, {"error_id": error_id, "operations": replace, "save": True}, "InvalidFixError"
    )
    assert (got["index"], got["reason"]) == (
        0,
        "replace_payload cannot be saved: a saved fix applies to a problem",
    )
    refused(
        fix_path,
        {"error_id": error_id, "operations": RENAME, "save": "maybe"},
        "InvalidParameterError",
    )
    assert audit(url) == [], "nothing saved by a refused request"

    body = {"filter": {"problem_id": problem}, "operations": RENAME, "save": True}
    fix_id = call(client, "POST", fix_path, key, body)["fix_id"]
    apply_path = f"/3.0/projects/{pid}/fixes/{fix_id}/apply"
    for bad in (
        {"dry_run": "maybe"},
        {"limit": 0},
        {"limit": 10001},
        {"operations": RENAME},
        {"save": True},
        [],
    ):
        refused(apply_path, bad, "InvalidParameterError")
    r = client.post(f"/admin/fixes/{fix_id}/apply", json={"limit": -1}, headers=admin())
    assert r.status_code == 400
    r = client.get(f"/3.0/projects/{pid}/fixes", headers=auth(key), params={"saved": "perhaps"})
    assert r.status_code == 400
    with session_scope(engine_for(url)) as s:
        assert s.scalars(select(Fix.id)).all() == [fix_id], "refused applies record nothing"


@pytest.mark.kafka
def test_a_saved_fix_applies_again_to_the_errors_that_came_later(
    db_url: str, make_settings: Callable[..., Settings], kafka_bootstrap: str, projects
) -> None:
    a, _ = projects
    pid, key = a["project_id"], a["master_key"]
    settings = make_settings(db_url, kafka_bootstrap=kafka_bootstrap, admin_token=ADMIN_TOKEN)
    rejector = Rejector(db_url, pid)
    early = rejector.reject(dollar_name(), times=2, at=at(1), value=PRICED)
    with TestClient(create_app(settings)) as client:
        problem = problem_of(client, a, early[0])
        # Applied and saved in one call: both audited.
        body = {
            "filter": {"problem_id": problem},
            "operations": RENAME,
            "dry_run": False,
            "save": True,
        }
        got = call(client, "POST", f"/3.0/projects/{pid}/errors/fix", key, body)
        saved_id = got["fix_id"]
        assert (got["replayed"], got["remaining"]) == (2, 0)

        # New errors of the same problem arrive later, through the worker's writer.
        later = rejector.reject(dollar_name(), times=3, at=at(10), value=PRICED)
        [stuck] = rejector.reject(dollar_name(), at=at(11), value=EMPTY)
        assert {problem_of(client, a, e) for e in [*later, stuck]} == {problem}

        # Preview first (the default): only the errors open now; nothing stored.
        apply_path = f"/3.0/projects/{pid}/fixes/{saved_id}/apply"
        preview = call(client, "POST", apply_path, key, {})
        assert preview["saved_fix_id"] == saved_id
        assert preview["fix_id"] is None and preview["dry_run"] is True
        assert (preview["matched"], preview["examined"]) == (4, 4)
        assert (preview["would_accept"], preview["failed_to_apply"]) == (3, 1)
        assert preview["remaining"] == 3
        assert [s["error_id"] for s in preview["samples"]] == [*sorted(later), stuck]
        with session_scope(engine_for(db_url)) as s:
            assert s.scalars(select(Fix.id)).all() == [saved_id], "a preview stores nothing"
        # The limit caps what one call examines.
        capped = call(client, "POST", apply_path, key, {"dry_run": True, "limit": 2})
        assert (capped["matched"], capped["examined"], capped["remaining"]) == (4, 2, 4)

        # Apply: a new fix, its own id, naming the saved one.
        applied = call(client, "POST", apply_path, key, {"dry_run": False})
        new_id = applied["fix_id"]
        assert new_id not in (None, saved_id)
        assert (applied["saved_fix_id"], applied["dry_run"]) == (saved_id, False)
        assert (applied["replayed"], applied["refused"], applied["remaining"]) == (3, [], 0)
        view = call(client, "GET", f"/3.0/projects/{pid}/fixes/{new_id}", key)
        assert view == {
            "fix_id": new_id,
            "project_id": pid,
            "operations": RENAME,
            "target": {"filter": {"problem_id": problem, "status": "open"}},
            "problem_id": problem,
            "actor": view["actor"],
            "created_at": view["created_at"],
            "counts": counts(matched=4, examined=4, accepted=3, failed=1, replayed=3),
            "status": "applied",
            "saved": False,
            "saved_fix_id": saved_id,
            "unsaved_at": None,
            "unsaved_by": None,
        }
        listed = call(client, "GET", f"/3.0/projects/{pid}/fixes", key, saved_fix_id=saved_id)
        assert [f["fix_id"] for f in listed["fixes"]] == [new_id]
        saved_view = call(client, "GET", f"/3.0/projects/{pid}/fixes/{saved_id}", key)
        assert (saved_view["status"], saved_view["saved"]) == ("applied", True)
        assert saved_view["counts"]["replayed"] == 2
        for error_id in later:
            row = call(client, "GET", f"/3.0/projects/{pid}/errors/{error_id}", key)
            assert (row["status"], row["replay_outcome"]["fix_id"]) == ("replayed", new_id)
            outcome = row["replay_outcome"]
            value, _key, headers = asyncio.run(
                fetch_dlq_record(
                    plaintext(kafka_bootstrap),
                    outcome["topic"],
                    outcome["partition"],
                    outcome["offset"],
                )
            )
            assert value == b'{"items":[{"price":1}]}'
            assert dict(headers)["inbound.fix.id"] == new_id.encode()
        for error_id in early:  # replayed by the first fix, not again
            row = call(client, "GET", f"/3.0/projects/{pid}/errors/{error_id}", key)
            assert (row["replay_count"], row["replay_outcome"]["fix_id"]) == (1, saved_id)
        left = call(client, "GET", f"/3.0/projects/{pid}/errors/{stuck}", key)
        assert (left["status"], left["replay_outcome"]) == ("open", None)

        # Staff apply it again: only the one that cannot be patched is still open.
        r = client.post(f"/admin/fixes/{saved_id}/apply", json={"dry_run": False}, headers=admin())
        assert r.status_code == 200, r.text
        third = r.json()
        assert (third["matched"], third["replayed"], third["failed_to_apply"]) == (1, 0, 1)
        assert third["saved_fix_id"] == saved_id

    actor = view["actor"]
    assert audit(db_url) == [
        ("fix.applied", saved_id, actor),
        ("fix.saved", saved_id, actor),
        ("fix.applied", f"{new_id} saved_fix_id={saved_id}", actor),
        ("fix.applied", f"{third['fix_id']} saved_fix_id={saved_id}", "admin"),
    ]
    engine_for(db_url).dispose()
