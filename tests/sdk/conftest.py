"""A real `inbound up` for Keen's own SDKs to talk to (issue #17): one for the package, on the
session broker, with its own data directory (SQLite) and ports; a fresh project per module."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.cli import inbound, inbound_env
from tests.support.ports import free_port
from tests.support.worker import wait_until

READY_LINE = "Ctrl-C stops everything"
# The worker of `inbound up` joins the ingest group on the shared session broker, so it first
# works through (and refuses, as unknown projects) what earlier tests left unread on their
# topics: seconds usually, more after a heavy suite. A ceiling, not a wait.
STORE_TIMEOUT = 180.0


@dataclass(frozen=True)
class Inbound:
    """A running `inbound up` as an SDK user reaches it."""

    host: str
    port: int
    env: dict[str, str]
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass(frozen=True)
class SdkProject:
    project_id: str
    master_key: str
    write_key: str
    read_key: str


@pytest.fixture(scope="package")
def inbound_up(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inbound]:
    data_dir = tmp_path_factory.mktemp("inbound-up")
    port = free_port()
    env = inbound_env(
        INBOUND_DATA_DIR=str(data_dir),
        INBOUND_KAFKA_BOOTSTRAP=kafka_bootstrap,
        INBOUND_API_PORT=str(port),
        INBOUND_GATEWAY_PORT=str(free_port()),
        INBOUND_GATEWAY_PLAIN_PORT=str(free_port()),
        INBOUND_WORKER_METRICS_PORT=str(free_port()),
        # A collection the SDK creates is picked up by the worker within a second.
        INBOUND_WORKER_METADATA_MAX_AGE_MS="1000",
    )
    log_path = data_dir / "up.log"
    log = open(log_path, "ab")  # noqa: SIM115 - owned by the child for its life
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli.main", "up"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    running = Inbound("127.0.0.1", port, env, log_path)

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"inbound up exited:\n{running.tail()}")
        return READY_LINE in log_path.read_text(errors="replace")

    try:
        wait_until(ready, 180, lambda: f"inbound up did not get ready:\n{running.tail()}")
        wait_until(lambda: _status(f"{running.base_url}/healthz") == 200, 60, running.tail)
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C sends: it stops every child
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        log.close()


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


@pytest.fixture(scope="module")
def sdk_project(inbound_up: Inbound) -> SdkProject:
    """A project of its own for each test module, made as a user would: `inbound project create`."""
    done = inbound("project", "create", "--name", "sdk conformance", env=inbound_up.env)
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    return SdkProject(
        created["project_id"], created["master_key"], created["write_key"], created["read_key"]
    )


@pytest.fixture
def poll() -> Callable[[Callable[[], object], float], object]:
    """Wait until a check returns something truthy (events are queryable once the worker ran)."""

    def _poll(check: Callable[[], object], timeout: float = STORE_TIMEOUT) -> object:
        return wait_until(check, timeout, "the condition did not hold in time")

    return _poll
