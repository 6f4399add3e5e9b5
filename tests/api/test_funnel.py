"""Keen's funnel on SQLite and PostgreSQL: ordered steps, per-step timeframes and filters,
optional and inverted steps, with_actors, the echoed steps, GET and POST, and every refusal.
Every expected count is worked out by hand from the events below."""

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
IN_APRIL = datetime(2026, 4, 2, 12, 0, tzinfo=UTC)
# Project A's master key, by project id (the fixture creates the project).
_MASTERS: dict[str, str] = {}
WEEK = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-08T00:00:00Z"}
APRIL = {"start": "2026-04-01T00:00:00Z", "end": "2026-04-08T00:00:00Z"}


def _user(uid: object, **more: object) -> dict:
    return {"user": {"id": uid}, **more}


# In WEEK the signups' actors are u1, u2, u3, u4 and the number 5 (u1 twice; one event has
# no user, one a null id: neither is an actor); u9 signed up in April.
SIGNUPS = [
    (T0, _user("u1", plan="pro")),
    (T0 + HOUR, _user("u2", plan="free")),
    (T0 + DAY, _user("u3", plan="pro")),
    (T0 + 2 * DAY, _user("u4", plan="free")),
    (T0 + 2 * DAY, _user("u1", plan="pro")),
    (T0 + 3 * DAY, _user(5, plan="free")),
    (T0 + 3 * DAY, {"plan": "free"}),
    (T0 + 3 * DAY, _user(None, plan="free")),
    (IN_APRIL, _user("u9", plan="pro")),
]
# In WEEK the purchasers are u1 (twice), u3, the string "5" (not the number 5) and u7 (who
# never signed up); u2 bought in April.
PURCHASES = [
    (T0 + DAY, _user("u1", price=10)),
    (T0 + DAY, _user("u1", price=5)),
    (T0 + 2 * DAY, _user("u3", price=20)),
    (T0 + 2 * DAY, _user("5", price=1)),
    (T0 + 3 * DAY, _user("u7", price=3)),
    (IN_APRIL, _user("u2", price=1)),
]
REVIEWS = [(T0 + 3 * DAY, _user("u3")), (T0 + 3 * DAY, _user("u2"))]


@pytest.fixture
def make_client(
    db_url: str, make_settings: Callable[..., Settings]
) -> Iterator[Callable[..., tuple[TestClient, str, dict]]]:
    """A client on settings with the given overrides; project A holds the events above, and
    project B the same events plus more signups (which A's funnels must never count)."""
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
            for pid in (a, b):
                insert_events(db_url, pid, "signups", SIGNUPS)
                insert_events(db_url, pid, "purchases", PURCHASES)
                insert_events(db_url, pid, "reviews", REVIEWS)
            insert_events(db_url, b, "signups", [(T0, _user("u7")), (T0, _user("u8"))])
        _MASTERS[made["a"]["project_id"]] = made["a"]["master_key"]
        return client, made["a"]["project_id"], auth(made["a"]["read_key"])

    yield _make
    for client, settings in opened:
        client.__exit__(None, None, None)
        engine_for(settings.effective_database_url).dispose()


@pytest.fixture
def api(make_client: Callable) -> tuple[TestClient, str, dict]:
    return make_client()


def _step(collection: str, **more: object) -> dict:
    return {"event_collection": collection, "actor_property": "user.id", **more}


def _post(api: tuple, steps: list, **body: object):  # noqa: ANN202
    client, pid, headers = api
    payload = {"steps": steps, "timeframe": WEEK, **body}
    return client.post(f"/3.0/projects/{pid}/queries/funnel", headers=headers, json=payload)


def _counts(api: tuple, steps: list, **body: object) -> list:
    r = _post(api, steps, **body)
    assert r.status_code == 200, r.text
    return r.json()["result"]


def _refused(r, reason: str, words: str) -> None:  # noqa: ANN001
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error_code"] == "InvalidQueryError", body
    assert body["reason"] == reason, body
    assert words in body["message"], body


