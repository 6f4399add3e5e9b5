"""INBOUND_WORKER_METRICS_PORT (settings table: "Port of the worker's /metrics and /healthz
(0 disables)"): with 0 the worker serves nothing at all, and still ingests."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.ingest.conftest import make_stack
from tests.support.cli import listening_tcp_ports
from tests.support.worker import WorkerProcess


def test_metrics_port_0_disables_the_web_server_and_ingest_goes_on(
    sqlite_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """SQLite only: the web server does not touch the database."""
    stack = make_stack(sqlite_url, kafka_bootstrap, tmp_path / "on")
    try:
        # The check below can fail: a worker with a port listens on exactly that port.
        pid = stack.worker.proc.pid
        assert listening_tcp_ports(pid) == {stack.worker.metrics_port}
        assert httpx.get(f"http://127.0.0.1:{stack.worker.metrics_port}/metrics").status_code == 200
        stack.worker.stop()

        off = WorkerProcess(
            sqlite_url, kafka_bootstrap, tmp_path / "off", INBOUND_WORKER_METRICS_PORT="0"
        )
        stack.worker = off.start(wait_healthy=False)
        coll = stack.unique("noweb")
        stack.produce(stack.topic(coll), [b'{"served": false}', b"{not json"])
        stack.wait_events(coll, 1, timeout=60)
        stack.wait_errors(coll, 1)
        assert off.alive()
        # Nothing listens: not the configured port, not faust's default web port (6066).
        assert listening_tcp_ports(off.proc.pid) == set(), off.tail()
        assert off.health() is None
    finally:
        stack.worker.stop()
        stack.engine.dispose()
