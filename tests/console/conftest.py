"""Fixtures of the console tests: the app on a real database (SQLite and PostgreSQL), two
projects, and signing in the way a browser does (the form's CSRF token, then the cookie)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from app.api.app import create_app
from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.projects import create_project

ADMIN_TOKEN = "console-admin-token-0123456789"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def console_settings(db_url: str, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(db_url, admin_token=ADMIN_TOKEN, console_login_failures_per_minute=3)


@pytest.fixture
def client(console_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(console_settings)) as c:
        yield c
    engine_for(console_settings.effective_database_url).dispose()


@pytest.fixture
def projects(console_settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    with session_scope(engine_for(console_settings.effective_database_url)) as session:
        a = create_project(session, "project A")
        b = create_project(session, "project B")
    return a, b


def form_token(html: str) -> str:
    match = CSRF.search(html)
    assert match, html
    return match.group(1)


def sign_in(client: TestClient, project: dict[str, str] | None = None, **fields: str):
    """POST the sign-in form (customer with ``project``, else staff); the raw response."""
    page = client.get("/console/login")
    assert page.status_code == 200, page.text
    data = {"csrf_token": form_token(page.text), **fields}
    if project is not None:
        data.update(
            {
                "as": "customer",
                "project_id": project["project_id"],
                "master_key": project["master_key"],
            }
        )
    else:
        data.setdefault("as", "staff")
        data.setdefault("admin_token", ADMIN_TOKEN)
    data.update(fields)
    return client.post("/console/login", data=data, follow_redirects=False)


def signed_in_token(client: TestClient, project: dict[str, str] | None = None) -> str:
    """Sign in; the session's CSRF token (from the page the sign-in leads to)."""
    answer = sign_in(client, project)
    assert answer.status_code == 303, answer.text
    page = client.get(answer.headers["location"])
    assert page.status_code == 200, page.text
    return form_token(page.text)
