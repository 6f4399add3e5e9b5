"""The console's Jinja2 environment (autoescape on for every template) and page rendering."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from app.api.console.payload_view import visible
from app.api.console.security import CSRF_FIELD, add_security_headers

TEMPLATES = Path(__file__).parent / "templates"


def when(value: str | datetime | None) -> str:
    """An ISO-8601 instant as ``2026-12-04 10:22:05 UTC`` (the API's own strings are UTC)."""
    if not value:
        return "—"
    try:
        at = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    except ValueError:
        return str(value)
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def ticks(text: str | None) -> Markup:
    """Our own advice text with its `backquoted` words as <code> (escaped like the rest)."""
    parts = (text or "").split("`")
    out = [
        Markup("<code>") + visible(part) + Markup("</code>") if i % 2 else visible(part)
        for i, part in enumerate(parts)
    ]
    return Markup("").join(out)


def query(params: dict[str, Any]) -> str:
    """``?a=1&b=2`` of the non-empty ``params`` (empty string when none)."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"?{urlencode(kept)}" if kept else ""


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template, whatever its name
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["visible"] = visible
    env.filters["when"] = when
    env.filters["ticks"] = ticks
    env.globals["query"] = query
    env.globals["CSRF_FIELD"] = CSRF_FIELD
    return env


ENV = _environment()


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    page = ENV.get_template(template).render(
        {"user": None, "csrf_token": "", "path": request.url.path, **context}
    )
    response = HTMLResponse(page, status_code=status_code)
    add_security_headers(response)
    return response


def message_page(
    request: Request, status_code: int, title: str, message: str, user: Any = None
) -> HTMLResponse:
    """A page saying what went wrong (403, 404, 429, ...) in the console's layout."""
    context = {"title": title, "message": message, "status": status_code, "user": user}
    if user is not None:
        context["csrf_token"] = user.csrf_token
    return render(request, "message.html", context, status_code)
