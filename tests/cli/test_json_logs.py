"""INBOUND_LOG_FORMAT=json: every line a process writes is one JSON object naming its process
and level; the worker's rejection line carries the record's project, collection and Kafka
coordinates and its error id (what Loki or Elasticsearch index)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.ingest.conftest import make_stack
from tests.support.ports import free_port
from tests.support.worker import isolated_group, wait_until


def _records(text: str) -> list[dict]:
    """Every line of ``text`` as JSON; fails naming the first line that is not."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"line {number} is not JSON: {line!r}\n{text[-3000:]}") from None
        assert isinstance(record, dict), line
        records.append(record)
    return records


def test_worker_json_lines_and_a_rejection_with_its_coordinates(
    sqlite_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    # DEBUG: the per-record rejection line, and every library's output too, all JSON.
    stack = make_stack(
        sqlite_url,
        kafka_bootstrap,
        tmp_path / "worker",
        INBOUND_LOG_FORMAT="json",
        INBOUND_LOG_LEVEL="DEBUG",
        **isolated_group(kafka_bootstrap),
    )
    log_path = stack.worker.log_path
    try:
        coll = stack.unique("jsonlog")
        stack.produce(stack.topic(coll), [b'{"ok": 1}', b"{not json"])
        stack.wait_errors(coll, 1, timeout=60)
        [error] = stack.errors(coll)

        def rejection() -> dict | None:
            for record in _records(log_path.read_text(errors="replace")):
                if record.get("error_id") == error.id and record["message"].startswith("rejected"):
                    return record
            return None

        found = wait_until(rejection, 30, f"no rejection line\n{stack.worker.tail()}")
    finally:
        stack.worker.stop()
        stack.engine.dispose()
    assert found["process"] == "worker"
    assert found["level"] == "DEBUG"
    assert found["project_id"] == stack.project_id
    assert found["collection"] == coll
    assert found["topic"] == stack.topic(coll)
    assert found["partition"] == error.source_partition
    assert found["offset"] == error.source_offset
    # Start-up to shutdown, faust's, aiokafka's and ours: all JSON, all with process and level.
    records = _records(log_path.read_text(errors="replace"))
    assert len(records) > 20
    for record in records:
        assert record["process"] == "worker", record
        assert record["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}, record
    loggers = {r["logger"] for r in records}
    assert any(name.startswith("aiokafka") for name in loggers), loggers
    assert any(name.startswith(("faust", "mode")) for name in loggers), loggers
    assert any("worker ready" in r["message"] for r in records)
    summary = [r for r in records if r["message"].startswith("batch of")]
    assert summary and summary[0]["dead_lettered"] >= 1, records[-20:]
    assert stack.project_id in summary[0]["project_ids"]


def test_api_json_lines_with_the_access_log(sqlite_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "INBOUND_DATABASE_URL": sqlite_url,
        "INBOUND_DATA_DIR": str(tmp_path),
        "INBOUND_API_PORT": str(port),
        "INBOUND_LOG_FORMAT": "json",
    }
    log_path = tmp_path / "api.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli.main", "api"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:

        def healthy() -> bool:
            assert proc.poll() is None, log_path.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 60, "the API did not start")
        httpx.get(f"http://127.0.0.1:{port}/healthz?api_key=secret-key", timeout=2)
        wait_until(lambda: "api_key" in log_path.read_text(), 30, "no access line for the request")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    records = _records(log_path.read_text(errors="replace"))
    for record in records:
        assert record["process"] == "api", record
        assert "level" in record, record
    messages = [r["message"] for r in records]
    assert any(m.startswith("API ready on http://") for m in messages), messages
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert access and all(r["level"] == "INFO" for r in access), records
    assert any("api_key=***" in r["message"] for r in access), access
    assert "secret-key" not in log_path.read_text()


def test_a_worker_that_cannot_start_says_why_in_json(tmp_path: Path) -> None:
    env = {**os.environ, "INBOUND_DATA_DIR": str(tmp_path), "INBOUND_LOG_FORMAT": "json"}
    env.pop("INBOUND_KAFKA_BOOTSTRAP", None)
    done = subprocess.run(
        [sys.executable, "-m", "app.cli.main", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    records = _records(done.stdout + done.stderr)
    errors = [r for r in records if r["level"] == "ERROR"]
    assert len(errors) == 1 and "INBOUND_KAFKA_BOOTSTRAP" in errors[0]["message"], records
    assert errors[0]["process"] == "worker"


def test_a_crash_is_one_json_line_with_its_traceback() -> None:
    code = (
        "from app import logs; logs.setup('worker', 'INFO', 'json'); "
        "import threading; t = threading.Thread(target=lambda: 1 / 0); t.start(); t.join(); "
        "raise RuntimeError('boom')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    records = _records(done.stdout + done.stderr)
    assert [r["message"] for r in records] == [
        "uncaught ZeroDivisionError: division by zero",
        "uncaught RuntimeError: boom",
    ], records
    assert all(r["level"] == "CRITICAL" and "Traceback" in r["exception"] for r in records)
