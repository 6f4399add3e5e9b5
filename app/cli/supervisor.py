"""`inbound up`: local Kafka (unless one is configured), migrations, then every service as a child.

Children's output is prefixed with their name (with ``INBOUND_LOG_FORMAT=json`` it is passed
on as it is: each line names its process). Each child says when it serves (app.logs.ready);
once all have, the URLs are printed. Libraries log warnings and errors only (app.logs), so
the first screen is these lines; ``INBOUND_LOG_LEVEL=DEBUG`` shows everything. Ctrl-C or
SIGTERM stops them all, then the local broker, so no JVM is left behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from app import logs
from app.settings import Settings

SERVICES = ("worker", "api", "gateway", "webhooks")
_COLORS = {"worker": "\033[36m", "api": "\033[32m", "gateway": "\033[35m", "webhooks": "\033[33m"}
# Seconds after which `inbound up` names the services that have not said they serve yet.
READY_PATIENCE = 120.0
log = logging.getLogger("inbound.up")
_json = False


@dataclass
class Child:
    name: str
    proc: subprocess.Popen


def _say(message: str, level: int = logging.INFO) -> None:
    if _json:
        log.log(level, message)
    elif level >= logging.WARNING or log.isEnabledFor(level):
        word = "" if level < logging.WARNING else f"{logging.getLevelName(level).lower()}: "
        print(f"[inbound] {word}{message}", flush=True)


def _pump(child: Child, color: bool) -> None:
    if _json:
        prefix = ""
    elif color:
        prefix = f"{_COLORS.get(child.name, '')}[{child.name}]\033[0m "
    else:
        prefix = f"[{child.name}] "
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


def _urls(settings: Settings, bootstrap: str) -> list[str]:
    api = f"http://{settings.api_host}:{settings.api_port}"
    lines = [
        f"HTTP API     {api}",
        f"API docs     {api}/docs",
        f"Console      {api}/console  (sign in with a project's master key or the admin token)",
        f"Kafka edge   {settings.gateway_host}:{settings.gateway_port}  (SASL_SSL/PLAIN; `inbound certs` prints client settings)",
    ]
    if settings.gateway_plain_port:
        lines.append(
            f"plain edge   {settings.gateway_host}:{settings.gateway_plain_port}  (SASL/PLAIN without TLS, development only)"
        )
    lines.append(f"backend      {bootstrap}")
    return lines


def _not_ready(ready_dir: Path) -> list[str]:
    return [name for name in SERVICES if not (ready_dir / f"{name}.ready").exists()]


def run_all(settings: Settings) -> int:
    global _json
    from app.kafka import local
    from app.kafka.prerequisites import MissingPrerequisite
    from app.store.migrate import upgrade

    _json = settings.log_format == "json"
    logs.setup("up", settings.log_level, settings.log_format, stream=sys.stdout)
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
            _say(str(exc), logging.ERROR)
            return 1
        started_kafka = True
        bootstrap = state.bootstrap
        env["INBOUND_KAFKA_BOOTSTRAP"] = bootstrap
        _say(
            f"Kafka listening on {bootstrap} (logs: {local.cluster_dir(settings.data_dir)}/node1/server.log)"
        )

    # Each child writes <name>.ready here once it serves; the access log stays off unless asked.
    ready_dir = Path(tempfile.mkdtemp(prefix="inbound-ready-"))
    env[logs.READY_DIR_ENV] = str(ready_dir)
    env.setdefault("INBOUND_API_ACCESS_LOG", "false")
    children: list[Child] = []
    try:
        upgrade(settings.effective_database_url)
        _say(f"database ready: {settings.effective_database_url.split('@')[-1]}")
        color = sys.stdout.isatty() and not _json
        started = time.monotonic()
        children = [_spawn(name, env, color) for name in SERVICES]
        announced = warned = False
        while not stop_requested.is_set():
            dead = [c for c in children if c.proc.poll() is not None]
            if dead:
                _say(
                    f"{dead[0].name} exited with code {dead[0].proc.returncode}; stopping everything",
                    logging.ERROR,
                )
                return_code = 1
                break
            if not announced:
                waiting = _not_ready(ready_dir)
                if not waiting:
                    announced = True
                    _say(f"ready in {time.monotonic() - started:.0f} s:")
                    for line in _urls(settings, bootstrap):
                        _say(line)
                    _say("Ctrl-C stops everything")
                elif not warned and time.monotonic() - started > READY_PATIENCE:
                    warned = True
                    _say(
                        f"not ready after {READY_PATIENCE:.0f} s: {', '.join(waiting)} "
                        "(INBOUND_LOG_LEVEL=DEBUG shows more)",
                        logging.WARNING,
                    )
            stop_requested.wait(0.25 if not announced else 0.5)
        else:
            return_code = 0
    finally:
        _say("stopping services ...")
        _stop_children(children)
        shutil.rmtree(ready_dir, ignore_errors=True)
        if started_kafka:
            _say("stopping local Kafka ...")
            local.stop(settings.data_dir)
        _say("stopped")
    return return_code
