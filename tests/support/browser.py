"""A real headless Chromium (Debian's `chromium` + `chromium-driver`) driven by Selenium, with
every host but 127.0.0.1 unresolvable: a page that needs the internet fails as it would on an
offline machine."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

CHROMEDRIVER = "/usr/bin/chromedriver"
# Chromium resolves no name at all (the loopback address is used as it is): the test machine's
# own network, whatever it reaches, plays no part.
OFFLINE_RESOLVER = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def chromium_or_skip() -> tuple[str, str]:
    """The Chromium binary and its driver; skipped when they are absent, except in CI, where
    `.ci/run` installs them and their absence fails the test."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = CHROMEDRIVER if os.access(CHROMEDRIVER, os.X_OK) else shutil.which("chromedriver")
    missing = [n for n, p in (("chromium", chromium), ("chromium-driver", driver)) if not p]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (the dev extra)")
    if missing:
        why = f"no {', '.join(missing)}: apt-get install -y chromium chromium-driver"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    assert chromium and driver
    return chromium, driver


@contextmanager
def offline_chromium(width: int = 1280, height: int = 1600) -> Iterator[WebDriver]:
    """A headless Chromium that logs the console and every network request (see `requests`)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = chromium_or_skip()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",  # the tests run as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        f"--host-resolver-rules={OFFLINE_RESOLVER}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def requests(driver: WebDriver) -> list[str]:
    """URLs of the requests the pages made since the last call, from the DevTools network log
    (data: and blob: URLs, which never leave the page, left out)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if not url.startswith(("data:", "blob:")):
                urls.append(url)
    return urls
