"""What every console response carries, and the CSRF rule of every state-changing form.

The Content-Security-Policy allows only the console's own script and style files (no inline
script or style at all) and images from itself or data: URLs, forbids framing, and lets
forms post only to the console's own origin: text from a rejected event that slipped past
escaping still could not run or load anything.

CSRF: each session has a random token, rendered as a hidden field in every form and compared
in constant time with the posted one. The sign-in form, which has no session yet, uses a
double-submit cookie (a random value in a cookie and in the form, which must agree).
SameSite=Strict cookies are the second line.
"""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import Response

CONSOLE_PREFIX = "/console"
SESSION_COOKIE = "inbound_console"
LOGIN_CSRF_COOKIE = "inbound_console_login"
CSRF_FIELD = "csrf_token"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def is_console(path: str) -> bool:
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


def add_security_headers(response: Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value


def tokens_match(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; never true when either side is missing or empty."""
    if not given or not expected:
        return False
    return secrets.compare_digest(given.encode(), expected.encode())


def is_https(request: Request) -> bool:
    """Served over TLS (uvicorn sets the scheme from --proxy-headers when behind a proxy)."""
    return request.url.scheme == "https"


def set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int | None = None
) -> None:
    """HttpOnly, SameSite=Strict, Path=/console, Secure when the request came over https."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=CONSOLE_PREFIX,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        name, path=CONSOLE_PREFIX, httponly=True, samesite="strict", secure=is_https(request)
    )


def new_login_token() -> str:
    return secrets.token_urlsafe(32)
