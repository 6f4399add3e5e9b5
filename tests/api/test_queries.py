"""Count and extraction on SQLite and PostgreSQL: timeframes, every filter operator,
group_by, interval, timezone, latest, property_names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import auth, insert_events

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday
EVENTS = [
    (T0, {"n": 1, "plan": "pro", "tags": ["a", "b"], "user": {"id": "u1", "age": 30}}),
    (T0 + timedelta(hours=1), {"n": 2, "plan": "free", "tags": ["b"], "user": {"id": "u2"}}),
    (T0 + timedelta(days=1), {"n": 3, "plan": "pro", "ok": True, "loc": [13.40, 52.52]}),
    (T0 + timedelta(days=2), {"n": "3", "plan": None, "ok": False, "loc": [2.35, 48.86]}),
    (T0 + timedelta(days=3), {"n": 10.5, "plan": "enterprise", "url": "https://x.io/a?b=1"}),
]
WEEK = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-08T00:00:00Z"}


@pytest.fixture
def loaded(client: TestClient, projects: tuple, db_url: str) -> tuple[TestClient, str, dict]:
    a, b = projects
    insert_events(db_url, a["project_id"], "purchases", EVENTS)
    insert_events(db_url, a["project_id"], "other", [(T0, {"n": 1})])
    insert_events(db_url, b["project_id"], "purchases", EVENTS)
    return client, a["project_id"], auth(a["read_key"])


def _count(loaded: tuple, **params: object) -> object:
    client, pid, headers = loaded
    body = {"event_collection": "purchases", "timeframe": WEEK, **params}
    r = client.post(f"/3.0/projects/{pid}/queries/count", headers=headers, json=body)
    assert r.status_code == 200, r.text
    return r.json()["result"]


def _f(name: str, op: str, value: object) -> list[dict]:
    return [{"property_name": name, "operator": op, "property_value": value}]


def test_count_plain_and_absolute_timeframe(loaded: tuple) -> None:
    assert _count(loaded) == 5
    frame = {"start": "2026-03-02T12:00:00Z", "end": "2026-03-03T12:00:00Z"}
    # start inclusive, end exclusive
    assert _count(loaded, timeframe=frame) == 2
    client, pid, headers = loaded
    r = client.get(
        f"/3.0/projects/{pid}/queries/count",
        params={"event_collection": "purchases"},
        headers=headers,
    )
    assert r.json() == {"result": 5}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (_f("plan", "eq", "pro"), 2),
        (_f("n", "eq", 3), 1),  # the string "3" is not the number 3
        (_f("n", "eq", "3"), 1),
        (_f("ok", "eq", True), 1),
        (_f("plan", "eq", None), 1),
        (_f("tags", "eq", "b"), 2),  # a list property matches when it holds the value
        (_f("user.id", "eq", "u2"), 1),
        (_f("plan", "ne", "pro"), 3),
        (_f("n", "lt", 3), 2),
        (_f("n", "lte", 3), 3),
        (_f("n", "gt", 2), 2),
        (_f("n", "gte", 10.5), 1),
        (_f("user.age", "gte", 18), 1),
        (_f("plan", "gt", "f"), 3),  # strings compare as strings
        (_f("ok", "exists", True), 2),
        (_f("ok", "exists", False), 3),
        (_f("plan", "in", ["free", "enterprise"]), 2),
        (_f("url", "contains", "x.io"), 1),
        (_f("tags", "contains", "a"), 1),
        (_f("plan", "not_contains", "r"), 1),
        (_f("plan", "regex", "^(pro|free)$"), 3),
        (_f("loc", "within", {"coordinates": [13.4, 52.5], "max_distance_miles": 10}), 1),
        (_f("loc", "within", {"coordinates": [13.4, 52.5], "max_distance_miles": 600}), 2),
        (_f("keen.timestamp", "gte", "2026-03-04T12:00:00Z"), 2),
        (_f("plan", "eq", "pro") + _f("n", "gt", 1), 1),
    ],
)
def test_filter_operators(loaded: tuple, filters: list[dict], expected: int) -> None:
    assert _count(loaded, filters=filters) == expected


def test_group_by_one_and_many(loaded: tuple) -> None:
    result = _count(loaded, group_by="plan")
    assert {r["plan"]: r["result"] for r in result} == {
        "pro": 2,
        "free": 1,
        None: 1,
        "enterprise": 1,
    }
    result = _count(loaded, group_by=["plan", "ok"], filters=_f("plan", "eq", "pro"))
    assert sorted(((r["plan"], r["ok"], r["result"]) for r in result), key=str) == [
        ("pro", None, 1),
        ("pro", True, 1),
    ]


def test_interval_and_timezone(loaded: tuple) -> None:
    frame = {"start": "2026-03-02T00:00:00Z", "end": "2026-03-06T00:00:00Z"}
    result = _count(loaded, timeframe=frame, interval="daily")
    assert [r["value"] for r in result] == [2, 1, 1, 1]
    assert result[0]["timeframe"] == {
        "start": "2026-03-02T00:00:00.000Z",
        "end": "2026-03-03T00:00:00.000Z",
    }
    grouped = _count(loaded, timeframe=frame, interval="every_2_days", group_by="plan")
    assert len(grouped) == 2
    assert {r["plan"]: r["result"] for r in grouped[0]["value"]} == {"pro": 2, "free": 1}
    # In UTC+13 the first day's events (12:00, 13:00 UTC) fall on the next local day.
    local = {"start": "2026-03-02T00:00:00", "end": "2026-03-04T00:00:00"}
    result = _count(loaded, timeframe=local, timezone="Pacific/Auckland", interval="daily")
    assert [r["value"] for r in result] == [0, 2]
    assert result[0]["timeframe"]["start"] == "2026-03-01T11:00:00.000Z"
    result = _count(loaded, timeframe=local, timezone=13 * 3600, interval="daily")
    assert [r["value"] for r in result] == [0, 2]


def test_relative_timeframes(client: TestClient, projects: tuple, db_url: str) -> None:
    """Events placed on the unit boundaries: `previous_N` is the N complete units before the
    current one (start included, current unit excluded); `this_N` includes the current unit."""
    a, _ = projects
    url = f"/3.0/projects/{a['project_id']}/queries/count"
    h = auth(a["master_key"])

    def count(collection: str, frame: str) -> int:
        r = client.get(url, params={"event_collection": collection, "timeframe": frame}, headers=h)
        assert r.status_code == 200, r.text
        return r.json()["result"]

    for attempt in range(3):
        now = datetime.now(UTC)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        minute = now.replace(second=0, microsecond=0)
        ms = timedelta(milliseconds=1)
        days, minutes = f"days{attempt}", f"minutes{attempt}"
        insert_events(
            db_url,
            a["project_id"],
            days,
            [
                (today, {"k": "start of today"}),
                (today - timedelta(days=6), {"k": "first day of this_7_days"}),
                (today - timedelta(days=6) - ms, {"k": "last instant before this_7_days"}),
                (today - timedelta(days=7), {"k": "first instant of previous_7_days"}),
                (today - timedelta(days=7) - ms, {"k": "before previous_7_days"}),
                (today - ms, {"k": "last instant of yesterday"}),
            ],
        )
        insert_events(
            db_url,
            a["project_id"],
            minutes,
            [
                (minute - timedelta(minutes=2), {"k": "first instant of previous_2_minutes"}),
                (minute - timedelta(minutes=2) - ms, {"k": "before previous_2_minutes"}),
                (minute, {"k": "the current minute"}),
            ],
        )
        got = {
            "this_7_days": count(days, "this_7_days"),
            "previous_7_days": count(days, "previous_7_days"),
            "this_1_days": count(days, "this_1_days"),
            "previous_1_days": count(days, "previous_1_days"),
            "previous_2_minutes": count(minutes, "previous_2_minutes"),
            "this_1_minutes": count(minutes, "this_1_minutes"),
        }
        if datetime.now(UTC).replace(second=0, microsecond=0) == minute:
            break  # no unit boundary passed while querying
    assert got == {
        # start of today, 6 days ago, the last instant of yesterday
        "this_7_days": 3,
        # 7 days ago (start), 6 days ago, 6 days ago minus 1 ms, the last instant of yesterday
        "previous_7_days": 4,
        "this_1_days": 1,
        "previous_1_days": 1,
        "previous_2_minutes": 1,
        "this_1_minutes": 1,
    }


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"event_collection": "p", "timeframe": "last_week"},
        {"event_collection": "p", "timeframe": {"start": "2026-01-02", "end": "2026-01-01"}},
        {"event_collection": "p", "timezone": "Mars/Olympus"},
        {"event_collection": "p", "filters": [{"property_name": "a", "operator": "like"}]},
        {"event_collection": "p", "filters": _f("a", "gt", [1])},
        {"event_collection": "p", "filters": _f("a", "regex", "(")},
        {"event_collection": "p", "filters": _f("a", "within", {"coordinates": [1]})},
        {"event_collection": "p", "filters": _f("a..b", "eq", 1)},
        {"event_collection": "p", "interval": "daily"},
        {"event_collection": "p", "timeframe": "this_1_years", "interval": "every_0_days"},
        {"event_collection": "p", "timeframe": "this_100_years", "interval": "minutely"},
    ],
)
def test_bad_queries_are_400(loaded: tuple, body: dict) -> None:
    client, pid, headers = loaded
    r = client.post(f"/3.0/projects/{pid}/queries/count", headers=headers, json=body)
    assert r.status_code == 400, r.text
    assert set(r.json()) >= {"error_code", "message"}


def test_extraction(loaded: tuple) -> None:
    client, pid, headers = loaded
    url = f"/3.0/projects/{pid}/queries/extraction"
    r = client.post(url, headers=headers, json={"event_collection": "purchases", "timeframe": WEEK})
    events = r.json()["result"]
    assert [e["n"] for e in events] == [1, 2, 3, "3", 10.5]  # oldest first
    assert set(events[0]["keen"]) == {"id", "timestamp", "created_at"}
    r = client.get(
        url,
        params={
            "event_collection": "purchases",
            "latest": 2,
            "property_names": '["n", "user.id", "keen.timestamp"]',
            "filters": '[{"property_name": "plan", "operator": "exists", "property_value": true}]',
        },
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"] == [
        {"n": "3", "keen": {"timestamp": "2026-03-04T12:00:00.000Z"}},
        {"n": 10.5, "keen": {"timestamp": "2026-03-05T12:00:00.000Z"}},
    ]
    r = client.post(
        url,
        headers=headers,
        json={"event_collection": "purchases", "filters": _f("user.id", "eq", "u1")},
    )
    assert r.json()["result"][0]["user"] == {"id": "u1", "age": 30}


def test_extraction_limit(
    client: TestClient, projects: tuple, db_url: str, make_settings: object
) -> None:
    from app.api.app import create_app

    a, _ = projects
    insert_events(db_url, a["project_id"], "many", [(T0, {"i": i}) for i in range(5)])
    app = create_app(make_settings(db_url, query_extraction_limit=3))  # type: ignore[operator]
    with TestClient(app) as small:
        url = f"/3.0/projects/{a['project_id']}/queries/extraction"
        h = auth(a["read_key"])
        r = small.post(url, headers=h, json={"event_collection": "many"})
        assert r.status_code == 400
        r = small.post(url, headers=h, json={"event_collection": "many", "latest": 3})
        assert len(r.json()["result"]) == 3
