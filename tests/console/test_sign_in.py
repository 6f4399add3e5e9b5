"""Console sign-in, sessions, sign-out, CSRF and response headers, through the real app on
SQLite and PostgreSQL (issue #13, "Who and how they sign in")."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.api.app import create_app
from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.models import ApiKey, AuditEntry, ConsoleSession
from tests.console.conftest import ADMIN_TOKEN, form_token, sign_in, signed_in_token

# Tests of what the app does before or without the database's part in it run on SQLite only
# (the fixture db_url, parametrized indirectly); sessions themselves run on both.
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _headers_ok(response) -> None:  # noqa: ANN001
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


def _sessions(settings: Settings) -> list[ConsoleSession]:
    with session_scope(engine_for(settings.effective_database_url)) as db:
        rows = db.scalars(select(ConsoleSession)).all()
        db.expunge_all()
        return list(rows)


@sqlite_only
def test_login_page_has_labelled_fields_and_the_headers(client: TestClient) -> None:
    page = client.get("/console/login")
    assert page.status_code == 200
    _headers_ok(page)
    for field in ("project_id", "master_key", "admin_token", "name"):
        assert f'<label for="{field}">' in page.text and f'id="{field}"' in page.text
    assert 'type="password"' in page.text
    assert 'method="post" action="/console/login"' in page.text
    # No inline script or style for the CSP to forbid.
    assert "<style" not in page.text and " style=" not in page.text
    assert re.findall(r"<script[^>]*>", page.text) == [
        '<script src="/console/static/console.js" defer>'
    ]


@sqlite_only
def test_every_console_response_has_the_headers(client: TestClient, projects) -> None:  # noqa: ANN001
    a, _ = projects
    for path in ("/console", "/console/problems", "/console/static/console.css", "/console/nope"):
        _headers_ok(client.get(path, follow_redirects=False))
    signed_in_token(client, a)
    for path in (
        f"/console/projects/{a['project_id']}/problems",
        f"/console/projects/{a['project_id']}/problems/{'0' * 32}",  # a 404 page
        "/console/static/console.js",
    ):
        _headers_ok(client.get(path))
    # The JSON API is not touched by the console's policy.
    assert "content-security-policy" not in client.get("/healthz").headers


def test_customer_signs_in_with_the_master_key(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, _ = projects
    answer = sign_in(client, a)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console"
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith("inbound_console=")
    )
    token = cookie.split(";")[0].split("=", 1)[1]
    attributes = {p.strip().lower() for p in cookie.split(";")[1:]}
    assert {"httponly", "path=/console", "samesite=strict"} <= attributes
    assert "secure" not in attributes  # plain http here
    # The table holds the token's digest, never the token, and nothing of the key.
    (row,) = _sessions(console_settings)
    assert row.id == hashlib.sha256(token.encode()).hexdigest()
    assert row.kind == "customer" and row.project_id == a["project_id"]
    assert a["master_key"] not in repr(vars(row))
    home = client.get("/console", follow_redirects=False)
    assert home.headers["location"] == f"/console/projects/{a['project_id']}/problems"
    page = client.get(home.headers["location"])
    assert page.status_code == 200 and "No problems" in page.text
    assert a["master_key"] not in page.text
    with session_scope(engine_for(console_settings.effective_database_url)) as db:
        actions = db.scalars(select(AuditEntry.action)).all()
    assert actions == ["console.sign_in"]


@sqlite_only
def test_session_cookie_is_secure_over_https(console_settings: Settings, projects) -> None:  # noqa: ANN001
    a, _ = projects
    with TestClient(create_app(console_settings), base_url="https://testserver") as c:
        answer = sign_in(c, a)
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith("inbound_console=")
    )
    assert "secure" in {p.strip().lower() for p in cookie.split(";")[1:]}


@sqlite_only
@pytest.mark.parametrize(
    "fields",
    [
        {"master_key": "0" * 64},  # no such key
        {"master_key": ""},
        {"project_id": "someone-else"},  # the key is right, the project not
    ],
)
def test_wrong_customer_secret_shows_the_form_again(
    client: TestClient,
    projects,
    fields: dict,
    caplog: pytest.LogCaptureFixture,  # noqa: ANN001
) -> None:
    a, b = projects
    caplog.set_level(logging.DEBUG)
    answer = sign_in(client, a, **fields)
    assert answer.status_code == 401
    assert "That project id and master key do not match" in answer.text
    assert "inbound_console=" not in answer.headers.get("set-cookie", "")
    assert a["master_key"] not in answer.text
    assert a["master_key"] not in caplog.text
    assert (
        client.get("/console", follow_redirects=False)
        .headers["location"]
        .startswith("/console/login")
    )


@sqlite_only
def test_a_write_key_is_not_a_master_key(client: TestClient, projects) -> None:  # noqa: ANN001
    a, _ = projects
    answer = sign_in(client, a, master_key=a["write_key"])
    assert answer.status_code == 401


@sqlite_only
def test_failed_sign_ins_are_rate_limited_per_address(client: TestClient, projects) -> None:  # noqa: ANN001
    a, _ = projects
    for _ in range(3):  # console_login_failures_per_minute=3 in these tests
        assert sign_in(client, a, master_key="wrong").status_code == 401
    limited = sign_in(client, a)  # even the right key, for the rest of the minute
    assert limited.status_code == 429
    assert "Too many failed sign-ins" in limited.text


@sqlite_only
def test_csrf_less_sign_in_is_refused(client: TestClient, projects) -> None:  # noqa: ANN001
    a, _ = projects
    client.get("/console/login")
    data = {"as": "customer", "project_id": a["project_id"], "master_key": a["master_key"]}
    for token in (None, "forged"):
        answer = client.post(
            "/console/login",
            data=data | ({"csrf_token": token} if token else {}),
            follow_redirects=False,
        )
        assert answer.status_code == 403
        assert "CSRF" in answer.text


def test_staff_sign_in_with_the_admin_token(client: TestClient, projects) -> None:  # noqa: ANN001
    a, b = projects
    assert sign_in(client, None, admin_token="not-it").status_code == 401
    answer = sign_in(client, None, name="Ada")
    assert answer.status_code == 303
    home = client.get("/console", follow_redirects=False)
    assert home.headers["location"] == "/console/problems"
    page = client.get("/console/problems")
    assert page.status_code == 200
    assert "Support staff" in page.text and "admin:Ada" in page.text
    assert ADMIN_TOKEN not in page.text
    # The project picker lists every project.
    assert a["project_id"] in page.text and b["project_id"] in page.text


def test_idle_session_ends(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, _ = projects
    signed_in_token(client, a)
    engine = engine_for(console_settings.effective_database_url)
    with session_scope(engine) as db:
        db.execute(
            update(ConsoleSession).values(
                last_seen_at=datetime.now(UTC) - timedelta(minutes=30, seconds=5)
            )
        )
    answer = client.get(f"/console/projects/{a['project_id']}/problems", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == (
        f"/console/login?next=%2Fconsole%2Fprojects%2F{a['project_id']}%2Fproblems"
    )
    assert _sessions(console_settings) == []


def test_session_of_a_revoked_key_ends(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, _ = projects
    signed_in_token(client, a)
    with session_scope(engine_for(console_settings.effective_database_url)) as db:
        db.execute(update(ApiKey).where(ApiKey.kind == "master").values(is_active=False))
    assert client.get("/console", follow_redirects=False).headers["location"] == "/console/login"


def test_staff_session_ends_when_the_admin_token_changes(
    console_settings: Settings,
    projects,  # noqa: ANN001
) -> None:
    with TestClient(create_app(console_settings)) as c:
        signed_in_token(c, None)
        cookies = dict(c.cookies)
    changed = console_settings.model_copy(update={"admin_token": "another-token-0123456789"})
    with TestClient(create_app(changed), cookies=cookies) as c:
        assert c.get("/console", follow_redirects=False).headers["location"] == "/console/login"


def test_sign_out_needs_csrf_and_ends_the_session(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, _ = projects
    csrf = signed_in_token(client, a)
    old = dict(client.cookies)
    refused = client.post("/console/logout", data={"x": "1"}, follow_redirects=False)
    assert refused.status_code == 403
    assert len(_sessions(console_settings)) == 1
    answer = client.post("/console/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?done=signed_out"
    assert _sessions(console_settings) == []
    assert "You are signed out." in client.get(answer.headers["location"]).text
    # The old cookie, replayed, signs no one in.
    client.cookies.clear()
    for name, value in old.items():
        client.cookies.set(name, value, path="/console")
    assert client.get("/console", follow_redirects=False).headers["location"] == "/console/login"


@sqlite_only
def test_next_is_kept_through_sign_in_and_only_within_the_console(
    client: TestClient,
    projects,  # noqa: ANN001
) -> None:
    a, _ = projects
    target = f"/console/projects/{a['project_id']}/problems?status=open"
    page = client.get("/console/login", params={"next": target})
    assert f'name="next" value="{target.replace("&", "&amp;")}"' in page.text
    answer = sign_in(client, a, next=target)
    assert answer.headers["location"] == target
    client.cookies.clear()
    for evil in ("https://evil.example/", "//evil.example/console/", "/console/..//evil"):
        assert sign_in(client, a, next=evil).headers["location"] == "/console"


@sqlite_only
def test_csrf_token_is_per_session(client: TestClient, projects) -> None:  # noqa: ANN001
    a, _ = projects
    first = signed_in_token(client, a)
    client.cookies.clear()
    second = signed_in_token(client, a)
    assert first != second
    page = client.get("/console/login")
    assert form_token(page.text) not in (first, second)
