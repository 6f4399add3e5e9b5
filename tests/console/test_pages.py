"""The console's problems, problem and error pages through the real app on SQLite and
PostgreSQL, with rejections stored by the worker's BatchWriter: what each page shows, the
actions (CSRF-checked), the audit entries, and that a customer sees only their project."""

from __future__ import annotations

import hashlib
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.models import ApiKey, AuditEntry, Problem
from tests.console.conftest import signed_in_token
from tests.console.support import Sent, reject

DOLLAR = b'{"items": [{"sku": "a"}, {"sku": "b", "$price": 12.50}], "ok": true}'
PROBLEM_LINK = re.compile(r'href="/console/projects/(\w+)/problems/([0-9a-f]{32})"')


def _url(settings: Settings) -> str:
    return settings.effective_database_url


def _problem_id(settings: Settings) -> str:
    with session_scope(engine_for(_url(settings))) as db:
        return db.scalars(select(Problem.id).order_by(Problem.count.desc())).first()


def _master_key_id(settings: Settings, project_id: str) -> str:
    with session_scope(engine_for(_url(settings))) as db:
        return db.scalar(
            select(ApiKey.id).where(ApiKey.project_id == project_id, ApiKey.kind == "master")
        )


def _audit(settings: Settings) -> list[tuple[str, str, str | None]]:
    with session_scope(engine_for(_url(settings))) as db:
        rows = db.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.target))
        return [tuple(r) for r in rows if r[1] != "console.sign_in"]


