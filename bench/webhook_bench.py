"""Benchmark: time from a rejected event (its outbox row committed) to the first delivery
attempt that carries it, through the real dispatcher process and a real loopback receiver.

    .venv/bin/python bench/webhook_bench.py [--database-url URL] [--events 2000]
        [--seconds 20] [--projects 5]

Exits non-zero when p99 is 5 s or more, or when any event never arrives.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.store.db import make_engine  # noqa: E402
from app.store.migrate import upgrade  # noqa: E402
from app.store.models import Notification  # noqa: E402
from app.store.projects import create_project  # noqa: E402
from app.webhooks.registry import create_webhook  # noqa: E402

TARGET_P99 = 5.0


class Arrivals:
    def __init__(self) -> None:
        self.first_seen: dict[str, float] = {}
        self.lock = threading.Lock()

    def record(self, body: bytes) -> None:
        now = time.time()
        data = json.loads(body)["data"]
        with self.lock:
            for sample in data.get("samples", []):
                self.first_seen.setdefault(sample["error_id"], now)


def start_receiver(arrivals: Arrivals) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            arrivals.record(body)
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--projects", type=int, default=5)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    upgrade(url)
    engine = make_engine(url)
    arrivals = Arrivals()
    server, port = start_receiver(arrivals)

    projects = []
    with Session(engine) as session, session.begin():
        for i in range(args.projects):
            project = create_project(session, f"bench {i}")["project_id"]
            create_webhook(
                session,
                project,
                f"http://127.0.0.1:{port}/{project}",
                ["ingest.failed"],
                None,
                datetime.now(UTC),
            )
            projects.append(project)

    env = {
        **os.environ,
        "INBOUND_DATABASE_URL": url,
        "INBOUND_DATA_DIR": str(workdir),
        "INBOUND_WEBHOOK_ALLOW_PRIVATE": "true",
        # Quote every error id so the receiver can time each event; windows etc. are defaults.
        "INBOUND_WEBHOOK_SAMPLE_ERRORS": "100000",
        "PYTHONPATH": str(ROOT),
    }
    dispatcher = subprocess.Popen(
        [sys.executable, "-m", "app.cli.main", "webhooks"],
        cwd=ROOT,
        env=env,
        stdout=(workdir / "dispatcher.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    committed: dict[str, float] = {}
    try:
        time.sleep(1.5)  # let it start
        interval = args.seconds / args.events
        started = time.monotonic()
        for n in range(args.events):
            wait = started + n * interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            project = projects[n % len(projects)]
            error_id = uuid.uuid4().hex
            now = datetime.now(UTC)
            with Session(engine) as session, session.begin():
                session.add(
                    Notification(
                        project_id=project,
                        type="ingest.failed",
                        payload={
                            "error_id": error_id,
                            "code": "invalid_json",
                            "stage": "decode",
                            "collection": f"c{n % 3}",
                            "message": "bench",
                            "created_at": now.isoformat(),
                        },
                        created_at=now,
                        dispatched_at=None,
                    )
                )
            committed[error_id] = time.time()
        deadline = time.monotonic() + 30
        while len(arrivals.first_seen) < len(committed) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        dispatcher.send_signal(signal.SIGTERM)
        dispatcher.wait(20)
        server.shutdown()

    latencies = [
        arrivals.first_seen[e] - t for e, t in committed.items() if e in arrivals.first_seen
    ]
    missing = len(committed) - len(latencies)
    result = {
        "database": url.split(":", 1)[0],
        "events": len(committed),
        "projects": args.projects,
        "rate_per_s": round(args.events / args.seconds, 1),
        "missing": missing,
        "p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "p95_s": round(percentile(latencies, 0.95), 3) if latencies else None,
        "p99_s": round(percentile(latencies, 0.99), 3) if latencies else None,
        "max_s": round(max(latencies), 3) if latencies else None,
        "target_p99_s": TARGET_P99,
    }
    print(json.dumps(result, indent=2))
    return 0 if missing == 0 and latencies and result["p99_s"] < TARGET_P99 else 1


if __name__ == "__main__":
    sys.exit(main())
