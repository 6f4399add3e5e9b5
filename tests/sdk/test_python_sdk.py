"""Keen's official Python SDK (PyPI `keen` 0.7.0) against a real `inbound up` (issue #17).

Every call goes through the SDK itself: its URLs, its GET query strings (filters and
timeframes as JSON), its error handling. Results are compared exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from keen.client import KeenClient
from keen.exceptions import KeenApiError

from tests.sdk.conftest import STORE_TIMEOUT, Inbound, SdkProject

# One hour-aligned window a month before the suite was written; every event sits inside it.
WINDOW = {"start": "2026-11-02T00:00:00.000Z", "end": "2026-11-02T04:00:00.000Z"}
PURCHASES = [
    (
        datetime(2026, 11, 2, 1, 10, tzinfo=UTC),
        {"item": "widget", "price": 10, "user": {"id": "u1"}},
    ),
    (
        datetime(2026, 11, 2, 1, 40, tzinfo=UTC),
        {"item": "widget", "price": 20, "user": {"id": "u2"}},
    ),
    (datetime(2026, 11, 2, 3, 5, tzinfo=UTC), {"item": "gadget", "price": 5, "user": {"id": "u1"}}),
]
# Sent with add_events, with keen.timestamp in the body as Keen's batch API takes it.
BATCH = {
    "purchases": [
        {
            "item": "gizmo",
            "price": 15,
            "user": {"id": "u3"},
            "keen": {"timestamp": "2026-11-02T03:50:00.000Z"},
        }
    ],
    "signups": [
        {"plan": "pro", "keen": {"timestamp": "2026-11-02T02:30:00.000Z"}},
        {"plan": "free", "keen": {"timestamp": "2026-11-02T02:45:00.000Z"}},
    ],
}


def _client(inbound_up: Inbound, project: SdkProject) -> KeenClient:
    return KeenClient(
        project_id=project.project_id,
        write_key=project.write_key,
        read_key=project.read_key,
        master_key=project.master_key,
        base_url=inbound_up.base_url,
    )


@pytest.fixture(scope="module")
def keen(inbound_up: Inbound, sdk_project: SdkProject) -> KeenClient:
    return _client(inbound_up, sdk_project)


@pytest.fixture(scope="module")
def recorded(keen: KeenClient) -> dict:
    """The events written through the SDK, once the worker has stored all of them."""
    from tests.support.worker import wait_until

    for at, body in PURCHASES:
        assert keen.add_event("purchases", body, timestamp=at) is None  # no error raised
    answer = keen.add_events(BATCH)

    def stored() -> bool:
        return (
            keen.count("purchases", timeframe=WINDOW) == 4
            and keen.count("signups", timeframe=WINDOW) == 2
        )

    wait_until(stored, STORE_TIMEOUT, "the SDK's events did not become queryable")
    return answer


def test_add_events_answers_per_event(recorded: dict) -> None:
    assert recorded == {
        "purchases": [{"success": True}],
        "signups": [{"success": True}, {"success": True}],
    }


def test_count_with_a_filter(keen: KeenClient, recorded: dict) -> None:
    price_at_least_10 = [{"property_name": "price", "operator": "gte", "property_value": 10}]
    assert keen.count("purchases", timeframe=WINDOW, filters=price_at_least_10) == 3
    nested = [{"property_name": "user.id", "operator": "eq", "property_value": "u1"}]
    assert keen.count("purchases", timeframe=WINDOW, filters=nested) == 2


def test_count_by_interval(keen: KeenClient, recorded: dict) -> None:
    assert keen.count("purchases", timeframe=WINDOW, interval="hourly") == [
        {
            "value": 0,
            "timeframe": {"start": "2026-11-02T00:00:00.000Z", "end": "2026-11-02T01:00:00.000Z"},
        },
        {
            "value": 2,
            "timeframe": {"start": "2026-11-02T01:00:00.000Z", "end": "2026-11-02T02:00:00.000Z"},
        },
        {
            "value": 0,
            "timeframe": {"start": "2026-11-02T02:00:00.000Z", "end": "2026-11-02T03:00:00.000Z"},
        },
        {
            "value": 2,
            "timeframe": {"start": "2026-11-02T03:00:00.000Z", "end": "2026-11-02T04:00:00.000Z"},
        },
    ]


def test_count_by_group(keen: KeenClient, recorded: dict) -> None:
    groups = keen.count("purchases", timeframe=WINDOW, group_by="item")
    assert sorted(groups, key=lambda g: g["item"]) == [
        {"item": "gadget", "result": 1},
        {"item": "gizmo", "result": 1},
        {"item": "widget", "result": 2},
    ]


def test_extraction_latest_and_property_names(keen: KeenClient, recorded: dict) -> None:
    latest = keen.extraction("purchases", timeframe=WINDOW, latest=2)
    assert sorted(e["item"] for e in latest) == ["gadget", "gizmo"]
    assert all(set(e["keen"]) >= {"id", "timestamp", "created_at"} for e in latest)
    picked = keen.extraction("purchases", timeframe=WINDOW, property_names=["item", "user.id"])
    assert sorted(picked, key=lambda e: (e["item"], e["user"]["id"])) == [
        {"item": "gadget", "user": {"id": "u1"}},
        {"item": "gizmo", "user": {"id": "u3"}},
        {"item": "widget", "user": {"id": "u1"}},
        {"item": "widget", "user": {"id": "u2"}},
    ]


def test_the_analyses(keen: KeenClient, recorded: dict) -> None:
    assert keen.sum("purchases", "price", timeframe=WINDOW) == 50
    assert keen.average("purchases", "price", timeframe=WINDOW) == 12.5
    assert keen.minimum("purchases", "price", timeframe=WINDOW) == 5
    assert keen.maximum("purchases", "price", timeframe=WINDOW) == 20
    assert keen.median("purchases", "price", timeframe=WINDOW) == 12.5
    assert keen.percentile("purchases", "price", percentile=25, timeframe=WINDOW) == 8.75
    assert keen.count_unique("purchases", "user.id", timeframe=WINDOW) == 3
    assert sorted(keen.select_unique("purchases", "item", timeframe=WINDOW)) == [
        "gadget",
        "gizmo",
        "widget",
    ]
    by_item = keen.sum("purchases", "price", timeframe=WINDOW, group_by="item")
    assert sorted(by_item, key=lambda g: g["item"]) == [
        {"item": "gadget", "result": 5},
        {"item": "gizmo", "result": 15},
        {"item": "widget", "result": 30},
    ]


def test_an_invalid_event_raises_at_once(
    keen: KeenClient, inbound_up: Inbound, sdk_project: SdkProject
) -> None:
    with pytest.raises(KeenApiError) as raised:
        keen.add_event("purchases", {"$bad": 1})
    error = raised.value.api_error
    assert (error["name"], error["error_code"]) == (
        "InvalidPropertyNameError",
        "invalid_property_name",
    )
    assert "invalid_property_name" in str(raised.value)
    # Recorded as any rejection: the customer finds it under the id the SDK was given.
    row = httpx.get(
        f"{inbound_up.base_url}/3.0/projects/{sdk_project.project_id}/errors/{error['error_id']}",
        headers={"Authorization": sdk_project.master_key},
        timeout=10,
    )
    assert row.status_code == 200, row.text
    assert (row.json()["code"], row.json()["stage"]) == ("invalid_property_name", "http")


def test_a_batch_with_an_invalid_event_answers_it_per_event(
    keen: KeenClient, poll: Callable
) -> None:
    at = {"timestamp": "2026-11-02T00:30:00.000Z"}
    answer = keen.add_events({"refunds": [{"amount": 3, "keen": at}, {"$bad": 1, "keen": at}]})
    assert answer["refunds"][0] == {"success": True}
    failed = answer["refunds"][1]
    assert failed["success"] is False
    assert (failed["error"]["name"], failed["error"]["error_code"]) == (
        "InvalidPropertyNameError",
        "invalid_property_name",
    )
    assert failed["error"]["description"] and failed["error"]["error_id"]
    poll(lambda: keen.count("refunds", timeframe=WINDOW) == 1)


def test_multi_analysis(keen: KeenClient, recorded: dict) -> None:
    analyses = {
        "revenue": {"analysis_type": "sum", "target_property": "price"},
        "buyers": {"analysis_type": "count_unique", "target_property": "user.id"},
        "orders": {"analysis_type": "count"},
    }
    assert keen.multi_analysis("purchases", analyses, timeframe=WINDOW) == {
        "revenue": 50,
        "buyers": 3,
        "orders": 4,
    }
    by_item = keen.multi_analysis("purchases", analyses, timeframe=WINDOW, group_by="item")
    assert sorted(by_item, key=lambda g: g["item"]) == [
        {"item": "gadget", "revenue": 5, "buyers": 1, "orders": 1},
        {"item": "gizmo", "revenue": 15, "buyers": 1, "orders": 1},
        {"item": "widget", "revenue": 30, "buyers": 2, "orders": 2},
    ]


def test_funnel(keen: KeenClient, recorded: dict) -> None:
    def step(item: str, **extra: object) -> dict:
        return {
            "event_collection": "purchases",
            "actor_property": "user.id",
            "filters": [{"property_name": "item", "operator": "eq", "property_value": item}],
            **extra,
        }

    # Bought a widget (u1, u2), then a gadget (u1).
    assert keen.funnel([step("widget"), step("gadget")], timeframe=WINDOW) == [2, 1]
    answer = keen.funnel(
        [step("widget"), step("gadget", with_actors=True)], timeframe=WINDOW, all_keys=True
    )
    assert answer["result"] == [2, 1]
    assert answer["actors"] == [None, ["u1"]]
    assert [s["event_collection"] for s in answer["steps"]] == ["purchases", "purchases"]


def test_collections_and_their_properties(keen: KeenClient, recorded: dict) -> None:
    purchases = keen.get_collection("purchases")
    assert {k: purchases["properties"][k] for k in ("item", "price", "user.id")} == {
        "item": "string",
        "price": "num",
        "user.id": "string",
    }
    assert purchases["properties"]["keen.timestamp"] == "datetime"
    listed = {c["name"]: c for c in keen.get_all_collections()}
    assert {"purchases", "signups"} <= set(listed)
    assert listed["signups"]["properties"]["plan"] == "string"
    assert listed["purchases"]["properties"] == purchases["properties"]
    assert listed["purchases"]["url"].endswith(f"/projects/{keen.project_id}/events/purchases")


def test_delete_events_with_filters_and_timeframe(keen: KeenClient, poll: Callable) -> None:
    at = "2026-11-02T02:10:00.000Z"
    events = [{"n": n, "keep": n == 2, "keen": {"timestamp": at}} for n in (1, 2, 3)]
    keen.add_events({"trash": events})
    poll(lambda: keen.count("trash", timeframe=WINDOW) == 3)
    dropped = [{"property_name": "keep", "operator": "eq", "property_value": False}]
    assert keen.delete_events("trash", timeframe=WINDOW, filters=dropped) is True
    # Answered once deleted: the count right after is exact.
    assert keen.count("trash", timeframe=WINDOW) == 1
    assert [e["n"] for e in keen.extraction("trash", timeframe=WINDOW)] == [2]
