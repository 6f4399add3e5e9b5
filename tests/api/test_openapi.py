"""The OpenAPI document: current, complete, and true (schemathesis against a live server)."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings

from app.api.app import create_app
from app.api.openapi_dump import DEFAULT_PATH, render
from app.store.db import engine_for, session_scope
from app.store.projects import create_project
from tests.api.conftest import ADMIN_TOKEN, insert_error
from tests.api.problem_support import Rejector, dollar_name
from tests.support import metrics
from tests.support.ports import free_port

METHODS = {"get", "post", "put", "patch", "delete"}
# A fix that applies to the problem live_api stores (its events hold items[0].$price).
RENAME = [{"op": "rename", "path": "/items/0/$price", "to": "price"}]


def _operations() -> Iterator[tuple[str, str, dict]]:
    spec = json.loads(render())
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def test_openapi_file_is_current() -> None:
    committed = Path(DEFAULT_PATH).read_text(encoding="utf-8")
    assert committed == render(), "regenerate: python -m app.api.openapi_dump"


def test_every_operation_has_summary_examples_and_errors() -> None:
    spec_text = render()
    for path, method, op in _operations():
        where = f"{method.upper()} {path}"
        assert op.get("summary"), f"{where} has no summary"
        statuses = set(op["responses"])
        if path.startswith("/3.0/"):
            assert {"401", "403"} <= statuses, f"{where} lacks its auth errors"
        if path.startswith("/admin/"):
            assert "401" in statuses, f"{where} lacks 401"
        if path not in ("/healthz", "/metrics"):
            assert any(s.startswith("4") for s in statuses), f"{where} lacks error responses"
    assert spec_text.count('"example') > 40


@pytest.fixture
def live_api(
    sqlite_url: str, make_settings: Callable, kafka_bootstrap: str
) -> Iterator[tuple[str, dict[str, str]]]:
    """A real uvicorn server on the app, with one project, one error row, one problem (of
    two errors written by the worker's writer), one applied and saved fix of that problem and
    one saved preview (for the un-save route, so the other stays saved) in it."""
    settings_ = make_settings(sqlite_url, kafka_bootstrap=kafka_bootstrap, admin_token=ADMIN_TOKEN)
    with session_scope(engine_for(sqlite_url)) as s:
        project = create_project(s, "schemathesis")
    insert_error(sqlite_url, project["project_id"])
    Rejector(sqlite_url, project["project_id"]).reject(dollar_name("$price"), times=2)
    project = {**project, "problem_id": _only_problem(sqlite_url)}
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings_), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    base_url = f"http://127.0.0.1:{port}"
    try:
        project["fix_id"] = _apply_fix(base_url, project)
        project["unsave_fix_id"] = _apply_fix(base_url, project, dry_run=True)
        yield base_url, project
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine_for(sqlite_url).dispose()


def _apply_fix(base_url: str, project: dict[str, str], dry_run: bool = False) -> str:
    """A fix saved on the problem: applied (both errors replayed), or a saved preview."""
    import httpx

    body = {"filter": {"problem_id": project["problem_id"]}, "operations": RENAME, "save": True}
    r = httpx.post(
        f"{base_url}/3.0/projects/{project['project_id']}/errors/fix",
        json={**body, "dry_run": dry_run},
        headers={"Authorization": project["master_key"]},
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["replayed"] == (0 if dry_run else 2), r.text
    return r.json()["fix_id"]


def _only_problem(url: str) -> str:
    from sqlalchemy import select

    from app.store.models import Problem

    with session_scope(engine_for(url)) as s:
        return s.scalars(select(Problem.id)).one()


_fix_cases = itertools.count()
FIX_ROUTES = (
    "/3.0/projects/{project_id}/errors/fix",
    "/3.0/projects/{project_id}/fixes",
    "/3.0/projects/{project_id}/fixes/{fix_id}",
    "/admin/projects/{project_id}/errors/fix",
    "/admin/fixes",
    "/admin/fixes/{fix_id}",
    "/3.0/projects/{project_id}/fixes/{fix_id}/apply",
    "/3.0/projects/{project_id}/problems/{problem_id}/fixes",
    "/admin/fixes/{fix_id}/apply",
    "/admin/problems/{problem_id}/fixes",
)


def _fix_200s(base_url: str) -> dict[str, float]:
    """200s the server answered so far per fix route (the API's own request counter)."""
    import httpx

    found = metrics.samples(httpx.get(f"{base_url}/metrics", timeout=10).text)
    return {
        labels["route"]: n
        for (name, pairs), n in found.items()
        if name == "inbound_api_requests_total"
        and (labels := dict(pairs))["status"] == "200"
        and labels["route"] in FIX_ROUTES
    }


def _check(case: schemathesis.Case, base_url: str, project: dict[str, str]) -> None:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    if case.path.startswith("/admin"):
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    else:
        headers = {"Authorization": project["master_key"]}
    if case.path_parameters and "project_id" in case.path_parameters:
        # Our own project, so requests get past auth into the handlers.
        case.path_parameters["project_id"] = project["project_id"]
    if case.path_parameters and "problem_id" in case.path_parameters:
        # The real problem, so the one-problem routes answer 200 (and are checked) too.
        case.path_parameters["problem_id"] = project["problem_id"]
    if case.path_parameters and "fix_id" in case.path_parameters:
        # DELETE un-saves: it gets its own fix, so the saved one still applies (200) after it.
        which = "unsave_fix_id" if case.method.upper() == "DELETE" else "fix_id"
        case.path_parameters["fix_id"] = project[which]
    if case.path.endswith("/errors/fix") and next(_fix_cases) % 2:
        # Every other generated fix gets operations that apply to the stored problem, so
        # the preview's 200 (not only the 400s) is held to the schema.
        filter_ = {"problem_id": project["problem_id"], "status": "open,replayed"}
        case.body = {"filter": filter_, "operations": RENAME, "dry_run": True}
    case.call_and_validate(
        base_url=base_url,
        headers=headers,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )


@pytest.mark.kafka
def test_api_matches_its_schema(live_api: tuple[str, dict[str, str]]) -> None:
    """No 5xx and every response as documented, for generated requests to every operation."""
    base_url, project = live_api
    answered_before = _fix_200s(base_url)
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            _check(case, base_url, project)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert operations >= 30
    assert not failures, "\n\n".join(failures)
    reached = {
        route for route, n in _fix_200s(base_url).items() if n > answered_before.get(route, 0)
    }
    assert reached == set(FIX_ROUTES), f"fix routes answered 200: {sorted(reached)}"
