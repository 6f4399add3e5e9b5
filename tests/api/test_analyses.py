"""Keen's analyses beyond count (sum, average, minimum, maximum, median, percentile,
count_unique, select_unique) on SQLite and PostgreSQL: plain, group_by, interval, both,
order_by/limit, the JSON-type rules and the per-request limits. Every expected value is worked
out by hand from EVENTS below."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from app.api import analyses
from app.api.app import create_app
from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.projects import create_project
from tests.api.conftest import ADMIN_TOKEN, auth, insert_events

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday
DAY, HOUR = timedelta(days=1), timedelta(hours=1)
EVENTS = [
    (T0, {"price": 10, "plan": "pro", "country": "DE", "tag": "a"}),
    (T0 + HOUR, {"price": 20, "plan": "pro", "country": "FR", "tag": 1}),
    (T0 + DAY, {"price": 5.5, "plan": "free", "country": "DE", "tag": "1"}),
    (T0 + DAY + HOUR, {"price": "100", "plan": "free", "country": "DE", "tag": True}),
    (T0 + 2 * DAY, {"price": True, "plan": "team", "tag": "a"}),
    (T0 + 3 * DAY, {"price": 4, "plan": "free", "country": "FR", "tag": None}),
    (T0 + 3 * DAY, {"plan": "team", "tag": [1, 2]}),
]
# The numbers among the prices: 10, 20, 5.5, 4 (the string "100" and true are not numbers).
WEEK = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-08T00:00:00Z"}
APRIL = {"start": "2026-04-01T00:00:00Z", "end": "2026-04-08T00:00:00Z"}


@pytest.fixture
def make_client(
    db_url: str, make_settings: Callable[..., Settings]
) -> Iterator[Callable[..., tuple[TestClient, str, dict]]]:
    """A client on settings with the given overrides, project A loaded with EVENTS (and the
    same events in project B and in another collection, which must never be counted)."""
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
            insert_events(db_url, made["a"]["project_id"], "purchases", EVENTS)
            insert_events(db_url, made["a"]["project_id"], "other", [(T0, {"price": 1000})])
            insert_events(db_url, made["b"]["project_id"], "purchases", EVENTS)
        return client, made["a"]["project_id"], auth(made["a"]["read_key"])

    yield _make
    for client, settings in opened:
        client.__exit__(None, None, None)
        engine_for(settings.effective_database_url).dispose()


@pytest.fixture
def api(make_client: Callable) -> tuple[TestClient, str, dict]:
    return make_client()


def _post(api: tuple, analysis: str, **body: object):  # noqa: ANN202
    client, pid, headers = api
    payload = {"event_collection": "purchases", "timeframe": WEEK, **body}
    return client.post(f"/3.0/projects/{pid}/queries/{analysis}", headers=headers, json=payload)


def _result(api: tuple, analysis: str, **body: object) -> object:
    r = _post(api, analysis, **body)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"result"}
    return r.json()["result"]


def _error(response, status: int, code: str, words: str = "") -> None:  # noqa: ANN001
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code, body
    assert words in body["message"], body


def test_plain_results(api: tuple) -> None:
    assert _result(api, "sum", target_property="price") == 39.5
    assert _result(api, "average", target_property="price") == 9.875
    assert _result(api, "minimum", target_property="price") == 4
    assert _result(api, "maximum", target_property="price") == 20
    # sorted 4, 5.5, 10, 20: the median halfway between 5.5 and 10
    assert _result(api, "median", target_property="price") == 7.75
    # rank 0.25 * 3 = 0.75: 4 + 0.75 * (5.5 - 4)
    assert _result(api, "percentile", target_property="price", percentile=25) == 5.125
    assert _result(api, "percentile", target_property="price", percentile=0) == 4
    assert _result(api, "percentile", target_property="price", percentile=100) == 20
    # rank 2.7: 10 + 0.7 * 10
    assert _result(api, "percentile", target_property="price", percentile=90) == pytest.approx(17)
    # "a", 1, "1", true, [1, 2] ("a" twice, null not a value)
    assert _result(api, "count_unique", target_property="tag") == 5
    assert _result(api, "count_unique", target_property="country") == 2
    assert _result(api, "select_unique", target_property="tag") == [True, 1, "1", "a", [1, 2]]
    assert _result(api, "select_unique", target_property="plan") == ["free", "pro", "team"]
    # the same filters as count
    pro = [{"property_name": "plan", "operator": "eq", "property_value": "pro"}]
    assert _result(api, "sum", target_property="price", filters=pro) == 30
    assert _result(api, "count", filters=pro) == 2


def test_over_no_events(api: tuple) -> None:
    assert _result(api, "sum", target_property="price", timeframe=APRIL) == 0
    assert _result(api, "count_unique", target_property="price", timeframe=APRIL) == 0
    assert _result(api, "select_unique", target_property="price", timeframe=APRIL) == []
    for analysis in ("average", "minimum", "maximum", "median"):
        assert _result(api, analysis, target_property="price", timeframe=APRIL) is None
    assert (
        _result(api, "percentile", target_property="price", percentile=50, timeframe=APRIL) is None
    )
    # events, but no numbers among them: "100" and true
    no_numbers = [{"property_name": "plan", "operator": "in", "property_value": ["team"]}]
    assert _result(api, "sum", target_property="price", filters=no_numbers) == 0
    assert _result(api, "average", target_property="price", filters=no_numbers) is None
    assert _result(api, "maximum", target_property="nothing") is None


def test_group_by_one_property(api: tuple) -> None:
    # Biggest first by default: pro 10 + 20, free 5.5 + 4 ("100" skipped), team no numbers.
    assert _result(api, "sum", target_property="price", group_by="plan") == [
        {"plan": "pro", "result": 30},
        {"plan": "free", "result": 9.5},
        {"plan": "team", "result": 0},
    ]
    assert _result(api, "average", target_property="price", group_by="plan") == [
        {"plan": "pro", "result": 15},
        {"plan": "free", "result": 4.75},
        {"plan": "team", "result": None},
    ]
    # ties in the order of the group values: free DE, DE, FR; pro DE, FR; team none
    assert _result(api, "count_unique", target_property="country", group_by="plan") == [
        {"plan": "free", "result": 2},
        {"plan": "pro", "result": 2},
        {"plan": "team", "result": 0},
    ]
    assert _result(api, "select_unique", target_property="tag", group_by="plan") == [
        {"plan": "free", "result": [True, "1"]},
        {"plan": "pro", "result": [1, "a"]},
        {"plan": "team", "result": ["a", [1, 2]]},
    ]
    assert _result(api, "maximum", target_property="price", group_by="country") == [
        {"country": "FR", "result": 20},
        {"country": "DE", "result": 10},
        {"country": None, "result": None},
    ]


def test_group_by_several_order_by_and_limit(api: tuple) -> None:
    assert _result(api, "sum", target_property="price", group_by=["plan", "country"]) == [
        {"plan": "pro", "country": "FR", "result": 20},
        {"plan": "pro", "country": "DE", "result": 10},
        {"plan": "free", "country": "DE", "result": 5.5},
        {"plan": "free", "country": "FR", "result": 4},
        {"plan": "team", "country": None, "result": 0},
    ]
    order = [
        {"property_name": "plan", "direction": "ASC"},
        {"property_name": "result", "direction": "DESC"},
    ]
    assert _result(
        api, "sum", target_property="price", group_by=["plan", "country"], order_by=order
    ) == [
        {"plan": "free", "country": "DE", "result": 5.5},
        {"plan": "free", "country": "FR", "result": 4},
        {"plan": "pro", "country": "FR", "result": 20},
        {"plan": "pro", "country": "DE", "result": 10},
        {"plan": "team", "country": None, "result": 0},
    ]
    ascending = {"property_name": "result", "direction": "ASC"}
    assert _result(
        api, "sum", target_property="price", group_by="plan", order_by=ascending, limit=2
    ) == [{"plan": "team", "result": 0}, {"plan": "free", "result": 9.5}]
    by_plan_desc = {"property_name": "plan", "direction": "DESC"}
    assert _result(api, "count", group_by="plan", order_by=by_plan_desc, limit=1) == [
        {"plan": "team", "result": 2}
    ]
    # GET: lists and objects as JSON text
    client, pid, headers = api
    r = client.get(
        f"/3.0/projects/{pid}/queries/minimum",
        headers=headers,
        params={
            "event_collection": "purchases",
            "target_property": "price",
            "group_by": '["plan"]',
            "order_by": '{"property_name": "result", "direction": "DESC"}',
            "limit": "2",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"result": [{"plan": "pro", "result": 10}, {"plan": "free", "result": 4}]}


def test_interval_and_interval_with_group_by(api: tuple) -> None:
    frame = {"start": "2026-03-02T00:00:00Z", "end": "2026-03-06T00:00:00Z"}
    days = [f"2026-03-0{d}T00:00:00.000Z" for d in range(2, 7)]
    windows = [{"start": days[i], "end": days[i + 1]} for i in range(4)]
    result = _result(api, "sum", target_property="price", timeframe=frame, interval="daily")
    assert result == [
        {"timeframe": windows[0], "value": 30},
        {"timeframe": windows[1], "value": 5.5},
        {"timeframe": windows[2], "value": 0},
        {"timeframe": windows[3], "value": 4},
    ]
    result = _result(api, "median", target_property="price", timeframe=frame, interval="daily")
    assert [b["value"] for b in result] == [15, 5.5, None, 4]
    result = _result(
        api, "select_unique", target_property="plan", timeframe=frame, interval="daily"
    )
    assert [b["value"] for b in result] == [["pro"], ["free"], ["team"], ["free", "team"]]
    result = _result(
        api, "sum", target_property="price", timeframe=frame, interval="daily", group_by="plan"
    )
    assert result == [
        {"timeframe": windows[0], "value": [{"plan": "pro", "result": 30}]},
        {"timeframe": windows[1], "value": [{"plan": "free", "result": 5.5}]},
        {"timeframe": windows[2], "value": [{"plan": "team", "result": 0}]},
        {
            "timeframe": windows[3],
            "value": [{"plan": "free", "result": 4}, {"plan": "team", "result": 0}],
        },
    ]
    result = _result(
        api,
        "count_unique",
        target_property="tag",
        timeframe=frame,
        interval="daily",
        group_by="plan",
        limit=1,
    )
    # day 4: free's tag null (no value), team's [1, 2]: team first (1 > 0), the limit keeps it
    assert [b["value"] for b in result] == [
        [{"plan": "pro", "result": 2}],
        [{"plan": "free", "result": 2}],
        [{"plan": "team", "result": 1}],
        [{"plan": "team", "result": 1}],
    ]


def test_numbers_stay_exact_and_types_stay_apart(make_client: Callable, db_url: str) -> None:
    client, pid, headers = make_client()
    big = 2**53 + 1  # not a double
    insert_events(
        db_url,
        pid,
        "numbers",
        [(T0, {"v": big}), (T0, {"v": 1}), (T0, {"v": "1"}), (T0, {"v": False}), (T0, {"v": 0})],
    )
    body = {"event_collection": "numbers", "timeframe": WEEK, "target_property": "v"}

    def result(analysis: str) -> object:
        r = client.post(f"/3.0/projects/{pid}/queries/{analysis}", headers=headers, json=body)
        assert r.status_code == 200, r.text
        return r.json()["result"]

    assert result("sum") == big + 1
    assert result("maximum") == big
    assert result("minimum") == 0
    assert result("count_unique") == 5  # big, 1, "1", false, 0
    assert result("select_unique") == [False, 0, 1, big, "1"]


def test_a_sum_past_64_bits(make_client: Callable, db_url: str) -> None:
    """PostgreSQL sums exactly; SQLite's integers stop at 2**63 - 1: a clear 400, not a 500."""
    client, pid, headers = make_client()
    insert_events(db_url, pid, "huge", [(T0, {"v": 2**62}), (T0, {"v": 2**62})])
    body = {"event_collection": "huge", "timeframe": WEEK, "target_property": "v"}
    r = client.post(f"/3.0/projects/{pid}/queries/sum", headers=headers, json=body)
    if db_url.startswith("postgresql"):
        assert r.status_code == 200 and r.json()["result"] == 2**63, r.text
    else:
        assert r.status_code == 400, r.text
        assert r.json()["error_code"] == "InvalidQueryError"
        assert "64-bit" in r.json()["message"]