def test_two_steps_count_actors_of_step_one_in_step_two(api: tuple) -> None:
    r = _post(api, [_step("signups"), _step("purchases")])
    assert r.status_code == 200, r.text
    echoed = {
        "actor_property": "user.id",
        "timeframe": WEEK,
        "timezone": None,
        "filters": [],
        "optional": False,
        "inverted": False,
        "with_actors": False,
    }
    # Step 2: u1 and u3 signed up and bought; "5" is not the actor 5, u7 never signed up.
    assert r.json() == {
        "result": [5, 2],
        "steps": [
            {"event_collection": "signups", **echoed},
            {"event_collection": "purchases", **echoed},
        ],
    }


def test_each_step_narrows_the_next(api: tuple) -> None:
    # Reviews by u3 and u2; of u1 and u3, only u3.
    assert _counts(api, [_step("signups"), _step("purchases"), _step("reviews")]) == [5, 2, 1]


def test_a_single_step_counts_distinct_actors(api: tuple) -> None:
    assert _counts(api, [_step("purchases")]) == [4]


def test_inverted_step_counts_the_actors_not_in_it(api: tuple) -> None:
    steps = [_step("signups"), _step("purchases", inverted=True), _step("reviews")]
    # Did not buy: u2, u4, 5; of those, reviewed: u2.
    assert _counts(api, steps) == [5, 3, 1]


def test_optional_step_is_counted_but_does_not_narrow(api: tuple) -> None:
    steps = [_step("signups"), _step("purchases", optional=True), _step("reviews")]
    # Step 3 from the signups (u1..u4, 5): reviewed u2 and u3.
    assert _counts(api, steps) == [5, 2, 2]


def test_steps_filters_apply_to_their_own_step(api: tuple) -> None:
    pro = [{"property_name": "plan", "operator": "eq", "property_value": "pro"}]
    big = [{"property_name": "price", "operator": "gte", "property_value": 20}]
    # Pro signups in WEEK: u1, u3; of those, bought for 20 or more: u3.
    steps = [_step("signups", filters=pro), _step("purchases", filters=big)]
    assert _counts(api, steps) == [2, 1]
    r = _post(api, steps)
    assert r.json()["steps"][1]["filters"] == [
        {"property_name": "price", "operator": "gte", "property_value": 20}
    ]


def test_a_steps_own_timeframe_replaces_the_funnels(api: tuple) -> None:
    steps = [_step("signups"), _step("purchases", timeframe=APRIL)]
    r = _post(api, steps)
    assert r.status_code == 200, r.text
    # Bought in April: only u2, who signed up in WEEK.
    assert r.json()["result"] == [5, 1]
    assert [s["timeframe"] for s in r.json()["steps"]] == [WEEK, APRIL]
    # Without any timeframe: all time (u9 signed up in April).
    assert _counts(api, [_step("signups")], timeframe=None) == [6]


def test_with_actors_lists_the_steps_actors(api: tuple) -> None:
    steps = [_step("signups", with_actors=True), _step("purchases"), _step("reviews")]
    steps[2]["with_actors"] = True
    r = _post(api, steps)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["result"] == [5, 2, 1]
    # Numbers sort before strings.
    assert body["actors"] == [[5, "u1", "u2", "u3", "u4"], None, ["u3"]]
    assert [s["with_actors"] for s in body["steps"]] == [True, False, True]


def test_with_actors_is_bounded_by_the_extraction_limit(make_client: Callable) -> None:
    api = make_client(query_extraction_limit=4)
    r = _post(api, [_step("signups", with_actors=True)])
    assert r.status_code == 400, r.text
    assert "at most 4" in r.json()["message"]
    # The counts alone are not bounded by it.
    assert _counts(api, [_step("signups")]) == [5]
    r = _post(api, [_step("signups"), _step("purchases", with_actors=True)])
    assert r.json()["actors"] == [None, ["u1", "u3"]]


