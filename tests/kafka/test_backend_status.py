"""`inbound kafka status` with INBOUND_KAFKA_BOOTSTRAP set describes that cluster through the
backend security settings, or says why it cannot be used (exit 1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.ports import free_port


def _status(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli.main", "kafka", "status"],
        env={**os.environ, "INBOUND_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_status_describes_the_configured_backend(tmp_path: Path, kafka_bootstrap: str) -> None:
    result = _status(tmp_path, INBOUND_KAFKA_BOOTSTRAP=kafka_bootstrap)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["running"] is True
    assert info["bootstrap"] == kafka_bootstrap
    assert info["security_protocol"] == "PLAINTEXT"
    [broker] = info["brokers"]
    assert f"{broker['host']}:{broker['port']}" == kafka_bootstrap


def test_status_of_an_unreachable_backend_says_so_and_exits_1(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    result = _status(tmp_path, INBOUND_KAFKA_BOOTSTRAP=address)
    assert result.returncode == 1
    info = json.loads(result.stdout)
    assert info["running"] is False
    assert f"cannot reach backend Kafka {address}" in info["error"]
    assert "INBOUND_KAFKA_BOOTSTRAP" in info["error"]


def test_settings_that_cannot_work_together_are_named(tmp_path: Path) -> None:
    result = _status(
        tmp_path,
        INBOUND_KAFKA_BOOTSTRAP="127.0.0.1:9",
        INBOUND_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
    )
    assert result.returncode == 1
    assert (
        "INBOUND_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs INBOUND_KAFKA_SASL_USERNAME and "
        "INBOUND_KAFKA_SASL_PASSWORD"
    ) in result.stderr
