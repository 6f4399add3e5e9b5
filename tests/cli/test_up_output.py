"""`inbound up`'s first screen: a line per service once it serves, the URLs, warnings and
errors; no faust banners, rebalance chatter or partition tables (all of it with DEBUG)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.support.ports import free_kafka_base, free_port

READY = "Ctrl-C stops everything"


def test_up_fits_one_screen_until_ready(tmp_path: Path) -> None:
    api_port, gateway_port, metrics_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "INBOUND_DATA_DIR": str(tmp_path),
        "INBOUND_KAFKA_PORT": str(free_kafka_base()),
        "INBOUND_API_PORT": str(api_port),
        "INBOUND_GATEWAY_PORT": str(gateway_port),
        "INBOUND_WORKER_METRICS_PORT": str(metrics_port),
    }
    for name in ("INBOUND_KAFKA_BOOTSTRAP", "INBOUND_DATABASE_URL", "INBOUND_LOG_LEVEL"):
        env.pop(name, None)
    env.pop("INBOUND_LOG_FORMAT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli.main", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(
        target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True
    ).start()
    try:
        deadline = time.monotonic() + 180
        while not any(READY in x for x in lines):
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    output = "".join(lines)
    assert proc.returncode == 0, output
    first_screen = lines[: next(i for i, x in enumerate(lines) if READY in x) + 1]
    screen = "".join(first_screen)
    assert len(first_screen) <= 20, f"{len(first_screen)} lines until ready:\n{screen}"
    # A line from each service once it serves ...
    for service, ready in (
        ("worker", "worker ready"),
        ("api", "API ready on"),
        ("gateway", f"Kafka edge (SASL_SSL/PLAIN) on 127.0.0.1:{gateway_port}"),
        ("webhooks", "webhook dispatcher started"),
    ):
        assert any(x.startswith(f"[{service}]") and ready in x for x in first_screen), screen
    # ... then the URLs, after all four.
    assert f"[inbound] HTTP API     http://127.0.0.1:{api_port}\n" in screen
    assert f"[inbound] API docs     http://127.0.0.1:{api_port}/docs\n" in screen
    assert f"[inbound] Console      http://127.0.0.1:{api_port}/console  (" in screen
    assert f"[inbound] Kafka edge   127.0.0.1:{gateway_port} " in screen
    url_at = next(i for i, x in enumerate(first_screen) if "HTTP API" in x)
    assert all(
        any(x.startswith(f"[{s}]") for x in first_screen[:url_at])
        for s in ("worker", "api", "gateway", "webhooks")
    ), screen
    # What the first screen used to be made of: none of it, before or after ready.
    for noise in ("[^Worker]", "Starting...", "+-----", "Joined group", "Uvicorn running", "INFO:"):
        assert noise not in output, f"{noise!r} in:\n{output}"
    # Below WARNING only Inbound's own loggers speak.
    for line in lines:
        match = re.match(r"\[(\w+)\] \S+ \S+ (DEBUG|INFO) (\S+) ", line)
        if match:
            assert match.group(3).startswith(("inbound", "app.")), line
