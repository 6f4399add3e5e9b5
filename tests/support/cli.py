"""The `inbound` command as a real subprocess: one-shot commands and a running `inbound api`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.ports import free_port
from tests.support.worker import wait_until


def inbound_env(**env: str | None) -> dict[str, str]:
    """The test process's environment with ``INBOUND_*`` overrides; None removes a variable."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("INBOUND_")}
    out.update({k: v for k, v in env.items() if v is not None})
    return out


def inbound(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``inbound <args>`` to completion; stdout and stderr as text."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def listening_tcp_ports(pid: int) -> set[int]:
    """TCP ports a process listens on (IPv4 and IPv6), from /proc: its socket inodes matched
    against the kernel's tables of sockets in state LISTEN."""
    inodes: set[str] = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: TCP_LISTEN
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


class ApiProcess:
    """`inbound api` on a free loopback port, against the test database and broker."""

    def __init__(self, database_url: str, bootstrap: str | None, data_dir: Path, **env: str):
        self.port = free_port()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir / f"api-{self.port}.log"
        self.env = inbound_env(
            INBOUND_DATABASE_URL=database_url,
            INBOUND_KAFKA_BOOTSTRAP=bootstrap,
            INBOUND_DATA_DIR=str(data_dir),
            INBOUND_API_PORT=str(self.port),
            **env,
        )
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its life
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli.main", "api"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        wait_until(self._answers, 60, lambda: f"the API did not start:\n{self.tail()}")
        return self

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the API exited:\n{self.tail()}")
        try:
            httpx.get(f"{self.url}/healthz", timeout=2)
        except httpx.HTTPError:
            return False
        return True

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextmanager
def api_on_fresh_sqlite(data_dir: Path) -> Iterator[ApiProcess]:
    """A real ``inbound api`` process, without Kafka, on a newly migrated SQLite database."""
    from app.store.migrate import upgrade

    url = f"sqlite:///{data_dir / 'inbound.db'}"
    upgrade(url)
    proc = ApiProcess(url, None, data_dir).start()
    try:
        yield proc
    finally:
        proc.stop()