def test_refusals(api: tuple) -> None:
    for analysis in analyses.ANALYSES[1:]:
        body = {"percentile": 50} if analysis == "percentile" else {}
        _error(_post(api, analysis, **body), 400, "InvalidQueryError", "target_property")
    _error(
        _post(api, "percentile", target_property="price"), 400, "InvalidQueryError", "percentile"
    )
    _error(
        _post(api, "percentile", target_property="price", percentile=101),
        400,
        "InvalidParameterError",
    )
    client, pid, headers = api
    r = client.get(
        f"/3.0/projects/{pid}/queries/percentile",
        headers=headers,
        params={"event_collection": "purchases", "target_property": "price", "percentile": "-1"},
    )
    _error(r, 400, "InvalidParameterError")
    eleven = [f"p{i}" for i in range(11)]
    _error(
        _post(api, "sum", target_property="price", group_by=eleven),
        400,
        "InvalidQueryError",
        "at most 10",
    )
    _error(_post(api, "count", group_by=eleven), 400, "InvalidQueryError", "at most 10")
    assert len(_result(api, "count", group_by=eleven[:10])) == 1  # ten is fine: all null
    _error(
        _post(api, "sum", target_property="price", order_by={"property_name": "result"}),
        400,
        "InvalidQueryError",
        "group_by",
    )
    _error(
        _post(api, "sum", target_property="price", limit=3), 400, "InvalidQueryError", "group_by"
    )
    _error(
        _post(api, "sum", target_property="price", group_by="plan", order_by="country"),
        400,
        "InvalidQueryError",
        "country",
    )
    _error(
        _post(
            api,
            "sum",
            target_property="price",
            group_by="plan",
            order_by={"property_name": "plan", "direction": "UP"},
        ),
        400,
        "InvalidQueryError",
        "ASC or DESC",
    )
    _error(_post(api, "sum", target_property="a..b"), 400, "InvalidQueryError")


