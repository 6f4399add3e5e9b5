"""The README's query semantics, pinned literally: presence for ne/not_contains, `in` on list
elements, Sunday weeks, `this_N_units` to the end of the current unit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from app.api.timeframes import QueryError, resolve_timeframe
from tests.api.conftest import auth, insert_events

T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)  # a Wednesday
EVENTS = [
    (T0, {"plan": "pro", "tags": ["a", "b"]}),
    (T0, {"plan": "free", "tags": ["c"]}),
    (T0, {"other": 1}),  # neither plan nor tags
]


def _count(client: TestClient, pid: str, key: str, filters: list[dict]) -> int:
    body = {
        "event_collection": "semantics",
        "timeframe": {"start": "2026-03-01T00:00:00Z", "end": "2026-03-08T00:00:00Z"},
        "filters": filters,
    }
    r = client.post(f"/3.0/projects/{pid}/queries/count", headers=auth(key), json=body)
    assert r.status_code == 200, r.text
    return r.json()["result"]


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("ne", "pro", 1),  # "free" only: the event without `plan` does not match
        ("not_contains", "x", 2),  # pro and free; absent is not "not containing"
        ("in", ["a"], 1),  # a list property matches when one element is in the list
        ("in", ["c", "zzz"], 1),
        ("eq", "b", 1),
    ],
)
def test_presence_and_list_semantics(
    client: TestClient, projects: tuple, db_url: str, operator: str, value: object, expected: int
) -> None:
    a, _b = projects
    insert_events(db_url, a["project_id"], "semantics", EVENTS)
    name = "tags" if operator in ("in", "eq") else "plan"
    flt = [{"property_name": name, "operator": operator, "property_value": value}]
    assert _count(client, a["project_id"], a["read_key"], flt) == expected


def test_weeks_start_on_sunday() -> None:
    wednesday = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)
    frame = resolve_timeframe("this_1_weeks", UTC, now=wednesday)
    assert frame is not None
    assert frame.start == datetime(2026, 3, 1, tzinfo=UTC)  # Sunday 1 March 2026
    assert frame.end == datetime(2026, 3, 8, tzinfo=UTC)
    previous = resolve_timeframe("previous_1_weeks", UTC, now=wednesday)
    assert previous is not None
    assert previous.start == datetime(2026, 2, 22, tzinfo=UTC)
    assert previous.end == datetime(2026, 3, 1, tzinfo=UTC)


def test_this_n_units_runs_to_the_end_of_the_current_unit() -> None:
    now = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)
    days = resolve_timeframe("this_7_days", UTC, now=now)
    assert days is not None
    assert (days.start, days.end) == (
        datetime(2026, 2, 26, tzinfo=UTC),
        datetime(2026, 3, 5, tzinfo=UTC),
    )
    hours = resolve_timeframe("previous_24_hours", UTC, now=now)
    assert hours is not None
    assert hours.end == datetime(2026, 3, 4, 15, tzinfo=UTC)
    assert hours.end - hours.start == timedelta(hours=24)


@pytest.mark.parametrize("name", ["this_7_days\n", "this_7_days\nx", " this_7_days"])
def test_timeframe_names_must_match_whole(name: str) -> None:
    with pytest.raises(QueryError):
        resolve_timeframe(name, UTC, now=T0)


@pytest.mark.parametrize("name", ["this_3000_years", "previous_100000_years", "this_999999_months"])
def test_timeframes_past_the_calendar_are_a_query_error(name: str) -> None:
    with pytest.raises(QueryError, match="outside years 1 to 9999"):
        resolve_timeframe(name, UTC, now=T0)


def test_timeframe_past_the_calendar_answers_400(client: TestClient, projects: tuple) -> None:
    a, _b = projects
    r = client.get(
        f"/3.0/projects/{a['project_id']}/queries/count",
        params={"event_collection": "x", "timeframe": "this_3000_years"},
        headers=auth(a["read_key"]),
    )
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "InvalidQueryError"
