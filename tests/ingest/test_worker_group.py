"""INBOUND_WORKER_GROUP_ID names the workers' consumer group (a second deployment on one
cluster takes its own); the default is the README's `inbound-ingest`."""

from __future__ import annotations

import uuid
from pathlib import Path

from app.settings import Settings
from tests.support.worker import WorkerProcess, group_assignment, wait_until


def test_the_default_group_is_inbound_ingest() -> None:
    assert Settings().worker_group_id == "inbound-ingest"


def test_a_worker_joins_the_group_it_is_given(
    sqlite_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    group = f"inbound-deployment-{uuid.uuid4().hex[:8]}"
    worker = WorkerProcess(
        sqlite_url, kafka_bootstrap, tmp_path / "w", INBOUND_WORKER_GROUP_ID=group
    ).start()
    try:
        members = wait_until(
            lambda: group_assignment(kafka_bootstrap, group), 60, lambda: worker.tail()
        )
        assert len(members) == 1
    finally:
        worker.stop()