def test_per_request_limits_apply(make_client: Callable, db_url: str) -> None:
    client, pid, headers = make_client(query_max_filters=1, query_extraction_limit=2)
    two = [
        {"property_name": "plan", "operator": "exists", "property_value": True},
        {"property_name": "tag", "operator": "exists", "property_value": True},
    ]
    url = f"/3.0/projects/{pid}/queries"
    body = {"event_collection": "purchases", "timeframe": WEEK, "target_property": "plan"}
    r = client.post(f"{url}/count_unique", headers=headers, json={**body, "filters": two})
    _error(r, 400, "InvalidQueryError", "at most 1")
    # three distinct plans, two allowed
    r = client.post(f"{url}/select_unique", headers=headers, json=body)
    _error(r, 400, "InvalidQueryError", "more than 2 distinct values")
    r = client.post(
        f"{url}/select_unique", headers=headers, json={**body, "target_property": "country"}
    )
    assert r.json() == {"result": ["DE", "FR"]}
    # the statement timeout: minutely buckets over three days, far more than a millisecond
    client, pid, headers = make_client(query_timeout_seconds=0.001)
    frame = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-04T00:00:00Z"}
    for analysis in ("sum", "median"):
        r = client.post(
            f"{url}/{analysis}",
            headers=headers,
            json={**body, "target_property": "price", "timeframe": frame, "interval": "minutely"},
        )
        _error(r, 503, "QueryTimeoutError")


def test_sqlite_percentiles_are_bounded(
    make_client: Callable, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, pid, headers = make_client()
    monkeypatch.setattr(analyses, "MAX_SQLITE_PERCENTILE_VALUES", 3)
    r = _post((client, pid, headers), "median", target_property="price")  # four numbers
    if db_url.startswith("sqlite"):
        _error(r, 400, "InvalidQueryError", "more than 3 numbers")
        frame = {"start": "2026-03-02T00:00:00Z", "end": "2026-03-03T00:00:00Z"}
        assert (
            _result((client, pid, headers), "median", target_property="price", timeframe=frame)
            == 15
        )
    else:
        assert r.json() == {"result": 7.75}  # percentile_cont in PostgreSQL, nothing held here
