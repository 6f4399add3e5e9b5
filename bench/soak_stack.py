"""The production shape on one machine, for the soak: three brokers (RF 3, min ISR 2),
PostgreSQL, several workers, the Kafka edge, the API, the webhook dispatcher and a local
webhook receiver. Every part can be killed and started again on the same address."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from app.kafka import local
from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.migrate import upgrade
from app.store.projects import create_project
from app.tls.dev_certs import make_dev_certs
from tests.support.ports import free_kafka_base, free_port
from tests.support.postgres import LocalPostgres, wait_for
from tests.support.worker import WorkerProcess, wait_until


class Service:
    """One `inbound <command>` subprocess with its own log file."""

    def __init__(self, command: str, env: dict[str, str], log_dir: Path, port: int | None) -> None:
        self.command, self.env, self.port = command, env, port
        self.log_path = log_dir / f"{command}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Service:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child's for its life
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli.main", self.command],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        if self.port is not None:
            wait_until(lambda: local.port_open("127.0.0.1", self.port), 60, self.tail)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Received:
    """What the local webhook receiver got: (webhook-id, body) per request, in order."""

    deliveries: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, webhook_id: str, body: bytes) -> None:
        with self.lock:
            self.deliveries.append((webhook_id, body))

    def snapshot(self) -> list[tuple[str, bytes]]:
        with self.lock:
            return list(self.deliveries)


def start_receiver(received: Received) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.add(self.headers.get("webhook-id") or "", body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, name="receiver", daemon=True).start()
    return server, server.server_address[1]


class Stack:
    def __init__(self, root: Path, workers: int) -> None:
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.cache_dir = Settings().cache_dir
        self.kafka_dir = root / "kafka"
        self.worker_count = workers
        self.received = Received()
        self.workers: list[WorkerProcess] = []
        self.services: dict[str, Service] = {}

    # -- start ---------------------------------------------------------------------------
    def start(self) -> None:
        state = local.start(
            self.kafka_dir, self.cache_dir, base_port=free_kafka_base(3), nodes=3, timeout=180
        )
        self.bootstrap = state.bootstrap
        # Its own directory under /tmp: the postgres user must be able to reach it, and the
        # run's directory is private to this user.
        self.postgres = LocalPostgres(Path(tempfile.mkdtemp(prefix="inbound-soak-pg-")))
        self.database_url = self.postgres.start()
        wait_for(self.database_url)
        upgrade(self.database_url)
        with session_scope(engine_for(self.database_url)) as session:
            project = create_project(session, "soak")
        self.project_id = project["project_id"]
        self.write_key = project["write_key"]
        self.master_key = project["master_key"]
        self.certs = make_dev_certs(self.root / "certs")
        self.gateway_port, self.api_port = free_port(), free_port()
        self.receiver, receiver_port = start_receiver(self.received)
        self.env = {
            **os.environ,
            "INBOUND_DATABASE_URL": self.database_url,
            "INBOUND_KAFKA_BOOTSTRAP": self.bootstrap,
            "INBOUND_DATA_DIR": str(self.root / "data"),
            "INBOUND_DLQ_REPLICAS": "3",
            "INBOUND_WORKER_METADATA_MAX_AGE_MS": "2000",
            "INBOUND_GATEWAY_PORT": str(self.gateway_port),
            "INBOUND_GATEWAY_TLS_CERT": self.certs["server_cert"],
            "INBOUND_GATEWAY_TLS_KEY": self.certs["server_key"],
            "INBOUND_API_PORT": str(self.api_port),
            "INBOUND_WEBHOOK_ALLOW_PRIVATE": "true",
            "INBOUND_WEBHOOK_BATCH_WINDOW_MS": "1000",
            "INBOUND_LOG_LEVEL": "INFO",
        }
        self.services["gateway"] = Service("gateway", self.env, self.logs, self.gateway_port)
        self.services["api"] = Service("api", self.env, self.logs, self.api_port)
        self.services["webhooks"] = Service("webhooks", self.env, self.logs, None)
        for service in self.services.values():
            service.start()
        for _ in range(self.worker_count):
            self.start_worker()
        self._register_webhook(f"http://127.0.0.1:{receiver_port}/hook")

    def _register_webhook(self, url: str) -> None:
        r = httpx.post(
            f"http://127.0.0.1:{self.api_port}/3.0/projects/{self.project_id}/webhooks",
            headers={"Authorization": self.master_key},
            json={"url": url, "event_types": ["ingest.failed"]},
            timeout=30,
        )
        r.raise_for_status()

    def start_worker(self) -> WorkerProcess:
        worker = WorkerProcess(
            self.database_url,
            self.bootstrap,
            self.root / "workers",
            **{
                k: v
                for k, v in self.env.items()
                if k.startswith("INBOUND_") and "WORKER_METRICS" not in k
            },
        ).start()
        self.workers.append(worker)
        return worker

    # -- faults --------------------------------------------------------------------------
    def kill_broker(self, node_id: int) -> None:
        state = local.read_state(self.kafka_dir)
        assert state is not None
        [node] = [n for n in state.nodes if n["node_id"] == node_id]
        os.kill(node["pid"], signal.SIGKILL)
        wait_until(lambda: not local.pid_alive(node["pid"]), 30, "the broker did not die")

    def restart_broker(self, node_id: int) -> None:
        local.restart_node(self.kafka_dir, node_id, self.cache_dir)

    def kill_worker(self) -> None:
        victim = self.workers.pop(0)
        victim.kill()

    def restart_service(self, name: str) -> None:
        self.services[name].kill()
        self.services[name].start()

    def stop_postgres(self) -> None:
        self.postgres.stop("immediate")

    def start_postgres(self) -> None:
        self.postgres.restart()
        wait_for(self.database_url, timeout=60)

    # -- stop ----------------------------------------------------------------------------
    def stop(self) -> None:
        # Everything here is thrown away after the run (and killing is what the soak does
        # anyway): SIGKILL, no graceful shutdown to wait for.
        procs = [w.proc for w in self.workers] + [s.proc for s in self.services.values()]
        live = [p for p in procs if p is not None and p.poll() is None]
        for proc in live:
            proc.kill()
        for proc in live:
            proc.wait(10)
        state = local.read_state(self.kafka_dir)
        for node in state.nodes if state else []:
            if local.pid_alive(node["pid"]):
                os.kill(node["pid"], signal.SIGKILL)
        if getattr(self, "receiver", None) is not None:
            self.receiver.shutdown()
        local.stop(self.kafka_dir)
        if getattr(self, "postgres", None) is not None:
            self.postgres.cleanup()

    def tails(self) -> str:
        parts = [f"--- {name}\n{s.tail()}" for name, s in self.services.items()]
        parts += [f"--- worker {w.metrics_port}\n{w.tail()}" for w in self.workers]
        return "\n".join(parts)

    def alive(self) -> dict[str, bool]:
        out = {
            name: s.proc is not None and s.proc.poll() is None for name, s in self.services.items()
        }
        out |= {f"worker-{i}": w.alive() for i, w in enumerate(self.workers)}
        return out
