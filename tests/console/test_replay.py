"""The problem page's replay against the real broker: the dry run counts, the confirm
produces every open error of the problem again through the replay API's service, and the
error page shows the replay and, once the worker has reported it, the new keen.id (SQLite
and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.api.app import create_app
from app.ingest.persist import BatchOutcome, BatchWriter
from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.models import IngestError, Problem
from app.store.projects import create_project
from tests.api.conftest import read_records
from tests.console.conftest import signed_in_token
from tests.console.support import Sent, reject

pytestmark = pytest.mark.kafka


@pytest.fixture
def kafka_console(
    db_url: str, make_settings: Callable[..., Settings], kafka_bootstrap: str
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = make_settings(db_url, kafka_bootstrap=kafka_bootstrap)
    with session_scope(engine_for(db_url)) as db:
        project = create_project(db, "replaying")
    with TestClient(create_app(settings)) as c:
        yield c, project
    engine_for(db_url).dispose()


def test_confirmed_replay_produces_the_problems_errors(
    kafka_console: tuple[TestClient, dict[str, str]], db_url: str, kafka_bootstrap: str
) -> None:
    client, project = kafka_console
    pid = project["project_id"]
    ids = reject(db_url, pid, [Sent(b'{"$v": %d}' % i, collection="orders") for i in (1, 2)])
    with session_scope(engine_for(db_url)) as db:
        problem_id = db.scalar(select(Problem.id))
    csrf = signed_in_token(client, project)
    url = f"/console/projects/{pid}/problems/{problem_id}/replay"
    dry = client.post(url, data={"csrf_token": csrf, "confirm": "0"})
    assert 'id="replay-matched">2<' in dry.text
    done = client.post(url, data={"csrf_token": csrf, "confirm": "1"})
    assert done.status_code == 200, done.text
    assert 'id="replay-done">Replayed 2, refused 0.<' in done.text
    records = read_records(kafka_bootstrap, f"in.{pid}.orders", 2)
    assert sorted(r.value for r in records) == [b'{"$v": 1}', b'{"$v": 2}']
    with session_scope(engine_for(db_url)) as db:
        assert {e.status for e in db.scalars(select(IngestError))} == {"replayed"}
    # Nothing open is left to replay.
    again = client.post(url, data={"csrf_token": csrf, "confirm": "0"})
    assert 'id="replay-matched">0<' in again.text

    page = client.get(f"/console/projects/{pid}/errors/{ids[0]}").text
    assert "Replayed 1 time." in page
    assert '<span class="badge badge-pending">pending</span>' in page
    assert re.search(
        rf"<code><bdi[^>]*>in\.{pid}\.orders</bdi></code> partition \d+ offset \d+", page
    )
    # The worker reports the outcome (as its router does) through its BatchWriter.
    new_keen_id = "0123456789abcdef0123456789abcdef"
    BatchWriter(engine_for(db_url), payload_cap=65536).write(
        BatchOutcome(replay_outcomes={ids[0]: {"status": "accepted", "keen_id": new_keen_id}})
    )
    page = client.get(f"/console/projects/{pid}/errors/{ids[0]}").text
    assert '<span class="badge badge-accepted">accepted</span>' in page
    assert f'<code id="keen-id"><bdi dir="ltr" class="ltr">{new_keen_id}</bdi></code>' in page