def test_problems_page_lists_with_counts_and_filters(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, _ = projects
    pid = a["project_id"]
    reject(_url(console_settings), pid, [Sent(DOLLAR)] * 3 + [Sent(b'{"a": 1,}')] * 2)
    signed_in_token(client, a)
    page = client.get(f"/console/projects/{pid}/problems")
    assert page.status_code == 200
    text = page.text
    # Two problems, the more recent first; title, count, code, collection, sparkline.
    assert len(PROBLEM_LINK.findall(text)) == 2
    assert ">Property name `$price` starts with `$` in items[]</bdi></a>" in text
    assert ">Event is not valid JSON</bdi></a>" in text
    assert re.search(r'class="num count">3<', text) and re.search(r'class="num count">2<', text)
    assert "<code>invalid_json</code>" in text and "<code>invalid_property_name</code>" in text
    assert text.count('<svg class="spark"') == 2
    assert 'aria-label="3 errors in the last 14 days"' in text
    # Filters go through the API's own: code, status, text, sort; a bad one is its message.
    one = client.get(f"/console/projects/{pid}/problems", params={"code": "invalid_json"}).text
    assert len(PROBLEM_LINK.findall(one)) == 1 and "<code>invalid_json</code>" in one
    none = client.get(f"/console/projects/{pid}/problems", params={"status": "resolved"}).text
    assert PROBLEM_LINK.findall(none) == [] and "No problems match these filters." in none
    by_text = client.get(f"/console/projects/{pid}/problems", params={"q": "PRICE"}).text
    assert len(PROBLEM_LINK.findall(by_text)) == 1
    by_count = client.get(f"/console/projects/{pid}/problems", params={"sort": "count"}).text
    counts = re.findall(r'class="num count">(\d+)<', by_count)
    assert counts == ["3", "2"]
    bad = client.get(f"/console/projects/{pid}/problems", params={"cursor": "nonsense"})
    assert bad.status_code == 200
    assert "cursor is not one this API gave for this sort" in bad.text


def test_problems_page_pages_with_the_api_cursor(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, _ = projects
    pid = a["project_id"]
    # 51 problems (one per $-name), the console's page holds 50.
    sent = [Sent(b'{"$n%d": 1}' % i) for i in range(51)]
    reject(_url(console_settings), pid, sent)
    signed_in_token(client, a)
    first = client.get(f"/console/projects/{pid}/problems").text
    assert len(set(PROBLEM_LINK.findall(first))) == 50
    next_url = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = client.get(next_url).text
    rest = set(PROBLEM_LINK.findall(second))
    assert len(rest) == 1 and not rest & set(PROBLEM_LINK.findall(first))
    assert 'rel="next"' not in second and "First page" in second


def test_customer_b_sees_nothing_of_a(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, b = projects
    (error_id,) = reject(_url(console_settings), a["project_id"], [Sent(DOLLAR)])
    problem_id = _problem_id(console_settings)
    csrf = signed_in_token(client, b)
    assert (
        PROBLEM_LINK.findall(client.get(f"/console/projects/{b['project_id']}/problems").text) == []
    )
    for path in (
        f"/console/projects/{a['project_id']}/problems",
        f"/console/projects/{a['project_id']}/problems/{problem_id}",
        f"/console/projects/{a['project_id']}/errors/{error_id}",
        f"/console/projects/{b['project_id']}/problems/{problem_id}",
        f"/console/projects/{b['project_id']}/errors/{error_id}",
    ):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "items" not in answer.text and problem_id not in answer.text
    # B's staff-only cross-project list is its own list.
    assert client.get("/console/problems", follow_redirects=False).headers["location"] == (
        f"/console/projects/{b['project_id']}/problems"
    )
    changed = client.post(
        f"/console/projects/{a['project_id']}/problems/{problem_id}/status",
        data={"csrf_token": csrf, "status": "resolved"},
    )
    assert changed.status_code == 404
    with session_scope(engine_for(_url(console_settings))) as db:
        assert db.get(Problem, problem_id).status == "open"
    assert _audit(console_settings) == []


def test_problem_page_shows_advice_chart_keys_and_samples(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, _ = projects
    pid = a["project_id"]
    key_id = _master_key_id(console_settings, pid)
    headers = (("inbound.key_id", key_id.encode()),)
    ids = reject(_url(console_settings), pid, [Sent(DOLLAR, headers=headers)] * 2)
    problem_id = _problem_id(console_settings)
    csrf = signed_in_token(client, a)
    page = client.get(f"/console/projects/{pid}/problems/{problem_id}").text
    assert 'id="problem-count">2<' in page
    # code_advice's text for the code, escaped.
    assert "A property name is not allowed: names must be 1 to 256 characters" in page
    assert page.count("<rect ") == 1  # one hour with errors in the 336-hour chart
    assert "errors in the last 336 hours, at most 2 in one hour" in page
    assert key_id in page
    for error_id in ids:
        assert f'href="/console/projects/{pid}/errors/{error_id}"' in page
    for action in ('id="resolve"', 'id="ignore"', 'id="replay-dry-run"'):
        assert action in page
    # Every form of the page carries this session's CSRF token.
    tokens = re.findall(r'name="csrf_token" value="([^"]*)"', page)
    assert len(tokens) == 5 and set(tokens) == {csrf}  # sign-out, resolve, ignore, replay, fix


def test_resolve_ignore_reopen_need_csrf_and_are_audited(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, _ = projects
    pid = a["project_id"]
    reject(_url(console_settings), pid, [Sent(DOLLAR)])
    problem_id = _problem_id(console_settings)
    csrf = signed_in_token(client, a)
    url = f"/console/projects/{pid}/problems/{problem_id}/status"
    for forged in ({}, {"csrf_token": "x" * 43}):
        refused = client.post(url, data={"status": "resolved", **forged})
        assert refused.status_code == 403
    with session_scope(engine_for(_url(console_settings))) as db:
        assert db.get(Problem, problem_id).status == "open"
    done = client.post(url, data={"csrf_token": csrf, "status": "resolved"}, follow_redirects=False)
    assert done.status_code == 303
    assert (
        done.headers["location"] == f"/console/projects/{pid}/problems/{problem_id}?done=resolved"
    )
    page = client.get(done.headers["location"]).text
    assert '<span class="badge badge-resolved">resolved</span>' in page
    assert "The problem is resolved; a new error will regress it." in page
    ignored = client.post(url, data={"csrf_token": csrf, "status": "ignored", "ignore_count": "5"})
    assert ignored.status_code == 200 and "the count reaches 6 (5 more errors)" in ignored.text
    past = client.post(
        url, data={"csrf_token": csrf, "status": "ignored", "ignore_until": "2001-01-01T00:00"}
    )
    assert past.status_code == 400 and "ignore_until must be in the future" in past.text
    client.post(url, data={"csrf_token": csrf, "status": "open"})
    actor = f"key:{_master_key_id(console_settings, pid)}"
    assert _audit(console_settings) == [
        (actor, "problem.resolved", problem_id),
        (actor, "problem.ignored", problem_id),
        (actor, "problem.open", problem_id),
    ]


def test_replay_dry_run_counts_and_confirm_needs_kafka(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, _ = projects
    pid = a["project_id"]
    reject(_url(console_settings), pid, [Sent(DOLLAR)] * 4)
    problem_id = _problem_id(console_settings)
    csrf = signed_in_token(client, a)
    url = f"/console/projects/{pid}/problems/{problem_id}/replay"
    assert client.post(url, data={"confirm": "0"}).status_code == 403
    dry = client.post(url, data={"csrf_token": csrf, "confirm": "0"})
    assert dry.status_code == 200
    assert 'id="replay-matched">4<' in dry.text
    assert "Rate limit: 50.0 per second after a burst of 500; 500 can go right now." in dry.text
    assert 'id="replay-confirm"' in dry.text
    # No Kafka in this app: the confirm says so, and nothing is marked replayed.
    real = client.post(url, data={"csrf_token": csrf, "confirm": "1"})
    assert "No Kafka is configured" in real.text
    again = client.post(url, data={"csrf_token": csrf, "confirm": "0"})
    assert 'id="replay-matched">4<' in again.text


def test_error_page_shows_payload_key_headers_and_kcat_and_is_audited(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, _ = projects
    pid = a["project_id"]
    headers = (("trace", b"t-1\x00\x1b[31m"), ("bin", b"\xff\xfe"))
    (error_id,) = reject(
        _url(console_settings), pid, [Sent(DOLLAR, key=b"user-7", headers=headers)]
    )
    signed_in_token(client, a)
    page = client.get(f"/console/projects/{pid}/errors/{error_id}").text
    # The property the worker named, marked in the pretty JSON; numbers as sent.
    assert (
        '<mark id="highlight"><span class="s">"$price"</span>: <span class="n">12.50</span></mark>'
        in page
    )
    assert 'href="#highlight"' in page
    assert '<pre class="value ltr" dir="ltr">user-7</pre>' in page
    # Control characters shown, bytes that are not UTF-8 in hex.
    assert 't-1<span class="ctl">\\u0000</span><span class="ctl">\\u001b</span>[31m' in page
    assert "00000000  ff fe" in page
    sha = hashlib.sha256(DOLLAR).hexdigest()
    assert f'{len(DOLLAR)} bytes · SHA-256 <code class="hash">{sha}</code>' in page
    offset = re.search(r"partition 0, offset (\d+)", page).group(1)
    assert (
        f"kcat -C -b 127.0.0.1:9093 -X security.protocol=SASL_SSL -X sasl.mechanisms=PLAIN "
        f"-X sasl.username={pid} -X sasl.password=$KEY -t purchases-DLQ -p 0 -o {offset} -c 1"
    ) in page
    assert "Never replayed." in page
    actor = f"key:{_master_key_id(console_settings, pid)}"
    assert _audit(console_settings) == [(actor, "error.payload.read", error_id)]


def test_error_page_truncated_and_not_utf8_payloads(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, _ = projects
    pid = a["project_id"]
    big = b'{"$x": "' + b"y" * 3000 + b'"}'
    binary = b"\x00\x01\xfe\xff" + b"A" * 20
    ids = reject(_url(console_settings), pid, [Sent(big), Sent(binary)], payload_cap=1024)
    signed_in_token(client, a)
    truncated = client.get(f"/console/projects/{pid}/errors/{ids[0]}").text
    sha = hashlib.sha256(big).hexdigest()
    assert (
        f"Truncated: the payload was 3,010 bytes, over the cap; the first 1,024 bytes are kept. "
        f'SHA-256 of the whole payload: <code class="hash">{sha}</code>'
    ) in truncated
    hexed = client.get(f"/console/projects/{pid}/errors/{ids[1]}").text
    assert "Not UTF-8: shown in hex" in hexed
    assert "00000000  00 01 fe ff 41 41 41 41 41 41 41 41 41 41 41 41  ....AAAAAAAAAAAA" in hexed


def test_staff_see_every_project_and_act_on_any(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, b = projects
    reject(_url(console_settings), a["project_id"], [Sent(DOLLAR)])
    (b_error,) = reject(_url(console_settings), b["project_id"], [Sent(b"{nope")])
    csrf = signed_in_token(client, None)
    every = client.get("/console/problems").text
    links = PROBLEM_LINK.findall(every)
    assert {p for p, _ in links} == {a["project_id"], b["project_id"]}
    picked = client.get("/console/problems", params={"project": b["project_id"], "q": "json"})
    assert picked.url.path == f"/console/projects/{b['project_id']}/problems"
    assert {p for p, _ in PROBLEM_LINK.findall(picked.text)} == {b["project_id"]}
    b_problem = PROBLEM_LINK.findall(picked.text)[0][1]
    # The URL must name the problem's own project.
    assert client.get(f"/console/projects/{a['project_id']}/errors/{b_error}").status_code == 404
    assert client.get(f"/console/projects/{b['project_id']}/errors/{b_error}").status_code == 200
    client.post(
        f"/console/projects/{b['project_id']}/problems/{b_problem}/status",
        data={"csrf_token": csrf, "status": "resolved"},
    )
    assert _audit(console_settings) == [
        ("admin", "error.payload.read", b_error),
        ("admin", "problem.resolved", b_problem),
    ]


@pytest.mark.parametrize("path", ["/console/projects/x/problems", "/console/projects/x/errors/y"])
def test_pages_need_a_session(client: TestClient, path: str) -> None:
    answer = client.get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/login?next=")
