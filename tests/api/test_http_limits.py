"""The HTTP event endpoints bound what one request may cost: INBOUND_HTTP_MAX_BODY_BYTES
(413 RequestTooLargeError, refused before the body is read whole) and
INBOUND_HTTP_MAX_EVENTS_PER_REQUEST (400 TooManyEventsError, nothing recorded)."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.api.app import create_app
from app.settings import Settings
from app.store.db import engine_for
from app.store.models import IngestError
from tests.api.conftest import auth


def _errors(url: str) -> int:
    with engine_for(url).connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(IngestError)) or 0)


def test_the_defaults_are_the_readmes() -> None:
    settings = Settings()
    assert settings.http_max_body_bytes == 10_485_760
    assert settings.http_max_events_per_request == 5000


def test_a_body_over_the_limit_is_refused_with_413(
    db_url: str, make_settings: Callable[..., Settings], projects: tuple
) -> None:
    a, _ = projects
    settings = make_settings(db_url, http_max_body_bytes=2048)
    with TestClient(create_app(settings)) as client:
        h = auth(a["write_key"])
        big = orjson.dumps({"pad": "x" * 3000})
        r = client.post(f"/3.0/projects/{a['project_id']}/events/orders", headers=h, content=big)
        assert r.status_code == 413
        assert r.json() == {
            "error_code": "RequestTooLargeError",
            "message": "The request body is over 2,048 bytes (INBOUND_HTTP_MAX_BODY_BYTES); "
            "send fewer events per request.",
        }
        batch = orjson.dumps({"orders": [{"pad": "x" * 500}] * 5})
        r = client.post(f"/3.0/projects/{a['project_id']}/events", headers=h, content=batch)
        assert r.status_code == 413
        # Without a Content-Length (chunked), the limit holds while reading.
        r = client.post(
            f"/3.0/projects/{a['project_id']}/events/orders",
            headers=h,
            content=iter([b'{"pad": "', b"x" * 1500, b"x" * 1500, b'"}']),
        )
        assert r.status_code == 413
        # Under the limit: taken as before (refused here only because no Kafka is configured).
        r = client.post(f"/3.0/projects/{a['project_id']}/events/orders", headers=h, json={"a": 1})
        assert r.status_code != 413
    assert _errors(db_url) == 0


def test_a_batch_over_the_event_limit_is_refused_whole(
    db_url: str, make_settings: Callable[..., Settings], projects: tuple
) -> None:
    a, _ = projects
    settings = make_settings(db_url, http_max_events_per_request=3)
    with TestClient(create_app(settings)) as client:
        body = {"orders": [{"$bad": 1}, {"$bad": 2}], "visits": [{"$bad": 3}, {"$bad": 4}]}
        r = client.post(
            f"/3.0/projects/{a['project_id']}/events", headers=auth(a["write_key"]), json=body
        )
    assert r.status_code == 400
    assert r.json() == {
        "error_code": "TooManyEventsError",
        "message": "The batch holds 4 events; send at most 3 per request "
        "(INBOUND_HTTP_MAX_EVENTS_PER_REQUEST).",
    }
    assert _errors(db_url) == 0, "nothing of a refused batch is recorded"
