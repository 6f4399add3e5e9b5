"""Stall detection (issue #9.2) on a real broker: lag from the log end and committed offsets,
measured while the worker is stuck, and /healthz `stalled` for a partition that stops moving.

Its own module: a worker of another module-scoped stack would share the consumer group and
take the partitions."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from app.store.migrate import upgrade
from tests.conftest import fresh_postgres_database
from tests.ingest.conftest import make_stack
from tests.support.worker import wait_until


@pytest.fixture
def stall_stack(request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path: Path):
    """PostgreSQL, so the server can be stopped; a short stall threshold."""
    server = request.getfixturevalue("postgres_server")
    if isinstance(server, str):
        pytest.skip("an external PostgreSQL cannot be stopped by the test")
    url = fresh_postgres_database(server)
    upgrade(url)
    s = make_stack(url, kafka_bootstrap, tmp_path, INBOUND_WORKER_STALL_SECONDS="2")
    try:
        yield s, server
    finally:
        s.worker.stop()
        s.engine.dispose()


def _gauge(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return -1.0


def test_lag_grows_and_a_stuck_partition_is_reported_stalled(stall_stack) -> None:  # noqa: ANN001
    stack, pg = stall_stack
    coll = stack.unique("stall")
    topic = stack.topic(coll)
    stack.produce(topic, [b'{"before": 1}'], key=b"one-partition")
    stack.wait_events(coll, 1)
    stack.engine.dispose()
    pg.stop()
    try:
        stack.produce(topic, [orjson.dumps({"during": i}) for i in range(50)], key=b"one-partition")
        health = wait_until(
            lambda: (hz := stack.worker.health() or {}).get("status") == "stalled" and hz,
            60,
            f"never reported stalled\n{stack.worker.tail()}",
        )
        stalled = [p for p in health["stalled"] if p["topic"] == topic]
        assert stalled and stalled[0]["lag"] >= 50 and stalled[0]["offset"] is not None
        assert stalled[0]["last_error"]
        # The gauges are set by the periodic measurement, which may follow /healthz's view.
        wait_until(
            lambda: (
                _gauge(m := stack.worker.metrics(), "inbound_stalled_partitions") >= 1
                and _gauge(m, "inbound_consumer_lag") >= 50
            ),
            30,
            "stall gauges not set",
        )
    finally:
        pg.restart()
    stack.wait_events(coll, 51, timeout=60)
    wait_until(
        lambda: (stack.worker.health() or {}).get("status") == "ok",
        30,
        f"still not ok: {stack.worker.health()}",
    )
    wait_until(lambda: _gauge(stack.worker.metrics(), "inbound_consumer_lag") == 0, 30, "lag")
