"""`inbound up`: local Kafka (unless one is configured), migrations, then every service as a child.

Children's output is prefixed with their name; Ctrl-C or SIGTERM stops them all, then the
local broker, so no JVM is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from app.settings import Settings

SERVICES = ("worker", "api", "gateway", "webhooks")
_COLORS = {"worker": "\033[36m", "api": "\033[32m", "gateway": "\033[35m", "webhooks": "\033[33m"}


@dataclass
class Child:
    name: str
    proc: subprocess.Popen


def _say(message: str) -> None:
    print(f"[inbound] {message}", flush=True)


def _pump(child: Child, color: bool) -> None:
    prefix = f"{_COLORS.get(child.name, '')}[{child.name}]\033[0m " if color else f"[{child.name}] "
    assert child.proc.stdout is not None
    for line in iter(child.proc.stdout.readline, b""):
        sys.stdout.write(prefix + line.decode(errors="replace"))
        sys.stdout.flush()


def _spawn(name: str, env: dict[str, str], color: bool) -> Child:
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli.main", name],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    child = Child(name, proc)
    threading.Thread(target=_pump, args=(child, color), daemon=True).start()
    return child


def _stop_children(children: list[Child], timeout: float = 15.0) -> None:
    for child in children:
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            child.proc.wait(remaining)
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()


def run_all(settings: Settings) -> int:
    from app.kafka import local
    from app.kafka.prerequisites import MissingPrerequisite
    from app.store.migrate import upgrade

    stop_requested = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    started_kafka = False
    env = dict(os.environ)
    if settings.kafka_bootstrap:
        bootstrap = settings.kafka_bootstrap
        _say(f"using Kafka at {bootstrap} (INBOUND_KAFKA_BOOTSTRAP)")
    else:
        _say("starting local Apache Kafka (first run fetches the jars with Maven) ...")
        try:
            state = local.start(
                settings.data_dir, settings.cache_dir, base_port=settings.kafka_port
            )
        except (MissingPrerequisite, local.KafkaStartError, RuntimeError) as exc:
            _say(f"error: {exc}")
            return 1
        started_kafka = True
        bootstrap = state.bootstrap
        env["INBOUND_KAFKA_BOOTSTRAP"] = bootstrap
        _say(
            f"Kafka listening on {bootstrap} (logs: {local.cluster_dir(settings.data_dir)}/node1/server.log)"
        )

    children: list[Child] = []
    try:
        upgrade(settings.effective_database_url)
        _say(f"database ready: {settings.effective_database_url.split('@')[-1]}")
        color = sys.stdout.isatty()
        children = [_spawn(name, env, color) for name in SERVICES]
        _say(f"HTTP API     http://{settings.api_host}:{settings.api_port}  (docs at /docs)")
        _say(
            f"Kafka edge   {settings.gateway_host}:{settings.gateway_port}  (SASL_SSL/PLAIN; `inbound certs` prints client settings)"
        )
        _say(f"backend      {bootstrap}")
        _say("Ctrl-C stops everything")
        while not stop_requested.is_set():
            dead = [c for c in children if c.proc.poll() is not None]
            if dead:
                _say(
                    f"{dead[0].name} exited with code {dead[0].proc.returncode}; stopping everything"
                )
                return_code = 1
                break
            stop_requested.wait(0.5)
        else:
            return_code = 0
    finally:
        _say("stopping services ...")
        _stop_children(children)
        if started_kafka:
            _say("stopping local Kafka ...")
            local.stop(settings.data_dir)
        _say("stopped")
    return return_code
