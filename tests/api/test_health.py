"""/healthz and /metrics."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from app.api.app import create_app
from tests.api.conftest import auth
from tests.support.ports import free_port


def test_health_without_kafka_and_metrics(client: TestClient, projects: tuple) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "kafka": "not_configured"}
    a, _ = projects
    client.get(f"/3.0/projects/{a['project_id']}/errors", headers=auth(a["master_key"]))
    m = client.get("/metrics")
    assert m.status_code == 200
    assert 'inbound_api_requests_total{method="GET",route="/3.0/projects/{project_id}/errors"' in (
        m.text
    )


@pytest.mark.kafka
def test_health_with_kafka(kafka_client: TestClient) -> None:
    assert kafka_client.get("/healthz").json()["kafka"] == "ok"


def test_health_reports_an_unreachable_broker(sqlite_url: str, make_settings: Callable) -> None:
    settings = make_settings(sqlite_url, kafka_bootstrap=f"127.0.0.1:{free_port()}")
    app = create_app(settings)
    app.state.producer.start_timeout = 1.0
    with TestClient(app) as c:
        r = c.get("/healthz")
        assert r.status_code == 503
        assert r.json()["kafka"] == "unavailable"
