"""`inbound api` serves the OpenAPI document (README, "HTTP API": `openapi/openapi.json`,
served at `/docs`): the interactive page and the document itself, over real HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.support.cli import ApiProcess, api_on_fresh_sqlite

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    with api_on_fresh_sqlite(tmp_path_factory.mktemp("api")) as proc:
        yield proc


def _assets(html: str) -> list[str]:
    """Every script, stylesheet and icon the page loads."""
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html) + re.findall(
        r"""\burl\s*:\s*["']([^"']+)["']""", html
    )


def test_docs_is_an_html_page_over_the_served_document(api: ApiProcess) -> None:
    r = httpx.get(f"{api.url}/docs", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text.lower()
    # The page renders the API's own document.
    assert "/openapi.json" in r.text


def test_openapi_json_is_served_and_is_the_committed_document(api: ApiProcess) -> None:
    r = httpx.get(f"{api.url}/openapi.json", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == json.loads(COMMITTED.read_text(encoding="utf-8"))


def test_docs_loads_nothing_from_other_hosts(api: ApiProcess) -> None:
    """A self-hosted service's docs page must work on a machine without internet access."""
    page = f"{api.url}/docs"
    html = httpx.get(page, timeout=10).text
    assets = _assets(html)
    assert assets, "the page loads no assets at all?"
    foreign = [a for a in assets if urlsplit(urljoin(page, a)).netloc != urlsplit(page).netloc]
    assert foreign == [], f"/docs loads assets from other hosts: {foreign}"
    for asset in assets:
        assert httpx.get(urljoin(page, asset), timeout=10).status_code == 200, asset


def test_redoc_is_not_served(api: ApiProcess) -> None:
    """FastAPI's /redoc page is off: ReDoc's bundle always loads its logo from another host."""
    r = httpx.get(f"{api.url}/redoc", timeout=10)
    assert r.status_code == 404
    assert r.json()["error_code"] == "ResourceNotFoundError"
