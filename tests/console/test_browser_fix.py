"""The fix editor in a real headless Chromium (offline) against a real `inbound api` on SQLite:
a named operation's button puts its template into the textarea (the console's script runs
under its CSP), the preview counts, hostile payload text in the samples runs nothing.
Screenshots at 1280 and 390 px under the test's tmp_path and /tmp/console-shots/fix-*.png."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy import select

from app.store.db import engine_for, session_scope
from app.store.migrate import upgrade
from app.store.models import Problem
from app.store.projects import create_project
from tests.console.support import Sent, reject
from tests.support.browser import chromium_or_skip, offline_chromium
from tests.support.cli import ApiProcess
from tests.support.console_browser import go, page_shot, sign_in_customer

SHOTS = Path("/tmp/console-shots")
RENAME = '[{"op": "rename", "path": "/items/0/$price", "to": "price"}]'
HOSTILE = b'{"items": [{"$price": 2}], "note": "<script>window.__pwned=1</script>"}'


def _shots(driver, tmp_path: Path, name: str) -> None:  # noqa: ANN001
    SHOTS.mkdir(exist_ok=True)
    for width in (1280, 390):
        path = page_shot(driver, tmp_path / f"{name}-{width}.png", width)
        shutil.copy(path, SHOTS / path.name)
    driver.set_window_size(1280, 1000)


def test_fix_editor_in_a_browser(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    chromium_or_skip()
    url = f"sqlite:///{tmp_path / 'inbound.db'}"
    upgrade(url)
    with session_scope(engine_for(url)) as db:
        project = create_project(db, "Shop A")
    pid = project["project_id"]
    reject(
        url,
        pid,
        [Sent(b'{"items": [{"$price": 1}]}')] * 2
        + [Sent(HOSTILE), Sent(b'{"items": [{"sku": "a"}, {"$price": 3}]}')],
    )
    with session_scope(engine_for(url)) as db:
        problem_id = db.scalar(select(Problem.id))
    api = ApiProcess(url, None, tmp_path / "data").start()
    try:
        with offline_chromium(1280, 1000) as driver:
            sign_in_customer(driver, api.url, pid, project["master_key"])
            driver.get(f"{api.url}/console/projects/{pid}/problems/{problem_id}#fix")
            area = driver.find_element(By.ID, "fix-operations")
            driver.find_element(By.ID, "op-rename").click()
            assert json.loads(area.get_property("value")) == [
                {"op": "rename", "path": "/user.name", "to": "user_name"}
            ]
            driver.find_element(By.ID, "op-cast").click()  # appended to the list
            assert [op["op"] for op in json.loads(area.get_property("value"))] == [
                "rename",
                "cast",
            ]
            _shots(driver, tmp_path, "fix-editor")
            area.clear()
            area.send_keys(RENAME)
            go(driver, driver.find_element(By.ID, "fix-preview"))
            counts = [
                driver.find_element(By.ID, name).text
                for name in ("fix-matched", "fix-accept", "fix-reject", "fix-failed")
            ]
            assert counts == ["4", "3", "0", "1"]
            befores = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "pre.fix-payload")]
            assert HOSTILE.decode() in befores
            assert driver.find_element(By.ID, "fix-apply").is_displayed()
            _shots(driver, tmp_path, "fix-preview")
            assert driver.execute_script("return window.__pwned === undefined")
            logs = [entry["message"] for entry in driver.get_log("browser")]
            assert not [m for m in logs if "Content Security Policy" in m or "__pwned" in m], logs
    finally:
        api.stop()
        engine_for(url).dispose()
