"""Wiring the console into the API app: its routes, its static files, its headers on every
/console response, and its errors as HTML pages instead of the JSON API's error body."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from app.api.console.routes import CsrfRefused, SignInRequired, router
from app.api.console.routes_fix import router as fix_router
from app.api.console.routes_ops import router as ops_router
from app.api.console.security import add_security_headers, is_console
from app.api.console.templates import message_page, query
from app.gateway.ratelimit import AuthFailures
from app.settings import Settings

STATIC = Path(__file__).parent / "static"
TITLES = {
    400: "That request cannot be answered",
    401: "Sign in first",
    403: "Refused",
    404: "Not found",
    405: "Not allowed",
    413: "Too large",
    415: "Not a form",
    429: "Too many requests",
    503: "Unavailable",
}


def install_console(app: FastAPI, settings: Settings) -> None:
    # Failed sign-ins per client address: in this process (a limit per API process).
    app.state.console_login_failures = AuthFailures(settings.console_login_failures_per_minute)
    app.include_router(router)
    app.include_router(ops_router)  # streams, webhooks, audit
    app.include_router(fix_router)  # the fix editor of the problem and error pages
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        wanted = exc.next_path if exc.next_path != "/console" else ""
        target = "/console/login" + query({"next": wanted})
        response = RedirectResponse(target, status_code=303)
        add_security_headers(response)
        return response

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _exc: CsrfRefused) -> Response:
        return console_error(
            request,
            403,
            "The form was not sent from this console page (its CSRF token is missing or "
            "wrong). Reload the page and try again.",
        )

    @app.middleware("http")
    async def _headers(request: Request, call_next):  # noqa: ANN001, ANN202 - Starlette hook
        response = await call_next(request)
        if is_console(request.url.path):
            add_security_headers(response)
        return response


def console_error(request: Request, status_code: int, message: str) -> Response:
    """An error of a console path as a page (the app's handlers call this for /console)."""
    user = getattr(request.state, "console_user", None)
    title = TITLES.get(status_code, "Something went wrong")
    return message_page(request, status_code, title, message, user)