def test_get_takes_json_parameters(api: tuple) -> None:
    client, pid, headers = api
    steps = [_step("signups"), _step("purchases", inverted="true"), _step("reviews")]
    r = client.get(
        f"/3.0/projects/{pid}/queries/funnel",
        params={"steps": orjson.dumps(steps).decode(), "timeframe": orjson.dumps(WEEK).decode()},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"] == [5, 3, 1]
    assert r.json()["steps"][1]["inverted"] is True


def test_relative_timeframe_and_timezone_default_from_the_funnel(api: tuple) -> None:
    # Every event is in the past: this_1000_years (to the end of this year) holds them all,
    # and the step echoes the funnel's relative timeframe and timezone.
    r = _post(api, [_step("signups")], timeframe="this_1000_years", timezone="Europe/Berlin")
    assert r.status_code == 200, r.text
    assert r.json()["result"] == [6]
    step = r.json()["steps"][0]
    assert (step["timeframe"], step["timezone"]) == ("this_1000_years", "Europe/Berlin")


def test_an_access_keys_filters_apply_to_every_step(api: tuple) -> None:
    client, pid, _ = api
    master = _MASTERS[pid]
    r = client.post(
        f"/3.0/projects/{pid}/keys",
        headers=auth(master),
        json={
            "name": "pro only",
            "permitted": ["queries"],
            "options": {
                "queries": {
                    "filters": [
                        {"property_name": "plan", "operator": "eq", "property_value": "pro"}
                    ]
                }
            },
        },
    )
    assert r.status_code in (200, 201), r.text
    key = r.json()["key"]
    r = client.post(
        f"/3.0/projects/{pid}/queries/funnel",
        headers=auth(key),
        json={"steps": [_step("signups"), _step("purchases")], "timeframe": WEEK},
    )
    assert r.status_code == 200, r.text
    # Pro signups u1, u3; no purchase has a plan, so none passes the key's filter.
    assert r.json()["result"] == [2, 0]
    assert r.json()["steps"][0]["filters"] == []


def test_refusals_have_a_stable_reason(api: tuple) -> None:
    _refused(_post(api, []), "empty_steps", "steps is required")
    client, pid, headers = api
    r = client.post(f"/3.0/projects/{pid}/queries/funnel", headers=headers, json={})
    _refused(r, "empty_steps", "steps is required")
    _refused(_post(api, [_step("signups")] * 21), "too_many_steps", "at most 20")
    assert _counts(api, [_step("signups")] * 20) == [5] * 20
    _refused(
        _post(api, [{"event_collection": "signups"}]), "invalid_actor_property", "actor_property"
    )
    _refused(
        _post(api, [_step("signups", actor_property="user..id")]),
        "invalid_actor_property",
        "steps[0].actor_property",
    )
    _refused(
        _post(api, [_step("signups"), _step("purchases", timeframe="this_7_fortnights")]),
        "invalid_timeframe",
        "steps[1]",
    )
    _refused(_post(api, [_step("signups")], timeframe="yesteryear"), "invalid_timeframe", "year")
    _refused(_post(api, [_step("signups", inverted=True)]), "invalid_step", "neither inverted nor")
    _refused(
        _post(api, [_step("signups"), _step("purchases")], timezone="Mars/Olympus"),
        "invalid_timeframe",
        "unknown timezone",
    )
    _refused(_post(api, [{"actor_property": "user.id"}]), "invalid_step", "event_collection")
    bad_filter = [{"property_name": "plan", "operator": "like", "property_value": "p"}]
    _refused(_post(api, [_step("signups", filters=bad_filter)]), "invalid_step", "unknown filter")
    r = client.get(f"/3.0/projects/{pid}/queries/funnel", params={"steps": "[{"}, headers=headers)
    assert r.status_code == 400, r.text
    r = client.get(
        f"/3.0/projects/{pid}/queries/funnel",
        params={"steps": orjson.dumps([_step("signups", optional="maybe")]).decode()},
        headers=headers,
    )
    _refused(r, "invalid_step", "optional is true or false")


def test_the_query_timeout_bounds_the_funnel(make_client: Callable) -> None:
    api = make_client(query_timeout_seconds=0.000001)
    r = _post(api, [_step("signups"), _step("purchases")])
    assert r.status_code == 503, r.text
    assert r.json()["error_code"] == "QueryTimeoutError"
