"""The console in a real headless Chromium (no internet) against a real `inbound api`, with
rejections stored by the worker's BatchWriter on the same SQLite database (issue #13, "Hostile
content" and "Tests in a real browser"): hostile text is shown literally and runs nothing,
the console's own script and style load under its CSP, sign-in and sign-out, a customer sees
nothing of another project, a CSRF-less form is refused, and the flow from the problems list
to a resolved problem. Screenshots at 1280 and 390 px go under the test's tmp_path (and a copy
under /tmp/console-shots for review)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app.store.db import engine_for, session_scope
from app.store.migrate import upgrade
from app.store.projects import create_project
from tests.console.support import Sent, reject
from tests.support.browser import chromium_or_skip, offline_chromium, requests
from tests.support.cli import ApiProcess
from tests.support.worker import wait_until

ADMIN_TOKEN = "browser-admin-token-0123456789"
SCRIPT = "<script>window.__pwned=1</script>"
IMG = '"><img src=x onerror="window.__pwned=1">'
JS_URL = "javascript:alert(1)"
RLO = "\u202e"
SHOTS = Path("/tmp/console-shots")
DOLLAR = b'{"user": "ada", "items": [{"sku": "a1"}, {"sku": "b2", "$price": 12.5}]}'


@dataclass
class Site:
    api: ApiProcess
    a: dict[str, str]
    b: dict[str, str]
    hostile: dict[str, str]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    chromium_or_skip()  # before starting anything
    data_dir = tmp_path_factory.mktemp("console-api")
    url = f"sqlite:///{data_dir / 'inbound.db'}"
    upgrade(url)
    with session_scope(engine_for(url)) as db:
        a = create_project(db, "Shop A")
        b = create_project(db, "Shop B")
        hostile = create_project(db, f"{SCRIPT} {IMG} {RLO}evil")
    reject(url, a["project_id"], [Sent(DOLLAR)] * 3 + [Sent(b'{"total": 1,}')])
    reject(url, b["project_id"], [Sent(b'{"$b_only": 1}')])
    evil = {"note": SCRIPT, "img": IMG, "url": JS_URL, "rlo": f"abc{RLO}exe.txt", f"{SCRIPT}.x": 1}
    evil_json = json.dumps(evil, ensure_ascii=False).encode()
    evil_headers = (
        ("x-script", SCRIPT.encode()),
        ("x-img", IMG.encode()),
        (f"x-rlo{RLO}", f"{RLO}gnp.exe".encode()),
        ("x-url", JS_URL.encode()),
    )
    reject(
        url,
        hostile["project_id"],
        [
            Sent(evil_json, key=IMG.encode(), headers=evil_headers),
            Sent(b'{"fine": 1}', collection=SCRIPT, headers=evil_headers),
            Sent(b'{"fine": 1}', collection=IMG),
            Sent(b'{"fine": 1}', collection=f"{JS_URL}{RLO}txt.exe"),
        ],
    )
    api = ApiProcess(url, None, data_dir, INBOUND_ADMIN_TOKEN=ADMIN_TOKEN).start()
    try:
        yield Site(api, a, b, hostile)
    finally:
        api.stop()
        engine_for(url).dispose()


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator:  # noqa: ANN001
    with offline_chromium(1280, 1000) as driver:
        yield driver


@pytest.fixture
def driver(browser, site: Site):  # noqa: ANN001, ANN201
    """The module's browser, signed out, its logs emptied."""
    browser.set_window_size(1280, 1000)
    browser.get(f"{site.api.url}/console/login")
    browser.delete_all_cookies()
    browser.get_log("browser")
    requests(browser)
    return browser


def _shot(driver, tmp_path: Path, name: str) -> None:  # noqa: ANN001
    """Full-page screenshots at 1280 and 390 px wide, back at 1280 afterwards."""
    for width in (1280, 390):
        driver.set_window_size(width, 900)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(max(height + 120, 600), 6000))
        path = tmp_path / f"{name}-{width}.png"
        driver.save_screenshot(str(path))
        SHOTS.mkdir(exist_ok=True)
        shutil.copy(path, SHOTS / path.name)
    driver.set_window_size(1280, 1000)


