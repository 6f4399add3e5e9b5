"""The real `inbound api` process: its access log never shows an `api_key` query value."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from app.api.access_log import clean
from app.store.migrate import upgrade
from tests.support.ports import free_port
from tests.support.worker import wait_until

SECRET = "k3y-that-must-never-be-logged-0123456789abcdef"


def _up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code < 600
    except httpx.HTTPError:
        return False


def test_access_log_redacts_api_key_and_escapes_control_characters(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'inbound.db'}"
    upgrade(url)
    port = free_port()
    log_path = tmp_path / "api.log"
    env = {
        **os.environ,
        "INBOUND_DATABASE_URL": url,
        "INBOUND_DATA_DIR": str(tmp_path / "data"),
        "INBOUND_API_PORT": str(port),
        "INBOUND_LOG_LEVEL": "INFO",
    }
    env.pop("INBOUND_KAFKA_BOOTSTRAP", None)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli.main", "api"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_until(lambda: _up(port), 60, lambda: f"api did not start: {log_path.read_text()}")
        base = f"http://127.0.0.1:{port}"
        httpx.get(f"{base}/3.0/projects/{'a' * 24}/events/x?api_key={SECRET}&b=1", timeout=5)
        httpx.get(f"{base}/3.0/projects/{'a' * 24}/events/y%0Aforged?api_key={SECRET}", timeout=5)
        wait_until(lambda: log_path.read_text().count("api_key=***") >= 2, 10, log_path.read_text)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = log_path.read_text()
    assert SECRET not in text
    assert "api_key=***&b=1" in text
    # A newline in the path cannot split the log line (logged encoded or escaped).
    assert "y%0Aforged" in text or "y\\x0aforged" in text
    assert not any(line.startswith("forged") for line in text.splitlines())


def test_clean_redacts_every_spelling_and_keeps_other_parameters() -> None:
    assert clean("/p?api_key=abc&API_KEY=def&x=1") == "/p?api_key=***&API_KEY=***&x=1"
    assert clean("/p/api_key=abc") == "/p/api_key=abc"  # only the query string
    assert clean("a\tb\x1bc") == "a\\x09b\\x1bc"
    assert clean(200) == 200
