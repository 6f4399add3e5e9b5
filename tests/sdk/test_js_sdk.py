"""Keen's official JavaScript tracking SDK (npm `keen-tracking` 5, run by the machine's Node.js)
against a real `inbound up` (issue #17). keen-tracking only records events; what it recorded
is read back with the count and extraction queries (through Keen's Python SDK)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from keen.client import KeenClient

from tests.sdk.conftest import Inbound, SdkProject

RUNNER = Path(__file__).parent / "js" / "run.js"
WINDOW = {"start": "2026-11-03T00:00:00.000Z", "end": "2026-11-03T02:00:00.000Z"}


def _node() -> str:
    node = shutil.which("node")
    assert node is not None, "Node.js is needed: the machine's `node` runs keen-tracking"
    assert (RUNNER.parent / "node_modules" / "keen-tracking").is_dir(), (
        "keen-tracking is not installed: npm ci --prefix tests/sdk/js"
    )
    return node


def run_js(inbound_up: Inbound, project: SdkProject, calls: list[dict[str, Any]]) -> list[dict]:
    """Each call made by keen-tracking in one Node.js process; its result or error, in order."""
    payload = {
        "client": {
            "projectId": project.project_id,
            "writeKey": project.write_key,
            "host": inbound_up.host,
            "port": inbound_up.port,
        },
        "calls": calls,
    }
    done = subprocess.run(
        [_node(), str(RUNNER)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=RUNNER.parent,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert len(results) == len(calls)
    return results


@pytest.fixture(scope="module")
def reader(inbound_up: Inbound, sdk_project: SdkProject) -> KeenClient:
    return KeenClient(
        project_id=sdk_project.project_id,
        read_key=sdk_project.read_key,
        base_url=inbound_up.base_url,
    )


def test_record_event_and_record_events(
    inbound_up: Inbound, sdk_project: SdkProject, reader: KeenClient, poll: Callable
) -> None:
    results = run_js(
        inbound_up,
        sdk_project,
        [
            {
                "method": "recordEvent",
                "args": [
                    "purchases",
                    {"item": "lamp", "price": 30, "keen": {"timestamp": "2026-11-03T00:20:00Z"}},
                ],
            },
            {
                "method": "recordEvents",
                "args": [
                    {
                        "purchases": [
                            {
                                "item": "desk",
                                "price": 120,
                                "keen": {"timestamp": "2026-11-03T01:10:00Z"},
                            },
                            {
                                "item": "lamp",
                                "price": 25,
                                "keen": {"timestamp": "2026-11-03T01:30:00Z"},
                            },
                        ],
                        "pageviews": [{"page": "/", "keen": {"timestamp": "2026-11-03T00:05:00Z"}}],
                    }
                ],
            },
        ],
    )
    assert results == [
        {"ok": True, "result": {"created": True}},
        {
            "ok": True,
            "result": {
                "purchases": [{"success": True}, {"success": True}],
                "pageviews": [{"success": True}],
            },
        },
    ]
    # Each collection is its own topic: wait for both.
    poll(
        lambda: (
            reader.count("purchases", timeframe=WINDOW) == 3
            and reader.count("pageviews", timeframe=WINDOW) == 1
        ),
        90,
    )
    assert reader.count("purchases", timeframe=WINDOW, interval="hourly") == [
        {
            "value": 1,
            "timeframe": {"start": "2026-11-03T00:00:00.000Z", "end": "2026-11-03T01:00:00.000Z"},
        },
        {
            "value": 2,
            "timeframe": {"start": "2026-11-03T01:00:00.000Z", "end": "2026-11-03T02:00:00.000Z"},
        },
    ]
    lamps = [{"property_name": "item", "operator": "eq", "property_value": "lamp"}]
    assert reader.sum("purchases", "price", timeframe=WINDOW, filters=lamps) == 55
    stored = reader.extraction("purchases", timeframe=WINDOW, property_names=["item", "price"])
    assert sorted(stored, key=lambda e: e["price"]) == [
        {"item": "lamp", "price": 25},
        {"item": "lamp", "price": 30},
        {"item": "desk", "price": 120},
    ]
    # keen.timestamp sent without milliseconds is stored in Keen's form.
    [first] = reader.extraction("pageviews", timeframe=WINDOW)
    assert first["keen"]["timestamp"] == "2026-11-03T00:05:00.000Z"


def test_an_invalid_event_is_an_error_at_once(inbound_up: Inbound, sdk_project: SdkProject) -> None:
    [single, batch] = run_js(
        inbound_up,
        sdk_project,
        [
            {"method": "recordEvent", "args": ["purchases", {"$bad": 1}]},
            {"method": "recordEvents", "args": [{"purchases": [{"$bad": 1}]}]},
        ],
    )
    # keen-tracking rejects with an Error whose code is the body's error_code.
    assert single["ok"] is False
    assert single["error"]["code"] == "invalid_property_name"
    assert "$bad" in single["error"]["message"]
    # A batch answers per event, as Keen's did: the SDK hands the answer back.
    assert batch["ok"] is True
    [item] = batch["result"]["purchases"]
    assert item["success"] is False
    assert (item["error"]["name"], item["error"]["error_code"]) == (
        "InvalidPropertyNameError",
        "invalid_property_name",
    )
    # Both are recorded as rejections the customer can look up.
    listed = httpx.get(
        f"{inbound_up.base_url}/3.0/projects/{sdk_project.project_id}/errors",
        params={"code": "invalid_property_name"},
        headers={"Authorization": sdk_project.master_key},
        timeout=10,
    )
    assert listed.status_code == 200, listed.text
    ids = {e["error_id"] for e in listed.json()["errors"]}
    assert item["error"]["error_id"] in ids
    assert len(ids) == 2
