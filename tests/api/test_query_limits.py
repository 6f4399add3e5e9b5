"""Queries are not a denial of service (issue #9): linear regexes, bounded filter lists,
a statement timeout, queries off the event loop, and JSON for every error."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from fastapi.testclient import TestClient

from app.api import routes_queries
from app.api.app import create_app
from app.settings import Settings
from app.store.db import engine_for
from tests.api.conftest import ADMIN_TOKEN, auth, insert_events

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
WEEK = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-08T00:00:00Z"}


def _f(name: str, op: str, value: object) -> dict:
    return {"property_name": name, "operator": op, "property_value": value}


@pytest.fixture
def app_for(
    db_url: str, make_settings: Callable[..., Settings], projects_factory: Callable
) -> Iterator[Callable[..., tuple[TestClient, str, dict]]]:
    """A client (server errors answered, not raised) on settings with the given overrides."""
    opened: list[tuple[TestClient, Settings]] = []

    def _make(**overrides: object) -> tuple[TestClient, str, dict]:
        settings = make_settings(db_url, admin_token=ADMIN_TOKEN, **overrides)
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        client.__enter__()
        opened.append((client, settings))
        project = projects_factory(settings)
        return client, project["project_id"], auth(project["read_key"])

    yield _make
    for client, settings in opened:
        client.__exit__(None, None, None)
        engine_for(settings.effective_database_url).dispose()


@pytest.fixture
def projects_factory(db_url: str) -> Iterator[Callable[[Settings], dict]]:
    made: dict[str, dict] = {}

    def _project(settings: Settings) -> dict:
        if "a" not in made:
            from app.store.db import session_scope
            from app.store.projects import create_project

            with session_scope(engine_for(settings.effective_database_url)) as session:
                made["a"] = create_project(session, "project A")
            events = [(T0 + timedelta(minutes=i), {"n": i, "s": "a" * 26 + "!"}) for i in range(50)]
            insert_events(db_url, made["a"]["project_id"], "purchases", events)
        return made["a"]

    yield _project


def _count(client: TestClient, pid: str, headers: dict, **body: object):  # noqa: ANN202
    payload = {"event_collection": "purchases", "timeframe": WEEK, **body}
    return client.post(f"/3.0/projects/{pid}/queries/count", headers=headers, json=payload)


def _error(response, status: int, code: str) -> None:  # noqa: ANN001
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error_code"] == code, body
    assert isinstance(body["message"], str) and body["message"]


def test_exponential_regex_is_answered_or_refused(app_for: Callable) -> None:
    client, pid, headers = app_for()
    r = _count(client, pid, headers, filters=[_f("s", "regex", "^(a+)+$")])
    # SQLite: RE2 matches in linear time. PostgreSQL: its own engine, bounded by the timeout.
    if r.status_code == 200:
        assert r.json() == {"result": 0}
    else:
        _error(r, 503, "QueryTimeoutError")
    r = _count(client, pid, headers, filters=[_f("s", "regex", "^a+!$")])
    assert r.json() == {"result": 50}


@pytest.mark.parametrize(
    "pattern",
    [
        r"(a+)\1",  # backreference: no linear-time engine does these
        r"(?=a)a",  # lookahead
        "a" * 513,  # longer than 512 characters
    ],
)
def test_regexes_outside_re2_are_refused(app_for: Callable, pattern: str) -> None:
    client, pid, headers = app_for()
    _error(
        _count(client, pid, headers, filters=[_f("s", "regex", pattern)]), 400, "InvalidQueryError"
    )


def test_regex_of_512_characters_is_taken(app_for: Callable) -> None:
    client, pid, headers = app_for()
    r = _count(client, pid, headers, filters=[_f("s", "regex", "b" * 512)])
    assert r.status_code == 200, r.text
    assert r.json() == {"result": 0}


def test_in_list_is_capped(app_for: Callable) -> None:
    client, pid, headers = app_for()
    _error(
        _count(client, pid, headers, filters=[_f("n", "in", list(range(10_000)))]),
        400,
        "InvalidQueryError",
    )
    _error(
        _count(client, pid, headers, filters=[_f("n", "in", list(range(1001)))]),
        400,
        "InvalidQueryError",
    )
    r = _count(client, pid, headers, filters=[_f("n", "in", list(range(1000)))])
    assert r.status_code == 200, r.text
    assert r.json() == {"result": 50}


def test_in_list_cap_is_a_setting(app_for: Callable) -> None:
    client, pid, headers = app_for(query_max_in_values=3)
    _error(
        _count(client, pid, headers, filters=[_f("n", "in", [1, 2, 3, 4])]),
        400,
        "InvalidQueryError",
    )
    assert _count(client, pid, headers, filters=[_f("n", "in", [1, 2, 3])]).json() == {"result": 3}


def test_filter_count_is_capped(app_for: Callable) -> None:
    client, pid, headers = app_for()
    many = [_f("n", "gte", 0)] * 1000
    _error(_count(client, pid, headers, filters=many), 400, "InvalidQueryError")
    _error(_count(client, pid, headers, filters=[_f("n", "gte", 0)] * 51), 400, "InvalidQueryError")
    r = _count(client, pid, headers, filters=[_f("n", "gte", 0)] * 50)
    assert r.status_code == 200, r.text
    assert r.json() == {"result": 50}
    # GET carries the filters as JSON text: the same limit.
    r = client.get(
        f"/3.0/projects/{pid}/queries/count",
        params={"event_collection": "purchases", "filters": orjson.dumps(many[:51]).decode()},
        headers=headers,
    )
    _error(r, 400, "InvalidQueryError")


def test_property_paths_are_bounded(app_for: Callable) -> None:
    client, pid, headers = app_for()
    deep = ".".join(["a"] * 33)
    _error(_count(client, pid, headers, filters=[_f(deep, "eq", 1)]), 400, "InvalidQueryError")
    _error(_count(client, pid, headers, group_by=deep), 400, "InvalidQueryError")
    long_name = "a" * 257
    _error(_count(client, pid, headers, filters=[_f(long_name, "eq", 1)]), 400, "InvalidQueryError")
    ok = ".".join(["a"] * 32)
    assert _count(client, pid, headers, filters=[_f(ok, "eq", 1)]).json() == {"result": 0}


def test_statement_timeout_answers_query_timeout(app_for: Callable) -> None:
    client, pid, headers = app_for(query_timeout_seconds=0.001)
    # Minutely buckets over three days: thousands of bucket rows joined with the events,
    # far more than a millisecond of database work on either database.
    frame = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-04T00:00:00Z"}
    r = _count(
        client,
        pid,
        headers,
        timeframe=frame,
        interval="minutely",
        filters=[_f("s", "regex", "a+!"), _f("n", "gte", 0)],
    )
    _error(r, 503, "QueryTimeoutError")
    # The connection is usable again afterwards (the handler / timeout does not leak).
    client2, pid2, headers2 = app_for()
    assert _count(client2, pid2, headers2).json() == {"result": 50}


def test_a_running_query_does_not_block_healthz(
    app_for: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, pid, headers = app_for()
    started, release = threading.Event(), threading.Event()
    real = routes_queries.run_count

    def slow_count(*args: object, **kwargs: object) -> dict:
        started.set()
        release.wait(30)  # the "slow query": holds its worker thread until released
        return real(*args, **kwargs)

    monkeypatch.setattr(routes_queries, "run_count", slow_count)
    answers: list = []
    worker = threading.Thread(target=lambda: answers.append(_count(client, pid, headers)))
    worker.start()
    try:
        assert started.wait(30)
        health = client.get("/healthz")
        still_running = worker.is_alive() and not answers
    finally:
        release.set()
        worker.join(30)
    assert health.status_code == 200, health.text
    assert still_running  # /healthz answered while the query was still running
    assert answers[0].json() == {"result": 50}


def test_unhandled_failure_is_json_500(app_for: Callable, monkeypatch: pytest.MonkeyPatch) -> None:
    client, pid, headers = app_for()

    def broken(*_args: object, **_kwargs: object) -> dict:
        raise RuntimeError("injected failure")

    monkeypatch.setattr(routes_queries, "run_count", broken)
    r = _count(client, pid, headers)
    _error(r, 500, "InternalServerError")
    assert "injected" not in r.text  # no internals in the answer


def test_malformed_bodies_are_json_400(app_for: Callable) -> None:
    client, pid, headers = app_for()
    url = f"/3.0/projects/{pid}/queries/count"
    r = client.post(url, headers={**headers, "content-type": "application/json"}, content=b"{")
    _error(r, 400, "InvalidParameterError")
    r = client.post(url, headers=headers, json={"event_collection": "p", "filters": "nope"})
    _error(r, 400, "InvalidParameterError")


MIXED = [
    (T0, {"v": 3}),
    (T0, {"v": "3"}),
    (T0, {"v": True}),
    (T0, {"v": 1}),  # 1 is not true
    (T0, {"v": None}),
    (T0, {"v": [5, "x"]}),
    (T0, {"v": {"a": 1}}),
    (T0, {"v": [1, 2]}),
    (T0, {"w": 3}),
]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([3], 1),
        (["3"], 1),
        ([True], 1),
        ([None], 1),
        ([5], 1),  # a list holding 5
        (["x", 3.0], 2),
        ([{"a": 1}], 1),
        ([[1, 2]], 1),
        ([3, "3", True, None, "x", {"a": 1}, [1, 2]], 7),
        ([False, 4, "y"], 0),
    ],
)
def test_in_keeps_the_json_types(
    app_for: Callable, db_url: str, values: list, expected: int
) -> None:
    client, pid, headers = app_for()
    insert_events(db_url, pid, "mixed", MIXED)
    r = client.post(
        f"/3.0/projects/{pid}/queries/count",
        headers=headers,
        json={"event_collection": "mixed", "filters": [_f("v", "in", values)]},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"result": expected}
    # The same as one eq per value, OR-ed (counted one by one: events are disjoint here).
    if expected:
        singles = 0
        for v in values:
            one = client.post(
                f"/3.0/projects/{pid}/queries/count",
                headers=headers,
                json={"event_collection": "mixed", "filters": [_f("v", "eq", v)]},
            )
            singles += one.json()["result"]
        assert singles == expected
