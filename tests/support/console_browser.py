"""Driving the console in a Selenium browser the way a person does: sign in through the form,
follow a link or press a button and wait for the next page, take a screenshot of the page."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement


def go(driver: WebDriver, element: WebElement, timeout: float = 15) -> None:
    """Click a link or button (or submit a field's form) and wait until the next page is in."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    if element.tag_name == "input":
        element.submit()
    else:
        element.click()
    WebDriverWait(driver, timeout).until(expected_conditions.staleness_of(old))


def sign_in_customer(driver: WebDriver, base_url: str, project_id: str, master_key: str) -> None:
    """The customers' sign-in form, filled in and sent; the browser is on the next page."""
    from selenium.webdriver.common.by import By

    driver.get(f"{base_url}/console/login")
    driver.find_element(By.ID, "project_id").send_keys(project_id)
    field = driver.find_element(By.ID, "master_key")
    field.send_keys(master_key)
    go(driver, field)


def page_shot(driver: WebDriver, path: Path, width: int, height: int | None = None) -> Path:
    """A PNG of the page with a viewport of exactly ``width`` x ``height`` CSS px (the whole
    page's height when None), at one device pixel per CSS px."""

    def viewport(h: int) -> None:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": h, "deviceScaleFactor": 1, "mobile": False},
        )

    driver.execute_cdp_cmd("Emulation.setScrollbarsHidden", {"hidden": True})
    viewport(height or 900)
    if height is None:
        full = driver.execute_script("return document.documentElement.scrollHeight")
        viewport(min(max(full, 600), 6000))
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    driver.execute_cdp_cmd("Emulation.setScrollbarsHidden", {"hidden": False})
    return path
