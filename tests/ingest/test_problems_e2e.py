"""Issue #12's "Done when", end to end with real parts: bad events of two kinds produced by a
standard Kafka client through the edge gateway (TLS, SASL), the real broker, `inbound worker`
and `inbound webhooks` as subprocesses, and a loopback receiver. Two problems with exact
counts; one resolved through the API; a new bad event of its kind regresses it, and a signed
problem.regressed reaches the receiver."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from standardwebhooks.webhooks import Webhook as StandardVerifier

from app.api.app import create_app
from app.store.db import make_engine, session_scope
from app.store.models import Problem
from app.store.projects import create_project
from app.tls.dev_certs import make_dev_certs
from tests.gateway.conftest import make_edge
from tests.gateway.helpers import producer_for
from tests.support import metrics
from tests.support.worker import WorkerProcess, isolated_group, wait_until
from tests.webhooks.receiver import Received, Receiver

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "one key for the API and the dispatcher, problems e2e"
LINKS = "https://inbound.example.com"
PRICED, BROKEN = 5, 3  # bad events of each kind


def problem_id(project: str, collection: str, code: str, location: str) -> str:
    """The documented fingerprint rule, written out."""
    joined = "\x1f".join((project, collection, code, location))
    return hashlib.sha256(joined.encode()).hexdigest()[:32]


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    made = make_engine(sqlite_url)
    try:
        yield made
    finally:
        made.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def edge(make_settings, sqlite_url: str, kafka_bootstrap: str, tmp_path: Path):  # noqa: ANN001, ANN201
    thread, edge = make_edge(
        make_settings, sqlite_url, kafka_bootstrap, make_dev_certs(tmp_path / "certs")
    )
    try:
        yield edge
    finally:
        thread.stop()


@pytest.fixture
def worker(sqlite_url: str, kafka_bootstrap: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(
        sqlite_url, kafka_bootstrap, tmp_path / "worker", **isolated_group(kafka_bootstrap)
    ).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def dispatcher(sqlite_url: str, tmp_path: Path) -> Iterator[subprocess.Popen]:
    """`inbound webhooks` in its own process, as `inbound up` starts it."""
    log = tmp_path / "dispatcher.log"
    env = {
        **os.environ,
        "INBOUND_DATABASE_URL": sqlite_url,
        "INBOUND_DATA_DIR": str(tmp_path / "dispatcher"),
        "INBOUND_SECRET_KEY": SECRET_KEY,
        "INBOUND_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on loopback
        "INBOUND_WEBHOOK_POLL_MS": "100",
        "INBOUND_WEBHOOK_LINK_BASE": LINKS,
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli.main", "webhooks"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    proc.log_path = log  # type: ignore[attr-defined]
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def produce_through_edge(edge, project: dict, collection: str, values: list[bytes]) -> None:  # noqa: ANN001
    async def send() -> None:
        producer = producer_for(edge, project["project_id"], project["write_key"], acks="all")
        await producer.start()
        try:
            for value in values:
                await producer.send_and_wait(collection, value)
        finally:
            await producer.stop()

    asyncio.run(send())


def problem_counts(engine: Engine, project_id: str) -> dict[str, tuple[str, int]]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(Problem.id, Problem.status, Problem.count).where(
                Problem.project_id == project_id
            )
        ).all()
    return {pid: (status, count) for pid, status, count in rows}


def test_two_kinds_of_bad_event_two_problems_then_a_regression_is_a_signed_webhook(
    engine, sqlite_url, make_settings, edge, worker, dispatcher, receiver
) -> None:
    with session_scope(engine) as session:
        project = create_project(session, "problems e2e")
    pid, master = project["project_id"], project["master_key"]
    priced = problem_id(pid, "purchases", "invalid_property_name", "$price")
    broken = problem_id(pid, "purchases", "invalid_json", "")
    settings = make_settings(sqlite_url, secret_key=SECRET_KEY, webhook_allow_private=True)
    api = TestClient(create_app(settings))
    auth = {"Authorization": master}
    with api:
        made = api.post(
            f"/3.0/projects/{pid}/webhooks",
            json={"url": receiver.url(), "event_types": ["problem.created", "problem.regressed"]},
            headers=auth,
        )
        assert made.status_code == 201, made.text
        secret = made.json()["secret"]

        values = [b'{"$price": %d}' % i for i in range(PRICED)] + [b"{broken"] * BROKEN
        values.append(b'{"item": "fine"}')  # stored, counted in no problem
        produce_through_edge(edge, project, "purchases", values)

        expected = {priced: ("open", PRICED), broken: ("open", BROKEN)}

        def lag() -> float | None:
            return metrics.value(worker.metrics(), "inbound_consumer_lag")

        wait_until(
            lambda: problem_counts(engine, pid) == expected,
            30,
            lambda: f"problems {problem_counts(engine, pid)}\n{worker.tail()}",
        )
        wait_until(lambda: lag() == 0, 30, lambda: f"lag {lag()}\n{worker.tail()}")
        assert problem_counts(engine, pid) == expected, "exact counts once all is committed"

        def seen(kind: str) -> list[Received]:
            assert dispatcher.poll() is None, dispatcher.log_path.read_text()[-3000:]
            return [r for r in receiver.to("/hook") if r.json["type"] == kind]

        created = wait_until(
            lambda: len(seen("problem.created")) == 2 and seen("problem.created"),
            30,
            lambda: "no problem.created\n" + dispatcher.log_path.read_text()[-3000:],
        )
        assert sorted(r.json["data"]["problem_id"] for r in created) == sorted([priced, broken])

        resolved = api.patch(
            f"/3.0/projects/{pid}/problems/{priced}", json={"status": "resolved"}, headers=auth
        )
        assert resolved.status_code == 200, resolved.text
        assert resolved.json()["status"] == "resolved"

        produce_through_edge(edge, project, "purchases", [b'{"$price": 99}'])
        wait_until(
            lambda: problem_counts(engine, pid)[priced] == ("regressed", PRICED + 1),
            30,
            lambda: f"problems {problem_counts(engine, pid)}\n{worker.tail()}",
        )
        (regressed,) = wait_until(
            lambda: seen("problem.regressed"),
            30,
            lambda: "no problem.regressed\n" + dispatcher.log_path.read_text()[-3000:],
        )

    body = StandardVerifier(secret).verify(regressed.body, regressed.headers)
    assert body["type"] == "problem.regressed"
    data = body["data"]
    assert data["project_id"] == pid and data["problem_id"] == priced
    assert data["title"] == "Property name `$price` starts with `$`"
    assert data["code"] == "invalid_property_name" and data["collection"] == "purchases"
    assert (data["status"], data["previous_status"], data["count"]) == ("regressed", "resolved", 6)
    assert data["url"] == f"https://inbound.example.com/3.0/projects/{pid}/problems/{priced}"
    assert problem_counts(engine, pid)[broken] == ("open", BROKEN), "the other kind untouched"
    assert len(seen("problem.created")) == 2 and len(seen("problem.regressed")) == 1
