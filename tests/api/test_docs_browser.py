"""The docs page in a real browser with no internet: `/docs` (Swagger UI) renders the API's
operations from a running `inbound api`, and every request the browser makes goes to the API
itself (README, "HTTP API": served at `/docs`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.browser import chromium_or_skip, offline_chromium, requests
from tests.support.cli import ApiProcess, api_on_fresh_sqlite

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _operations() -> int:
    paths = json.loads(COMMITTED.read_text(encoding="utf-8"))["paths"]
    return sum(1 for item in paths.values() for method in item if method in METHODS)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    chromium_or_skip()  # before starting anything
    with api_on_fresh_sqlite(tmp_path_factory.mktemp("api")) as proc:
        yield proc


def test_docs_page_renders_offline(
    api: ApiProcess, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    expected = _operations()
    screenshot = tmp_path / "docs.png"
    with offline_chromium() as driver:
        driver.get(f"{api.url}/docs")
        try:
            # Swagger UI renders the document's title and one .opblock per operation.
            WebDriverWait(driver, 60).until(
                lambda d: (
                    len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= expected
                    and "Inbound" in d.find_element(By.CSS_SELECTOR, ".info .title").text
                )
            )
        finally:
            driver.save_screenshot(str(screenshot))
            record_property("screenshot", str(screenshot))
            print(f"screenshot of /docs: {screenshot}")
        heading = driver.find_element(By.CSS_SELECTOR, ".info .title").text
        rendered = len(driver.find_elements(By.CSS_SELECTOR, ".opblock"))
        console = driver.get_log("browser")
        made = requests(driver)

    assert "Inbound" in heading and "0.1.0" in heading, heading
    assert rendered == expected, f"{rendered} operations rendered, the document has {expected}"
    severe = [entry for entry in console if entry["level"] == "SEVERE"]
    assert severe == [], f"console errors on /docs: {severe}"
    assert made, "the browser logged no request at all?"
    elsewhere = [url for url in made if urlsplit(url).hostname != "127.0.0.1"]
    assert elsewhere == [], f"/docs made requests to other hosts: {elsewhere}"
    # The page's script and style, and the document it renders, all came from the API.
    for path in (
        "/docs/static/swagger-ui-bundle.js",
        "/docs/static/swagger-ui.css",
        "/openapi.json",
    ):
        assert f"{api.url}{path}" in made, made