def _go(driver, element) -> None:  # noqa: ANN001
    """Click a link or button (or submit a field's form) and wait for the next page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    if element.tag_name == "input":
        element.submit()
    else:
        element.click()
    WebDriverWait(driver, 15).until(expected_conditions.staleness_of(old))


def _sign_in(driver, site: Site, project: dict[str, str] | None, secret: str | None = None) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    driver.get(f"{site.api.url}/console/login")
    if project is None:
        driver.find_element(By.ID, "admin_token").send_keys(secret or ADMIN_TOKEN)
        driver.find_element(By.ID, "name").send_keys("Grace")
        _go(driver, driver.find_element(By.ID, "admin_token"))
    else:
        driver.find_element(By.ID, "project_id").send_keys(project["project_id"])
        driver.find_element(By.ID, "master_key").send_keys(secret or project["master_key"])
        _go(driver, driver.find_element(By.ID, "master_key"))


def _assert_clean(driver, site: Site, status: int | None = None) -> None:  # noqa: ANN001
    """No script of the page's content ran, our own script and style did, nothing was
    blocked by the CSP (nothing needed blocking), nothing left the API's host. ``status``:
    the page itself was answered with this error status (Chromium logs it as SEVERE)."""
    assert driver.execute_script("return typeof window.__pwned") == "undefined"
    assert driver.execute_script("return document.documentElement.classList.contains('js')")
    display = driver.execute_script(
        "return getComputedStyle(document.querySelector('header.top')).display"
    )
    assert display == "flex", "console.css did not apply"
    log = driver.get_log("browser")
    expected = f"the server responded with a status of {status} "
    severe = [
        e for e in log if e["level"] == "SEVERE" and not (status and expected in e["message"])
    ]
    assert severe == [], log
    assert [e for e in log if "Content Security Policy" in e["message"]] == [], log
    made = requests(driver)
    assert made and all(urlsplit(u).hostname == "127.0.0.1" for u in made), made
    hrefs = driver.execute_script(
        "return Array.from(document.querySelectorAll('[href],[src],[action]'))"
        ".map(e => e.getAttribute('href') || e.getAttribute('src') || e.getAttribute('action'))"
    )
    assert all(h.startswith(("/", "#", "data:,")) for h in hrefs), hrefs
    assert RLO not in driver.page_source  # drawn as an escape, never as the character


def test_hostile_content_is_shown_literally_and_runs_nothing(
    driver,
    site: Site,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    from selenium.webdriver.common.by import By

    pid = site.hostile["project_id"]
    _sign_in(driver, site, site.hostile)
    assert urlsplit(driver.current_url).path == f"/console/projects/{pid}/problems"
    body = driver.find_element(By.TAG_NAME, "body").text
    # A property name as it was sent, in the problem's title; bad collection names make
    # one problem of their own.
    assert f"A property name contains `.` at `{SCRIPT}.x`" in body
    assert "Invalid collection name" in body
    _assert_clean(driver, site)
    _shot(driver, tmp_path, "hostile-problems")
    problems = driver.current_url

    _go(driver, driver.find_element(By.PARTIAL_LINK_TEXT, "A property name contains"))
    assert f"{SCRIPT}.x" in driver.find_element(By.TAG_NAME, "h1").text
    _assert_clean(driver, site)
    _shot(driver, tmp_path, "hostile-problem")

    _go(driver, driver.find_element(By.CSS_SELECTOR, "a.sample"))
    payload = driver.find_element(By.ID, "payload").text
    assert f'"note": "{SCRIPT}"' in payload
    assert '"img": "\\"><img src=x onerror=\\"window.__pwned=1\\">"' in payload
    assert f'"url": "{JS_URL}"' in payload
    assert '"rlo": "abc\\u202eexe.txt"' in payload
    mark = driver.find_element(By.ID, "highlight")
    assert mark.text == f'"{SCRIPT}.x": 1' and mark.is_displayed()
    body = driver.find_element(By.TAG_NAME, "body").text
    for shown in (IMG, SCRIPT, JS_URL, "x-rlo\\u202e", "\\u202egnp.exe"):
        assert shown in body, shown
    _assert_clean(driver, site)
    _shot(driver, tmp_path, "hostile-error")

    # Each bad collection name, literally, on its error's page.
    driver.get(problems)
    _go(driver, driver.find_element(By.LINK_TEXT, "Invalid collection name"))
    errors = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "a.sample")]
    shown = set()
    for url in errors:
        driver.get(url)
        shown.add(driver.find_element(By.CSS_SELECTOR, "dl.meta dd code").text)
        _assert_clean(driver, site)
    assert shown == {SCRIPT, IMG, f"{JS_URL}\\u202etxt.exe"}


def test_sign_in_out_isolation_and_csrf(driver, site: Site, tmp_path: Path) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    _sign_in(driver, site, site.a, secret="0" * 64)
    message = driver.find_element(By.ID, "login-message").text
    assert "That project id and master key do not match" in message
    assert driver.find_element(By.ID, "master_key").get_attribute("value") == ""
    _assert_clean(driver, site, status=401)
    _shot(driver, tmp_path, "login-wrong-key")

    _sign_in(driver, site, site.b)
    b_list = driver.current_url
    assert "$b_only" in driver.find_element(By.TAG_NAME, "body").text
    a_url = f"{site.api.url}/console/projects/{site.a['project_id']}/problems"
    driver.get(a_url)
    assert driver.find_element(By.TAG_NAME, "h1").text == "Not found"
    assert "$price" not in driver.page_source
    # A form whose CSRF token was taken out is refused.
    driver.get(b_list)
    _go(driver, driver.find_element(By.CSS_SELECTOR, "td.title a"))
    driver.execute_script(
        "document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())"
    )
    _go(driver, driver.find_element(By.ID, "resolve"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Refused"
    assert "CSRF token is missing or wrong" in driver.find_element(By.TAG_NAME, "body").text
    driver.back()
    driver.refresh()
    assert "badge-open" in driver.page_source  # still open
    # Sign out: the session is gone, the pages send you to sign in.
    _go(driver, driver.find_element(By.CSS_SELECTOR, "button.link"))
    assert "You are signed out." in driver.find_element(By.TAG_NAME, "body").text
    driver.get(b_list)
    assert urlsplit(driver.current_url).path == "/console/login"

    # Support staff see every project, the hostile project's name included, escaped.
    driver.get_log("browser")  # the 404 and 403 above were logged
    requests(driver)
    _sign_in(driver, site, None)
    assert urlsplit(driver.current_url).path == "/console/problems"
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "admin:Grace" in body and "$b_only" in body and "$price" in body
    options = [o.text for o in driver.find_elements(By.CSS_SELECTOR, "#f-project option")]
    assert any(o.startswith(f"{SCRIPT} {IMG} \\u202eevil") for o in options), options
    _assert_clean(driver, site)
    _shot(driver, tmp_path, "staff-problems")


def test_problem_to_error_to_replay_dry_run_to_resolved(
    driver,
    site: Site,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    from selenium.webdriver.common.by import By

    _sign_in(driver, site, site.a)
    rows = driver.find_elements(By.CSS_SELECTOR, "table.problems tbody tr")
    counts = {
        r.find_element(By.CSS_SELECTOR, "td.title").text: r.find_element(
            By.CSS_SELECTOR, "td.count"
        ).text
        for r in rows
    }
    assert counts == {
        "Property name `$price` starts with `$` in items[]": "3",
        "Event is not valid JSON": "1",
    }
    _assert_clean(driver, site)
    _shot(driver, tmp_path, "problems")

    _go(
        driver,
        driver.find_element(By.LINK_TEXT, "Property name `$price` starts with `$` in items[]"),
    )
    assert driver.find_element(By.ID, "problem-count").text == "3"
    samples = driver.find_elements(By.CSS_SELECTOR, "a.sample")
    assert len(samples) == 3
    _assert_clean(driver, site)
    _shot(driver, tmp_path, "problem")
    problem_page = driver.current_url

    _go(driver, samples[0])
    mark = driver.find_element(By.ID, "highlight")
    assert mark.text == '"$price": 12.5' and mark.is_displayed()
    assert driver.find_element(By.ID, "detail-path").text == "items[1].$price"
    kcat = driver.find_element(By.ID, "kcat").text
    assert kcat.startswith("kcat -C -b 127.0.0.1:9093 -X security.protocol=SASL_SSL")
    assert "sasl.password=$KEY" in kcat and site.a["master_key"] not in driver.page_source
    _assert_clean(driver, site)
    _shot(driver, tmp_path, "error")

    driver.get(problem_page)
    _go(driver, driver.find_element(By.ID, "replay-dry-run"))
    assert driver.find_element(By.ID, "replay-matched").text == "3"
    assert "50.0 per second after a burst of 500" in driver.find_element(By.ID, "replay").text
    assert driver.find_element(By.ID, "replay-confirm").text == "Replay 3 now"
    _shot(driver, tmp_path, "problem-dry-run")

    driver.get(problem_page)
    _go(driver, driver.find_element(By.ID, "resolve"))
    wait_until(lambda: "done=resolved" in driver.current_url, 10, "no redirect after resolve")
    badge = driver.find_element(By.CSS_SELECTOR, ".status-line .badge")
    assert badge.text == "resolved"
    assert driver.find_element(By.ID, "reopen").is_displayed()
    driver.get(f"{site.api.url}/console")
    resolved = driver.find_element(By.CSS_SELECTOR, "table.problems tbody tr .badge-resolved")
    assert resolved.text == "resolved"
    _assert_clean(driver, site)
