"""ingest.failed `counts_truncated`: true when and only when the (code, collection) rows of one
delivery pass the limit, which keeps one body bounded however many collections failed.

The README shows the field (`"counts_truncated": false`) but states no number; the limit of
100 rows is app/webhooks/events.py's, pinned here as a literal so a change is deliberate.
"""

from __future__ import annotations

import pytest
from standardwebhooks.webhooks import Webhook as StandardVerifier

from app.webhooks.dispatcher import Dispatcher
from tests.webhooks.helpers import (
    add_notifications,
    dispatch_once,
    failed_payload,
    new_project,
    new_webhook,
)

COUNT_ROWS_LIMIT = 100


@pytest.mark.parametrize(
    ("rows", "truncated"),
    [(1, False), (COUNT_ROWS_LIMIT - 1, False), (COUNT_ROWS_LIMIT, False)]
    + [(COUNT_ROWS_LIMIT + 1, True), (COUNT_ROWS_LIMIT + 40, True)],
)
def test_counts_truncated_past_the_limit_only(
    engine, receiver, hook_settings, rows: int, truncated: bool
) -> None:
    project = new_project(engine)
    _hook, secret = new_webhook(engine, project, receiver.url(), ["ingest.failed"])
    # One (code, collection) pair per collection; the first collection fails three times so
    # it must lead the counts, and two codes so by_code has something to add up.
    payloads = [failed_payload("c000", "invalid_json") for _ in range(3)]
    for i in range(1, rows):
        code = "invalid_json" if i % 2 else "event_too_large"
        payloads.append(failed_payload(f"c{i:03d}", code))
    add_notifications(engine, project, "ingest.failed", payloads)

    dispatch_once(Dispatcher(hook_settings(), engine), passes=2)

    (got,) = receiver.wait_for(1)
    data = StandardVerifier(secret).verify(got.body, got.headers)["data"]
    assert data["counts_truncated"] is truncated
    assert len(data["counts"]) == min(rows, COUNT_ROWS_LIMIT)
    assert data["counts"][0] == {"code": "invalid_json", "collection": "c000", "count": 3}
    # The totals are never truncated, only the breakdown.
    assert data["total"] == len(payloads)
    assert sum(data["by_code"].values()) == len(payloads)
    listed = sum(row["count"] for row in data["counts"])
    if truncated:
        assert listed == 3 + COUNT_ROWS_LIMIT - 1
    else:
        assert listed == len(payloads)
        assert {row["collection"] for row in data["counts"]} == {f"c{i:03d}" for i in range(rows)}
