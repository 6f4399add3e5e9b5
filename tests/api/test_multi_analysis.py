"""Keen's multi_analysis on SQLite and PostgreSQL: labelled analyses over one collection and
timeframe, plain, by group_by, by interval and both, GET and POST, and every refusal. Every
expected value is worked out by hand from EVENTS below."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from fastapi.testclient import TestClient

from app.api.app import create_app
from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.projects import create_project
from tests.api.conftest import ADMIN_TOKEN, auth, insert_events

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY, HOUR = timedelta(days=1), timedelta(hours=1)
EVENTS = [
    (T0, {"price": 10, "plan": "pro", "user": "a"}),
    (T0 + HOUR, {"price": 20, "plan": "pro", "user": "b"}),
    (T0 + DAY, {"price": 4.5, "plan": "free", "user": "a"}),
    (T0 + DAY + HOUR, {"price": "100", "plan": "free", "user": "c"}),
    (T0 + 2 * DAY, {"plan": "team"}),
    (datetime(2026, 4, 2, tzinfo=UTC), {"price": 1000, "plan": "pro", "user": "z"}),
]
# In WEEK: 5 events; the numbers among the prices are 10, 20 and 4.5 (the string "100" is
# not a number); users a, b, c; plans free, pro, team.
WEEK = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-08T00:00:00Z"}
ALL = {
    "n": {"analysis_type": "count"},
    "revenue": {"analysis_type": "sum", "target_property": "price"},
    "avg": {"analysis_type": "average", "target_property": "price"},
    "low": {"analysis_type": "minimum", "target_property": "price"},
    "high": {"analysis_type": "maximum", "target_property": "price"},
    "mid": {"analysis_type": "median", "target_property": "price"},
    "p25": {"analysis_type": "percentile", "target_property": "price", "percentile": 25},
    "users": {"analysis_type": "count_unique", "target_property": "user"},
    "names": {"analysis_type": "select_unique", "target_property": "user"},
}


@pytest.fixture
def make_client(
    db_url: str, make_settings: Callable[..., Settings]
) -> Iterator[Callable[..., tuple[TestClient, str, dict]]]:
    """A client on settings with the given overrides; project A holds EVENTS (project B and
    another collection the same and more, never counted)."""
    opened: list[tuple[TestClient, Settings]] = []
    made: dict[str, dict] = {}

    def _make(**overrides: object) -> tuple[TestClient, str, dict]:
        settings = make_settings(db_url, admin_token=ADMIN_TOKEN, **overrides)
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        client.__enter__()
        opened.append((client, settings))
        if not made:
            with session_scope(engine_for(db_url)) as session:
                made["a"] = create_project(session, "project A")
                made["b"] = create_project(session, "project B")
            a, b = made["a"]["project_id"], made["b"]["project_id"]
            insert_events(db_url, a, "purchases", EVENTS)
            insert_events(db_url, a, "other", [(T0, {"price": 7, "plan": "pro", "user": "q"})])
            insert_events(db_url, b, "purchases", [*EVENTS, (T0, {"price": 1, "user": "y"})])
        return client, made["a"]["project_id"], auth(made["a"]["read_key"])

    yield _make
    for client, settings in opened:
        client.__exit__(None, None, None)
        engine_for(settings.effective_database_url).dispose()


@pytest.fixture
def api(make_client: Callable) -> tuple[TestClient, str, dict]:
    return make_client()


def _post(api: tuple, analyses: object, **body: object):  # noqa: ANN202
    client, pid, headers = api
    payload = {"event_collection": "purchases", "timeframe": WEEK, "analyses": analyses, **body}
    return client.post(f"/3.0/projects/{pid}/queries/multi_analysis", headers=headers, json=payload)


def _result(api: tuple, analyses: object, **body: object) -> object:
    r = _post(api, analyses, **body)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"result"}
    return r.json()["result"]


def _refused(r, reason: str, words: str) -> None:  # noqa: ANN001
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error_code"] == "InvalidQueryError", body
    assert body["reason"] == reason, body
    assert words in body["message"], body


def test_every_analysis_by_label(api: tuple) -> None:
    assert _result(api, ALL) == {
        "n": 5,
        "revenue": 34.5,  # 10 + 20 + 4.5
        "avg": 11.5,  # 34.5 / 3
        "low": 4.5,
        "high": 20,
        "mid": 10,
        "p25": 7.25,  # rank 0.25 * 2 = 0.5: halfway from 4.5 to 10
        "users": 3,
        "names": ["a", "b", "c"],
    }


def test_filters_apply_to_every_analysis(api: tuple) -> None:
    not_pro = [{"property_name": "plan", "operator": "ne", "property_value": "pro"}]
    analyses = {k: ALL[k] for k in ("n", "revenue", "high", "names")}
    assert _result(api, analyses, filters=not_pro) == {
        "n": 3,
        "revenue": 4.5,
        "high": 4.5,
        "names": ["a", "c"],
    }


def test_group_by_puts_every_label_beside_the_group(api: tuple) -> None:
    analyses = {k: ALL[k] for k in ("n", "revenue", "avg", "p25", "users", "names")}
    assert _result(api, analyses, group_by="plan") == [
        {"plan": "free", "n": 2, "revenue": 4.5, "avg": 4.5, "p25": 4.5, "users": 2,
         "names": ["a", "c"]},
        {"plan": "pro", "n": 2, "revenue": 30, "avg": 15, "p25": 12.5, "users": 2,
         "names": ["a", "b"]},
        # No price and no user: each analysis's value over nothing (select_unique has no
        # row for the group at all).
        {"plan": "team", "n": 1, "revenue": 0, "avg": None, "p25": None, "users": 0,
         "names": []},
    ]  # fmt: skip


def test_interval_gives_the_labels_per_bucket(api: tuple) -> None:
    analyses = {k: ALL[k] for k in ("n", "revenue")}
    days = ["01", "02", "03", "04", "05", "06", "07", "08"]
    values = [(0, 0), (2, 30), (2, 4.5), (1, 0), (0, 0), (0, 0), (0, 0)]
    assert _result(api, analyses, interval="daily") == [
        {
            "timeframe": {
                "start": f"2026-03-{days[i]}T00:00:00.000Z",
                "end": f"2026-03-{days[i + 1]}T00:00:00.000Z",
            },
            "value": {"n": n, "revenue": revenue},
        }
        for i, (n, revenue) in enumerate(values)
    ]


def test_interval_and_group_by(api: tuple) -> None:
    analyses = {k: ALL[k] for k in ("n", "high")}
    two_days = {"start": "2026-03-02T00:00:00Z", "end": "2026-03-05T00:00:00Z"}
    assert _result(api, analyses, timeframe=two_days, interval="daily", group_by="plan") == [
        {
            "timeframe": {"start": "2026-03-02T00:00:00.000Z", "end": "2026-03-03T00:00:00.000Z"},
            "value": [{"plan": "pro", "n": 2, "high": 20}],
        },
        {
            "timeframe": {"start": "2026-03-03T00:00:00.000Z", "end": "2026-03-04T00:00:00.000Z"},
            "value": [{"plan": "free", "n": 2, "high": 4.5}],
        },
        {
            "timeframe": {"start": "2026-03-04T00:00:00.000Z", "end": "2026-03-05T00:00:00.000Z"},
            "value": [{"plan": "team", "n": 1, "high": None}],
        },
    ]


def test_get_takes_json_parameters_as_keens_sdk_sends_them(api: tuple) -> None:
    client, pid, headers = api
    analyses = {k: ALL[k] for k in ("n", "revenue")}
    r = client.get(
        f"/3.0/projects/{pid}/queries/multi_analysis",
        params={
            "event_collection": "purchases",
            "analyses": orjson.dumps(analyses).decode(),
            "timeframe": orjson.dumps(WEEK).decode(),
            "group_by": '["plan"]',
            "max_age": "300",  # the SDK may send it: accepted and ignored
        },
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "result": [
            {"plan": "free", "n": 2, "revenue": 4.5},
            {"plan": "pro", "n": 2, "revenue": 30},
            {"plan": "team", "n": 1, "revenue": 0},
        ]
    }


def test_refusals_have_a_stable_reason(api: tuple) -> None:
    _refused(_post(api, {"x": {"analysis_type": "mode"}}), "unknown_analysis_type", "'mode'")
    _refused(_post(api, {"x": {}}), "unknown_analysis_type", "analysis_type")
    _refused(
        _post(api, {"x": {"analysis_type": "sum"}}),
        "missing_target_property",
        "target_property is required for sum",
    )
    _refused(
        _post(api, {"x": {"analysis_type": "percentile", "target_property": "price"}}),
        "invalid_percentile",
        "percentile is required",
    )
    _refused(_post(api, None), "missing_analyses", "analyses is required")
    _refused(_post(api, {}), "missing_analyses", "analyses is required")
    many = {f"c{i}": {"analysis_type": "count"} for i in range(21)}
    _refused(_post(api, many), "too_many_analyses", "at most 20")
    del many["c20"]
    assert _result(api, many) == {f"c{i}": 5 for i in range(20)}
    _refused(
        _post(api, {"plan": {"analysis_type": "count"}}, group_by="plan"),
        "invalid_analyses",
        "also a group_by property",
    )
    _refused(
        _post(api, {"n": {"analysis_type": "count"}}, timeframe="this_7_fortnights"),
        "invalid_timeframe",
        "this_7_fortnights",
    )
    client, pid, headers = api
    r = client.get(
        f"/3.0/projects/{pid}/queries/multi_analysis",
        params={"event_collection": "purchases", "analyses": "[1, 2]"},
        headers=headers,
    )
    _refused(r, "invalid_analyses", "analyses is an object")
    r = client.get(
        f"/3.0/projects/{pid}/queries/multi_analysis",
        params={"event_collection": "purchases", "analyses": '{"x": 1}'},
        headers=headers,
    )
    _refused(r, "invalid_analyses", "analyses['x']")
    # The single analyses' own checks still hold (no event_collection; a bad filter).
    r = _post(api, {"n": {"analysis_type": "count"}}, event_collection="")
    assert r.status_code == 400 and "event_collection" in r.json()["message"], r.text
    bad = [{"property_name": "plan", "operator": "like", "property_value": "p"}]
    r = _post(api, {"n": {"analysis_type": "count"}}, filters=bad)
    assert r.status_code == 400 and "unknown filter operator" in r.json()["message"], r.text


def test_the_query_timeout_bounds_the_whole_call(make_client: Callable) -> None:
    api = make_client(query_timeout_seconds=0.000001)
    r = _post(api, {k: ALL[k] for k in ("n", "revenue")})
    assert r.status_code == 503, r.text
    assert r.json()["error_code"] == "QueryTimeoutError"
