"""The interactive API docs (`/docs`) served whole by the API itself.

FastAPI's default page loads Swagger UI from a CDN, so on a machine without internet it stays
blank. The `fastapi-offline` package ships those files (Swagger UI 5 under Apache-2.0, FastAPI's
icon under MIT): they are served from it under `/docs/static/`, and the page is FastAPI's own,
pointed at them. None of these routes is in the OpenAPI document.

FastAPI's `/redoc` page is off: the ReDoc 2 bundle always loads its sidebar logo from its
vendor's CDN, so it cannot be served without a request to another host.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
STATIC_URL = "/docs/static"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"

SWAGGER_JS = "swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui.css"
FAVICON = "favicon.png"


def asset_dir() -> Path:
    """The folder of the bundled files; a broken install fails here, at startup."""
    directory = Path(str(files("fastapi_offline") / "static"))
    missing = [
        name for name in (SWAGGER_JS, SWAGGER_CSS, FAVICON) if not (directory / name).is_file()
    ]
    if missing:
        raise RuntimeError(f"fastapi-offline is missing the docs assets {missing} in {directory}")
    return directory


def install_docs(app: FastAPI) -> None:
    """Add `/docs`, its OAuth2 redirect page and their assets to an app created with
    ``docs_url=None, redoc_url=None`` (so FastAPI's CDN-backed pages are not there too)."""
    assert app.docs_url is None and app.redoc_url is None, "FastAPI's own docs pages are on"
    openapi_url = app.openapi_url
    assert openapi_url, "the docs pages render the app's OpenAPI document"

    app.mount(STATIC_URL, StaticFiles(directory=asset_dir()), name="docs-static")

    def static(request: Request, name: str) -> str:
        return f"{_root(request)}{STATIC_URL}/{name}"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=static(request, SWAGGER_JS),
            swagger_css_url=static(request, SWAGGER_CSS),
            swagger_favicon_url=static(request, FAVICON),
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()


def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")
