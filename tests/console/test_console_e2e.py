"""Issue #13's browser flow with every real part: bad events produced by a standard Kafka
client through the edge gateway (TLS, SASL) to the real broker, `inbound worker` and
`inbound api` as subprocesses on one SQLite database, and a headless Chromium (offline) that
signs in with the master key, finds the problem with its count, opens it and a sample error
(the offending property marked), runs a replay dry run, resolves it; then project B sees
nothing of A, and after sign-out the session cookie opens nothing. Screenshots of each page
go under the test's tmp_path."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import Engine

from app.store.db import make_engine, session_scope
from app.store.projects import create_project
from app.tls.dev_certs import make_dev_certs
from tests.gateway.conftest import make_edge
from tests.ingest.test_problems_e2e import problem_counts, produce_through_edge
from tests.support import metrics
from tests.support.browser import chromium_or_skip, offline_chromium
from tests.support.cli import ApiProcess
from tests.support.console_browser import go, page_shot, sign_in_customer
from tests.support.worker import WorkerProcess, isolated_group, wait_until

pytestmark = pytest.mark.kafka

BAD = 5  # bad events sent, all of one kind
TITLE = "Property name `$price` starts with `$`"
SESSION_COOKIE = "inbound_console"  # the console's documented cookie name


def priced_problem(project_id: str) -> str:
    """The documented fingerprint of {"$price": ...} in `purchases`, written out."""
    joined = "\x1f".join((project_id, "purchases", "invalid_property_name", "$price"))
    return hashlib.sha256(joined.encode()).hexdigest()[:32]


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    made = make_engine(sqlite_url)
    try:
        yield made
    finally:
        made.dispose()


@pytest.fixture
def edge(make_settings, sqlite_url: str, kafka_bootstrap: str, tmp_path: Path):  # noqa: ANN001, ANN201
    chromium_or_skip()  # before starting anything
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
def api(sqlite_url: str, kafka_bootstrap: str, tmp_path: Path) -> Iterator[ApiProcess]:
    proc = ApiProcess(sqlite_url, kafka_bootstrap, tmp_path / "api").start()
    try:
        yield proc
    finally:
        proc.stop()


def test_bad_events_through_the_edge_to_a_resolved_problem_in_the_browser(
    engine: Engine,
    edge,
    worker: WorkerProcess,
    api: ApiProcess,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    from selenium.webdriver.common.by import By

    with session_scope(engine) as session:
        a = create_project(session, "Shop A")
        b = create_project(session, "Shop B")
    pid = a["project_id"]
    problem = priced_problem(pid)
    produce_through_edge(edge, a, "purchases", [b'{"$price": 1}'] * BAD)
    wait_until(
        lambda: problem_counts(engine, pid) == {problem: ("open", BAD)},
        30,
        lambda: f"problems {problem_counts(engine, pid)}\n{worker.tail()}",
    )
    lag = lambda: metrics.value(worker.metrics(), "inbound_consumer_lag")  # noqa: E731
    wait_until(lambda: lag() == 0, 30, lambda: f"lag {lag()}\n{worker.tail()}")

    shots = tmp_path / "shots"
    with offline_chromium(1280, 900) as driver:

        def body() -> str:
            return driver.find_element(By.TAG_NAME, "body").text

        # Sign in with A's master key: its problems list, the problem with its count.
        sign_in_customer(driver, api.url, pid, a["master_key"])
        a_list = f"{api.url}/console/projects/{pid}/problems"
        assert driver.current_url == a_list
        rows = driver.find_elements(By.CSS_SELECTOR, "table.problems tbody tr")
        listed = [
            (
                r.find_element(By.CSS_SELECTOR, "td.title").text,
                r.find_element(By.CSS_SELECTOR, "td.count").text,
                r.find_element(By.CSS_SELECTOR, ".badge").text,
            )
            for r in rows
        ]
        assert listed == [(TITLE, "5", "open")]
        assert a["master_key"] not in driver.page_source
        page_shot(driver, shots / "problems.png", 1280)

        # The problem: its count and its sample errors, newest first.
        go(driver, driver.find_element(By.LINK_TEXT, TITLE))
        problem_url = f"{a_list}/{problem}"
        assert driver.current_url == problem_url
        assert driver.find_element(By.ID, "problem-count").text == "5"
        samples = driver.find_elements(By.CSS_SELECTOR, "a.sample")
        assert len(samples) == BAD
        page_shot(driver, shots / "problem.png", 1280)

        # A sample error: the payload with the offending property marked.
        go(driver, samples[0])
        assert urlsplit(driver.current_url).path.startswith(f"/console/projects/{pid}/errors/")
        mark = driver.find_element(By.ID, "highlight")
        assert mark.tag_name == "mark"
        assert mark.text == '"$price": 1' and mark.is_displayed()
        assert driver.find_element(By.ID, "detail-path").text == "$price"
        assert driver.find_element(By.ID, "kcat").text.startswith("kcat -C -b ")
        page_shot(driver, shots / "error.png", 1280)

        # Replay, dry run: how many would go.
        driver.get(problem_url)
        go(driver, driver.find_element(By.ID, "replay-dry-run"))
        assert driver.find_element(By.ID, "replay-matched").text == "5"
        assert driver.find_element(By.ID, "replay-confirm").text == "Replay 5 now"
        page_shot(driver, shots / "problem-dry-run.png", 1280)

        # Resolve: the problem's page and the list say resolved.
        driver.get(problem_url)
        go(driver, driver.find_element(By.ID, "resolve"))
        assert driver.current_url == f"{problem_url}?done=resolved"
        assert driver.find_element(By.CSS_SELECTOR, ".status-line .badge").text == "resolved"
        assert "The problem is resolved" in body()
        driver.get(a_list)
        badge = driver.find_element(By.CSS_SELECTOR, "table.problems tbody tr .badge")
        assert badge.text == "resolved"
        assert problem_counts(engine, pid) == {problem: ("resolved", BAD)}
        page_shot(driver, shots / "problems-resolved.png", 1280)

        # Project B: an empty list, and A's problem is a page that is not found.
        driver.delete_all_cookies()
        sign_in_customer(driver, api.url, b["project_id"], b["master_key"])
        assert driver.current_url == f"{api.url}/console/projects/{b['project_id']}/problems"
        assert driver.find_elements(By.CSS_SELECTOR, "table.problems") == []
        assert "No problems." in body()
        page_shot(driver, shots / "b-problems.png", 1280)
        driver.get(problem_url)
        assert driver.find_element(By.TAG_NAME, "h1").text == "Not found"
        assert "$price" not in driver.page_source and TITLE not in driver.page_source
        page_shot(driver, shots / "b-a-problem.png", 1280)
        cookie = driver.get_cookie(SESSION_COOKIE)
        assert cookie is not None and cookie["httpOnly"]
        jar = {SESSION_COOKIE: cookie["value"]}
        assert httpx.get(problem_url, cookies=jar).status_code == 404  # the page's status

        # Sign out: the cookie the browser held opens nothing any more.
        b_list = f"{api.url}/console/projects/{b['project_id']}/problems"
        driver.get(b_list)
        before = httpx.get(b_list, cookies=jar, follow_redirects=False)
        assert before.status_code == 200, "the session works before sign-out"
        go(driver, driver.find_element(By.CSS_SELECTOR, "button.link"))
        assert "You are signed out." in body()
        after = httpx.get(b_list, cookies=jar, follow_redirects=False)
        assert after.status_code == 303
        assert urlsplit(after.headers["location"]).path == "/console/login"
        driver.get(b_list)
        assert urlsplit(driver.current_url).path == "/console/login"
