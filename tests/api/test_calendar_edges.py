"""Times at the calendar's ends in query parameters: a 400 that says why, never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import auth


@pytest.mark.parametrize(
    "since",
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"],
)
def test_an_errors_window_outside_the_utc_calendar_is_a_400(
    client: TestClient, projects: tuple[dict[str, str], dict[str, str]], since: str
) -> None:
    a, _ = projects
    answer = client.get(
        f"/3.0/projects/{a['project_id']}/errors",
        params={"since": since},
        headers=auth(a["master_key"]),
    )
    assert answer.status_code == 400, answer.text
    assert "years 1 to 9999" in answer.json()["message"]


def test_a_count_timeframe_outside_the_utc_calendar_is_a_400(
    client: TestClient, projects: tuple[dict[str, str], dict[str, str]]
) -> None:
    a, _ = projects
    answer = client.post(
        f"/3.0/projects/{a['project_id']}/queries/count",
        json={
            "event_collection": "purchases",
            "timeframe": {"start": "0001-01-01T00:00:00+14:00", "end": "2026-01-01T00:00:00Z"},
        },
        headers=auth(a["read_key"]),
    )
    assert answer.status_code == 400, answer.text
