"""Issue #14's "Done when", end to end with real parts: events with a dotted name
(`user.name`) and a `$` name (`$price`) produced by a standard Kafka client through the edge
gateway (TLS, SASL) to the real broker, rejected by `inbound worker` (a subprocess); a fix
of two renames previews "N would be accepted"; applied, the count grows by exactly N, each
stored event keeps the keen.id of its original record, a second apply stores nothing twice,
and the errors show the outcome and the fix."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from app.api.app import create_app
from app.ingest.steps.keen import keen_id_for
from app.store.db import make_engine, session_scope
from app.store.models import IngestError
from app.store.projects import create_project
from app.tls.dev_certs import make_dev_certs
from tests.gateway.conftest import make_edge
from tests.gateway.helpers import producer_for
from tests.support import metrics
from tests.support.worker import WorkerProcess, isolated_group, wait_until

pytestmark = pytest.mark.kafka

N = 4  # bad events the fix repairs
RENAMES = [
    {"op": "rename", "path": "/user.name", "to": "user_name"},
    {"op": "rename", "path": "/$price", "to": "price"},
]


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    made = make_engine(sqlite_url)
    try:
        yield made
    finally:
        made.dispose()


@pytest.fixture
def edge(make_settings, sqlite_url: str, kafka_bootstrap: str, tmp_path: Path):  # noqa: ANN001, ANN201
    thread, edge = make_edge(
        make_settings, sqlite_url, kafka_bootstrap, make_dev_certs(tmp_path / "certs")
    )
    try:
        yield edge
    finally:
        thread.stop()


@pytest.fixture
def worker(sqlite_url: str, kafka_bootstrap: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(
        sqlite_url, kafka_bootstrap, tmp_path / "worker", **isolated_group(kafka_bootstrap)
    ).start()
    try:
        yield proc
    finally:
        proc.stop()


def produce_through_edge(edge, project: dict, collection: str, values: list[bytes]) -> None:  # noqa: ANN001
    async def send() -> None:
        producer = producer_for(edge, project["project_id"], project["write_key"], acks="all")
        await producer.start()
        try:
            for value in values:
                await producer.send_and_wait(collection, value)
        finally:
            await producer.stop()

    asyncio.run(send())


def error_rows(engine: Engine, project_id: str) -> list[IngestError]:
    with session_scope(engine) as session:
        rows = session.scalars(
            select(IngestError).where(IngestError.project_id == project_id)
        ).all()
        session.expunge_all()
        return list(rows)


def test_rename_fix_previews_applies_and_stores_each_event_once(
    engine, sqlite_url, make_settings, kafka_bootstrap, edge, worker
) -> None:
    with session_scope(engine) as session:
        project = create_project(session, "fix e2e")
    pid = project["project_id"]
    topic = f"in.{pid}.purchases"
    settings = make_settings(sqlite_url, kafka_bootstrap=kafka_bootstrap)
    hm, hr = {"Authorization": project["master_key"]}, {"Authorization": project["read_key"]}

    def lag() -> float | None:
        return metrics.value(worker.metrics(), "inbound_consumer_lag")

    with TestClient(create_app(settings)) as api:

        def count() -> int:
            query = {"event_collection": "purchases", "timeframe": "this_1_days"}
            r = api.post(f"/3.0/projects/{pid}/queries/count", json=query, headers=hr)
            assert r.status_code == 200, r.text
            return r.json()["result"]

        bad = [b'{"user.name": "ada", "$price": %d}' % i for i in range(N)]
        produce_through_edge(edge, project, "purchases", [*bad, b'{"fine": 1}', b"{broken"])
        wait_until(
            lambda: len(error_rows(engine, pid)) == N + 1,
            30,
            lambda: f"errors {len(error_rows(engine, pid))}\n{worker.tail()}",
        )
        wait_until(lambda: lag() == 0, 30, lambda: f"lag {lag()}\n{worker.tail()}")
        assert count() == 1
        renamed = [r for r in error_rows(engine, pid) if r.code == "invalid_property_name"]
        assert len(renamed) == N
        (problem_id,) = {r.problem_id for r in renamed}
        original_ids = {
            r.id: keen_id_for(topic, r.source_partition, r.source_offset) for r in renamed
        }

        target = {"filter": {"problem_id": problem_id}, "operations": RENAMES}
        url = f"/3.0/projects/{pid}/errors/fix"
        preview = api.post(url, json=target, headers=hm)
        assert preview.status_code == 200, preview.text
        seen = preview.json()
        assert (seen["matched"], seen["would_accept"], seen["would_reject"]) == (N, N, 0)
        assert seen["failed_to_apply"] == 0 and seen["fix_id"] is None
        assert {s["outcome"]["keen_id"] for s in seen["samples"]} == set(original_ids.values())
        assert count() == 1, "a preview stores nothing"

        def outcomes(fix_id: str) -> dict[str, dict] | None:
            got = {}
            for error_id in original_ids:
                row = api.get(f"/3.0/projects/{pid}/errors/{error_id}", headers=hm).json()
                outcome = row["replay_outcome"] or {}
                if outcome.get("fix_id") != fix_id or outcome.get("status") != "accepted":
                    return None
                got[error_id] = row
            return got

        applied = api.post(url, json={**target, "dry_run": False}, headers=hm)
        assert applied.status_code == 200, applied.text
        first = applied.json()
        assert (first["would_accept"], first["replayed"], first["refused"]) == (N, N, [])
        wait_until(lambda: count() == 1 + N, 30, lambda: f"count {count()}\n{worker.tail()}")
        shown = wait_until(lambda: outcomes(first["fix_id"]), 30, worker.tail)
        wait_until(lambda: lag() == 0, 30, lambda: f"lag {lag()}\n{worker.tail()}")
        assert count() == 1 + N, "exactly N more"
        for error_id, row in shown.items():
            assert row["status"] == "replayed" and row["replay_count"] == 1
            assert row["replay_outcome"]["keen_id"] == original_ids[error_id]

        extraction = {"event_collection": "purchases", "timeframe": "this_1_days"}
        stored = api.post(
            f"/3.0/projects/{pid}/queries/extraction", json=extraction, headers=hr
        ).json()["result"]
        fixed = [e for e in stored if "user_name" in e]
        assert sorted(e["keen"]["id"] for e in fixed) == sorted(original_ids.values())
        assert sorted(e["price"] for e in fixed) == list(range(N))
        assert {e["user_name"] for e in fixed} == {"ada"}

        # The same fix again, on the replayed errors too: produced again, stored once.
        again = {**target, "filter": {"problem_id": problem_id, "status": "open,replayed"}}
        second = api.post(url, json={**again, "dry_run": False}, headers=hm).json()
        assert (second["replayed"], second["fix_id"] != first["fix_id"]) == (N, True)
        shown = wait_until(lambda: outcomes(second["fix_id"]), 30, worker.tail)
        wait_until(lambda: lag() == 0, 30, lambda: f"lag {lag()}\n{worker.tail()}")
        assert count() == 1 + N, "nothing stored twice"
        assert {r["replay_count"] for r in shown.values()} == {2}

        fixes = api.get(f"/3.0/projects/{pid}/fixes", headers=hm).json()["fixes"]
        assert [f["fix_id"] for f in fixes] == [second["fix_id"], first["fix_id"]]
        assert [f["counts"]["replayed"] for f in fixes] == [N, N]
        broken = [r for r in error_rows(engine, pid) if r.code == "invalid_json"]
        assert [(r.status, r.replay_outcome) for r in broken] == [("open", None)]
