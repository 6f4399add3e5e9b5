"""The streams, webhooks and audit pages in a real headless Chromium (offline) against a real
`inbound api` on SQLite: a webhook receiver's hostile answer and a hostile collection name are
shown literally and run nothing, no CSP violation occurs, the Resume button resumes the paused
partition. Screenshots at 1280 and 390 px under the test's tmp_path and /tmp/console-shots."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.ingest.persist import BatchOutcome, BatchWriter
from app.ingest.records import Accepted
from app.store.db import engine_for, session_scope
from app.store.migrate import upgrade
from app.store.models import StreamPause, WebhookAttempt, WebhookDelivery
from app.store.projects import create_project
from app.webhooks.registry import create_webhook
from tests.console.support import Sent, reject
from tests.support.browser import chromium_or_skip, offline_chromium
from tests.support.cli import ApiProcess
from tests.support.console_browser import go, page_shot

ADMIN_TOKEN = "browser-ops-admin-token-0123456789"
SCRIPT = "<script>window.__pwned=1</script>"
IMG = '"><img src=x onerror="window.__pwned=1">'
SHOTS = Path("/tmp/console-shots")


def _store(url: str) -> tuple[str, str]:
    """A project with a day of traffic in two collections (one with a hostile name), a paused
    partition, and a webhook whose failed delivery got a hostile answer; (project, webhook)."""
    with session_scope(engine_for(url)) as db:
        pid = create_project(db, "Shop A")["project_id"]
    now = datetime.now(UTC)
    accepted = []
    for hours_ago, count, collection in (
        (0, 40, "purchases"),
        (3, 25, "purchases"),
        (7, 9, SCRIPT),
    ):
        at = now - timedelta(hours=hours_ago)
        for _ in range(count):
            keen_id = uuid.uuid4().hex
            accepted.append(
                Accepted(pid, collection, keen_id, at, at, {"keen": {"id": keen_id}, "n": 1})
            )
    BatchWriter(engine_for(url), payload_cap=65536).write(BatchOutcome(accepted=accepted))
    reject(url, pid, [Sent(b'{"$price": 1}')] * 6 + [Sent(b"{nope", collection=SCRIPT)] * 2)
    with session_scope(engine_for(url)) as db:
        db.add(
            StreamPause(
                project_id=pid,
                collection="purchases",
                topic=f"in.{pid}.purchases",
                partition=1,
                reason="93% of 1000 events rejected",
                paused_at=now - timedelta(minutes=20),
            )
        )
        hook, _ = create_webhook(
            db, pid, "https://hooks.example.com/inbound", ["ingest.failed"], None, now, box=None
        )
        for i, (status, code, excerpt) in enumerate(
            (("failed", 500, f"{SCRIPT}{IMG}"), ("delivered", 200, "ok"))
        ):
            delivery_id = f"msg_{uuid.uuid4().hex}"
            at = now - timedelta(minutes=10 - i)
            db.add(
                WebhookDelivery(
                    id=delivery_id,
                    webhook_id=hook.id,
                    event_type="ingest.failed",
                    payload={"type": "ingest.failed", "data": {"collection": SCRIPT}},
                    status=status,
                    attempts=1,
                    created_at=at,
                    updated_at=at,
                )
            )
            db.flush()
            db.add(
                WebhookAttempt(
                    delivery_id=delivery_id,
                    attempted_at=at,
                    status_code=code,
                    latency_ms=120 + i,
                    response_excerpt=excerpt,
                )
            )
        return pid, hook.id


def _shots(driver, tmp_path: Path, name: str) -> None:  # noqa: ANN001
    SHOTS.mkdir(exist_ok=True)
    for width in (1280, 390):
        path = page_shot(driver, tmp_path / f"{name}-{width}.png", width)
        shutil.copy(path, SHOTS / path.name)
    driver.set_window_size(1280, 1000)


def test_streams_webhooks_audit_in_a_browser(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    chromium_or_skip()
    url = f"sqlite:///{tmp_path / 'inbound.db'}"
    upgrade(url)
    pid, hook_id = _store(url)
    api = ApiProcess(url, None, tmp_path / "data", INBOUND_ADMIN_TOKEN=ADMIN_TOKEN).start()
    try:
        with offline_chromium(1280, 1000) as driver:
            driver.get(f"{api.url}/console/login")
            driver.find_element(By.ID, "admin_token").send_keys(ADMIN_TOKEN)
            driver.find_element(By.ID, "name").send_keys("Grace")
            go(driver, driver.find_element(By.ID, "admin_token"))
            driver.get(f"{api.url}/console/projects/{pid}/streams")
            assert driver.find_element(By.ID, "total-received").text == "82"
            assert driver.find_element(By.ID, "total-rejected").text == "8"
            headings = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "section h3")]
            assert any(SCRIPT in h for h in headings)
            _shots(driver, tmp_path, "ops-streams")
            go(driver, driver.find_element(By.CSS_SELECTOR, "button.resume"))
            assert driver.find_element(By.ID, "no-pauses").is_displayed()
            driver.get(f"{api.url}/console/projects/{pid}/webhooks")
            _shots(driver, tmp_path, "ops-webhooks")
            go(driver, driver.find_element(By.CSS_SELECTOR, "table.webhooks a"))
            excerpts = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "pre.excerpt")]
            assert f"{SCRIPT}{IMG}" in excerpts
            _shots(driver, tmp_path, "ops-webhook")
            go(driver, driver.find_element(By.LINK_TEXT, "Audit"))
            actions = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "td.code code")]
            assert "stream.resume" in actions
            _shots(driver, tmp_path, "ops-audit")
            assert driver.execute_script("return window.__pwned === undefined")
            logs = [entry["message"] for entry in driver.get_log("browser")]
            assert not [m for m in logs if "Content Security Policy" in m or "__pwned" in m], logs
    finally:
        api.stop()
        engine_for(url).dispose()
    assert hook_id
