"""The fix editor of the problem and error pages through the real app on SQLite and
PostgreSQL, with rejections stored by the worker's BatchWriter: the preview's counts and
samples (hostile text escaped), a bad operation's index and reason next to the kept text,
CSRF, another customer's problem, the rate limit, and (real broker) apply."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.api.app import create_app
from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.models import ApiKey, AuditEntry, Fix, IngestError, Problem
from app.store.projects import create_project
from tests.api.conftest import read_records
from tests.console.conftest import ADMIN_TOKEN, sign_in, signed_in_token
from tests.console.support import Sent, reject

RENAME = '[{"op": "rename", "path": "/items/0/$price", "to": "price"}]'
HOSTILE = "</pre><script>alert(1)</script>"
FIXABLE = b'{"items": [{"$price": 1}]}'
FIXABLE_HOSTILE = b'{"items": [{"$price": 1}], "note": "</pre><script>alert(1)</script>"}'
STILL_BAD = b'{"items": [{"$price": 2, "$tax": 1}]}'
NOT_THERE = b'{"items": [{"sku": "a"}, {"$price": 3}]}'


def _url(settings: Settings) -> str:
    return settings.effective_database_url


def _problem_id(url: str) -> str:
    with session_scope(engine_for(url)) as db:
        (problem_id,) = db.scalars(select(Problem.id)).all()
        return problem_id


def _fixes(url: str) -> list[Fix]:
    with session_scope(engine_for(url)) as db:
        return list(db.scalars(select(Fix)))


def _field(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', page)
    assert match, element_id
    return match.group(1)


def _textarea(page: str) -> str:
    match = re.search(r'<textarea id="fix-operations"[^>]*>(.*?)</textarea>', page, re.S)
    assert match, page
    return html.unescape(match.group(1))


def _samples(page: str) -> dict[str, tuple[str, list[str]]]:
    """Each sample's error id: (its outcome's badge, the texts of its <pre>s, unescaped)."""
    found = {}
    for item in re.findall(r'<li class="fix-sample">(.*?)</li>', page, re.S):
        error_id = re.search(r"errors/(\w+)", item).group(1)
        badge = re.search(r'class="badge badge-(\w+)"', item).group(1)
        texts = re.findall(r'<pre class="value[^>]*>(.*?)</pre>', item, re.S)
        found[error_id] = (badge, [html.unescape(t) for t in texts])
    return found


def _four_in_one_problem(url: str, project_id: str) -> tuple[str, list[str]]:
    """Two errors the rename fixes (one carrying hostile text), one still rejected after it,
    one where its path is missing; all the one problem "$price in items[]"."""
    ids = reject(
        url,
        project_id,
        [Sent(FIXABLE), Sent(FIXABLE_HOSTILE), Sent(STILL_BAD), Sent(NOT_THERE)],
    )
    return _problem_id(url), ids


def test_problem_and_error_pages_carry_the_editor(
    client: TestClient, projects, console_settings: Settings
) -> None:
    a, _ = projects
    pid = a["project_id"]
    problem_id, ids = _four_in_one_problem(_url(console_settings), pid)
    [broken] = reject(_url(console_settings), pid, [Sent(b'{"a": 1,}')])
    signed_in_token(client, a)
    page = client.get(f"/console/projects/{pid}/problems/{problem_id}").text
    assert '<label for="fix-operations">Operations (JSON)</label>' in page
    assert f'action="/console/projects/{pid}/problems/{problem_id}/fix"' in page
    buttons = re.findall(r'id="op-(\w+)"', page)
    assert buttons == ["rename", "cast", "parse_json", "set_timestamp", "drop_deeper_than"]
    assert (
        'data-fix-op="{&#34;op&#34;: &#34;rename&#34;, &#34;path&#34;: &#34;/user.name&#34;, '
        '&#34;to&#34;: &#34;user_name&#34;}"'
    ) in page
    # The error page: the same buttons and replace_payload, starting from the stored text.
    page = client.get(f"/console/projects/{pid}/errors/{broken}").text
    assert f'action="/console/projects/{pid}/errors/{broken}/fix"' in page
    assert re.findall(r'id="op-(\w+)"', page)[-1] == "replace_payload"
    assert (
        'data-fix-op="{&#34;op&#34;: &#34;replace_payload&#34;, '
        '&#34;text&#34;: &#34;{\\&#34;a\\&#34;: 1,}&#34;}"'
    ) in page
    # A direction override in the stored text reaches the template as its JSON escape only.
    [bidi] = reject(_url(console_settings), pid, [Sent('{"a": "x\u202e",}'.encode())])
    page = client.get(f"/console/projects/{pid}/errors/{bidi}").text
    assert "\u202e" not in page
    assert r"&#34;text&#34;: &#34;{\&#34;a\&#34;: \&#34;x\u202e\&#34;,}&#34;}" in page


def test_preview_counts_and_samples_with_hostile_text_escaped(
    client: TestClient, projects, console_settings: Settings
) -> None:
    a, _ = projects
    pid = a["project_id"]
    url = _url(console_settings)
    problem_id, ids = _four_in_one_problem(url, pid)
    csrf = signed_in_token(client, a)
    answer = client.post(
        f"/console/projects/{pid}/problems/{problem_id}/fix",
        data={"csrf_token": csrf, "operations": RENAME},
    )
    assert answer.status_code == 200, answer.text
    page = answer.text
    assert (_field(page, "fix-matched"), _field(page, "fix-accept")) == ("4", "2")
    assert (_field(page, "fix-reject"), _field(page, "fix-failed")) == ("1", "1")
    assert '<td data-label="Code"><code>invalid_property_name</code></td>' in page
    assert (
        '<td data-label="Operation"><span>0 <code>rename</code></span></td>'
        '<td data-label="Reason" class="msg">path /items/0/$price does not exist</td>'
    ) in page
    # Each sample: its error, outcome, before as stored and after as patched.
    assert _samples(page) == {
        ids[0]: ("accepted", [FIXABLE.decode(), '{"items":[{"price":1}]}']),
        ids[1]: (
            "accepted",
            [
                FIXABLE_HOSTILE.decode(),
                '{"items":[{"price":1}],"note":"</pre><script>alert(1)</script>"}',
            ],
        ),
        ids[2]: ("rejected", [STILL_BAD.decode(), '{"items":[{"price":2,"$tax":1}]}']),
        ids[3]: ("failed", [NOT_THERE.decode()]),
    }
    assert HOSTILE not in page and "<script>" not in page.split("</head>", 1)[1]
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count('<span class="badge badge-accepted">accepted</span>') == 2
    assert page.count('<span class="badge badge-rejected">rejected</span>') == 1
    assert "operation 0: path /items/0/$price does not exist" in page
    for error_id in ids:
        assert f'href="/console/projects/{pid}/errors/{error_id}"' in page
    # The apply button carries the same operations and this session's token.
    apply_form = re.search(
        r'<form[^>]*>\s*<input[^>]*>(<input[^>]*>)+\s*<button[^>]*id="fix-apply"', page
    )
    assert apply_form, page
    assert f'value="{csrf}"' in apply_form.group(0)
    assert 'name="action" value="apply"' in apply_form.group(0)
    assert (
        'name="operations" value="[{&#34;op&#34;: &#34;rename&#34;, '
        '&#34;path&#34;: &#34;/items/0/$price&#34;, &#34;to&#34;: &#34;price&#34;}]"'
    ) in apply_form.group(0)
    assert ">Apply: replay 2 patched events<" in page
    # The editor keeps the text for another try; nothing is recorded by a preview.
    assert _textarea(page) == RENAME
    assert _fixes(url) == []
    with session_scope(engine_for(url)) as db:
        assert {e.status for e in db.scalars(select(IngestError))} == {"open"}


@pytest.mark.parametrize(
    ("text", "index", "reason"),
    [
        (
            '[{"op": "rename", "path": "/items/0/$price", "to": "price"}, {"op": "nope"}]',
            "1",
            'each operation needs a known op, not "nope": one of add, remove, replace, move, '
            "copy, test, rename, cast, parse_json, set_timestamp, drop_deeper_than, "
            "replace_payload",
        ),
        (
            '[{"op": "rename", "path": "/a"}]',
            "0",
            "'rename' needs the member 'to': it takes op, path, to",
        ),
        ('[{"op": "replace_payload", "text": "{}"}]', "0", None),
        ("  ", None, "'operations' is empty: give at least one operation"),
        ('[{"op": <b>', None, "The operations are not JSON: Expecting value at line 1, column 9."),
    ],
)
def test_bad_operations_show_their_index_and_reason_by_the_kept_text(
    client: TestClient,
    projects,
    console_settings: Settings,
    text: str,
    index: str | None,
    reason: str | None,
) -> None:
    a, _ = projects
    pid = a["project_id"]
    problem_id, _ids = _four_in_one_problem(_url(console_settings), pid)
    csrf = signed_in_token(client, a)
    answer = client.post(
        f"/console/projects/{pid}/problems/{problem_id}/fix",
        data={"csrf_token": csrf, "operations": text},
    )
    assert answer.status_code == 400
    page = answer.text
    assert _textarea(page) == text
    assert 'aria-invalid="true"' in page
    if index is None:
        assert 'id="fix-error-index"' not in page
    else:
        assert _field(page, "fix-error-index") == index
    shown = html.unescape(_field(page, "fix-error-reason"))
    if reason is None:  # replace_payload on a problem: the service's own words
        assert shown == "replace_payload applies to one error_id only, not to a filter"
    else:
        assert shown == reason
    assert "<b>" not in page.split("</head>", 1)[1]
    assert 'id="fix-apply"' not in page and _fixes(_url(console_settings)) == []


def test_a_fix_post_without_the_csrf_token_is_refused(
    client: TestClient, projects, console_settings: Settings
) -> None:
    a, _ = projects
    pid = a["project_id"]
    problem_id, ids = _four_in_one_problem(_url(console_settings), pid)
    signed_in_token(client, a)
    for path in (f"problems/{problem_id}/fix", f"errors/{ids[0]}/fix"):
        for forged in ({}, {"csrf_token": "x" * 43}):
            refused = client.post(
                f"/console/projects/{pid}/{path}",
                data={"operations": RENAME, "action": "apply", **forged},
            )
            assert refused.status_code == 403, path
            assert "CSRF token is missing or wrong" in refused.text
    assert _fixes(_url(console_settings)) == []


def test_customer_b_cannot_preview_on_a_problem_or_error_of_a(
    client: TestClient, projects, console_settings: Settings
) -> None:
    a, b = projects
    problem_id, ids = _four_in_one_problem(_url(console_settings), a["project_id"])
    csrf = signed_in_token(client, b)
    for project in (a, b):
        for path in (f"problems/{problem_id}/fix", f"errors/{ids[0]}/fix"):
            answer = client.post(
                f"/console/projects/{project['project_id']}/{path}",
                data={"csrf_token": csrf, "operations": RENAME},
            )
            assert answer.status_code == 404, path
            assert "$price" not in answer.text and "items" not in answer.text


def test_error_page_replace_payload_previews_the_new_text(
    client: TestClient, projects, console_settings: Settings
) -> None:
    a, _ = projects
    pid = a["project_id"]
    [broken] = reject(_url(console_settings), pid, [Sent(b'{"a": 1,}')])
    csrf = signed_in_token(client, a)
    ops = '[{"op": "replace_payload", "text": "{\\"a\\": 1}"}]'
    page = client.post(
        f"/console/projects/{pid}/errors/{broken}/fix",
        data={"csrf_token": csrf, "operations": ops},
    ).text
    assert (_field(page, "fix-matched"), _field(page, "fix-accept")) == ("1", "1")
    assert _samples(page) == {broken: ("accepted", ['{"a": 1,}', '{"a": 1}'])}
    assert ">Apply: replay 1 patched event<" in page


def test_apply_over_the_rate_limit_says_when_to_retry(
    client: TestClient, projects, console_settings: Settings
) -> None:
    a, _ = projects
    pid = a["project_id"]
    problem_id, _ids = _four_in_one_problem(_url(console_settings), pid)
    csrf = signed_in_token(client, a)
    bucket = client.app.state.replay_limiter.bucket(pid)
    # The burst used up and then some, so the bucket cannot refill to one token meanwhile.
    bucket.take(bucket.available() + 1000)
    answer = client.post(
        f"/console/projects/{pid}/problems/{problem_id}/fix",
        data={"csrf_token": csrf, "operations": RENAME, "action": "apply"},
    )
    assert answer.status_code == 429
    retry = answer.headers["Retry-After"]
    assert retry.isdigit() and int(retry) >= 1
    assert (
        "The replay rate limit is reached for this project: nothing was applied. "
        f"Try again in {retry} s."
    ) in answer.text
    assert _fixes(_url(console_settings)) == []


@pytest.fixture
def kafka_console(
    db_url: str, make_settings: Callable[..., Settings], kafka_bootstrap: str
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = make_settings(db_url, kafka_bootstrap=kafka_bootstrap, admin_token=ADMIN_TOKEN)
    with session_scope(engine_for(db_url)) as db:
        project = create_project(db, "fixing")
    with TestClient(create_app(settings)) as c:
        yield c, project
    engine_for(db_url).dispose()


@pytest.mark.kafka
def test_apply_records_the_fix_and_produces_the_patched_events(
    kafka_console: tuple[TestClient, dict[str, str]], db_url: str, kafka_bootstrap: str
) -> None:
    client, project = kafka_console
    pid = project["project_id"]
    problem_id, ids = _four_in_one_problem(db_url, pid)
    csrf = signed_in_token(client, project)
    url = f"/console/projects/{pid}/problems/{problem_id}/fix"
    answer = client.post(url, data={"csrf_token": csrf, "operations": RENAME, "action": "apply"})
    assert answer.status_code == 200, answer.text
    page = answer.text
    [fix] = _fixes(db_url)
    assert _field(page, "fix-id") == fix.id
    assert (_field(page, "fix-replayed"), _field(page, "fix-refused-count")) == ("2", "0")
    assert f'href="/console/projects/{pid}/problems/{problem_id}">Back to the problem<' in page
    with session_scope(engine_for(db_url)) as db:
        key_id = db.scalar(
            select(ApiKey.id).where(ApiKey.project_id == pid, ApiKey.kind == "master")
        )
        assert (fix.actor, fix.operations) == (
            f"key:{key_id}",
            [{"op": "rename", "path": "/items/0/$price", "to": "price"}],
        )
        assert (fix.matched, fix.accepted, fix.rejected, fix.failed, fix.replayed) == (
            4,
            2,
            1,
            1,
            2,
        )
        statuses = {e.id: e.status for e in db.scalars(select(IngestError))}
        audit = db.execute(
            select(AuditEntry.actor, AuditEntry.target).where(AuditEntry.action == "fix.applied")
        ).all()
    assert statuses == {ids[0]: "replayed", ids[1]: "replayed", ids[2]: "open", ids[3]: "open"}
    assert audit == [(f"key:{key_id}", fix.id)]
    records = read_records(kafka_bootstrap, f"in.{pid}.purchases", 2)
    assert sorted(r.value for r in records) == [
        b'{"items":[{"price":1}],"note":"</pre><script>alert(1)</script>"}',
        b'{"items":[{"price":1}]}',
    ]
    assert {dict(r.headers)["inbound.fix.id"] for r in records} == {fix.id.encode()}


@pytest.mark.kafka
def test_staff_apply_on_any_project_is_recorded_with_the_staff_actor(
    kafka_console: tuple[TestClient, dict[str, str]], db_url: str, kafka_bootstrap: str
) -> None:
    client, project = kafka_console
    pid = project["project_id"]
    [broken] = reject(db_url, pid, [Sent(b'{"a": 1,}', collection="orders")])
    assert sign_in(client, None, name="Grace").status_code == 303
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/console/problems").text)
    ops = '[{"op": "replace_payload", "text": "{\\"a\\": 1}"}]'
    answer = client.post(
        f"/console/projects/{pid}/errors/{broken}/fix",
        data={"csrf_token": csrf.group(1), "operations": ops, "action": "apply"},
    )
    assert answer.status_code == 200, answer.text
    [fix] = _fixes(db_url)
    assert (fix.actor, fix.project_id, fix.target) == ("admin:Grace", pid, {"error_id": broken})
    assert _field(answer.text, "fix-replayed") == "1"
    assert f'href="/console/projects/{pid}/errors/{broken}">Back to the error<' in answer.text
    [record] = read_records(kafka_bootstrap, f"in.{pid}.orders", 1)
    assert record.value == b'{"a": 1}'


# --- saved fixes ---------------------------------------------------------------------------

HOSTILE_OPS = '[{"op": "add", "path": "/note", "value": "</pre><script>alert(1)</script>"}]'


def _saved_ids(page: str) -> list[str]:
    return re.findall(r'<li class="saved-fix" id="saved-(\w+)">', page)


def _saved_ops(page: str) -> list[str]:
    return [
        html.unescape(t)
        for t in re.findall(r'<pre class="value ltr saved-ops" dir="ltr">(.*?)</pre>', page, re.S)
    ]


def _save(client: TestClient, pid: str, problem_id: str, csrf: str, ops: str) -> str:
    """Preview ``ops`` from the problem's editor with "keep this fix" ticked: the saved id."""
    answer = client.post(
        f"/console/projects/{pid}/problems/{problem_id}/fix",
        data={"csrf_token": csrf, "operations": ops, "save": "true"},
    )
    assert answer.status_code == 200, answer.text
    return _field(answer.text, "fix-saved-id")


def _master_actor(url: str, pid: str) -> str:
    with session_scope(engine_for(url)) as db:
        key_id = db.scalar(
            select(ApiKey.id).where(ApiKey.project_id == pid, ApiKey.kind == "master")
        )
    return f"key:{key_id}"


def test_a_fix_kept_from_the_editor_is_listed_and_previews_only_errors_open_now(
    client: TestClient, projects, console_settings: Settings
) -> None:
    a, _ = projects
    pid = a["project_id"]
    url = _url(console_settings)
    problem_id, _ids = _four_in_one_problem(url, pid)
    csrf = signed_in_token(client, a)
    page_url = f"/console/projects/{pid}/problems/{problem_id}"
    page = client.get(page_url).text
    assert (
        '<input type="checkbox" id="fix-save" name="save" value="true" '
        'aria-describedby="fix-save-help">'
    ) in page
    assert '<label for="fix-save">Keep this fix on the problem (saved fix)</label>' in page
    assert _saved_ids(page) == [] and 'id="no-saved-fixes"' in page
    # The error page's editor fixes one error: nothing to keep there.
    assert 'id="fix-save"' not in client.get(f"/console/projects/{pid}/errors/{_ids[0]}").text

    answer = client.post(
        f"{page_url}/fix", data={"csrf_token": csrf, "operations": RENAME, "save": "true"}
    )
    assert answer.status_code == 200, answer.text
    page = answer.text
    [fix] = _fixes(url)
    assert (fix.saved, fix.status, fix.problem_id) == (True, "preview", problem_id)
    assert _field(page, "fix-saved-id") == fix.id
    assert (_field(page, "fix-matched"), _field(page, "fix-accept")) == ("4", "2")
    # Its Apply applies the saved fix (no second copy is saved), and the editor is unticked.
    assert re.search(
        rf'<form method="post" action="{page_url}/fixes/{fix.id}/apply" class="inline">\s*'
        rf'<input type="hidden" name="csrf_token" value="{csrf}">\s*'
        r'<button type="submit" id="fix-apply" class="danger">Apply the saved fix: '
        r"replay 2 patched events</button>",
        page,
    ), page
    assert 'name="save" value="true" aria-describedby="fix-save-help">' in page

    hostile = _save(client, pid, problem_id, csrf, HOSTILE_OPS)
    page = client.get(page_url).text
    assert _saved_ids(page) == [hostile, fix.id]  # newest first
    # Indented JSON in a <pre> (PostgreSQL's jsonb keeps its own key order).
    assert [json.loads(t) for t in _saved_ops(page)] == [
        [{"op": "add", "path": "/note", "value": HOSTILE}],
        [{"op": "rename", "path": "/items/0/$price", "to": "price"}],
    ]
    assert all(t.startswith('[\n  {\n    "') for t in _saved_ops(page))
    assert "&#34;value&#34;: &#34;&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;&#34;" in page
    assert HOSTILE not in page
    actor = _master_actor(url, pid)
    assert page.count(f'saved by <bdi dir="ltr" class="ltr">{actor}</bdi>') == 2
    assert f'action="{page_url}/fixes/{fix.id}/preview"' in page
    assert f'action="{page_url}/fixes/{fix.id}/unsave"' in page

    # The problem is resolved (its errors with it); two errors arrive later and reopen it.
    resolved = client.post(
        f"{page_url}/status",
        data={"csrf_token": csrf, "status": "resolved"},
        follow_redirects=False,
    )
    assert resolved.status_code == 303
    later = reject(url, pid, [Sent(FIXABLE), Sent(STILL_BAD)])
    answer = client.post(f"{page_url}/fixes/{fix.id}/preview", data={"csrf_token": csrf})
    assert answer.status_code == 200, answer.text
    page = answer.text
    assert (_field(page, "fix-matched"), _field(page, "fix-accept")) == ("2", "1")
    assert (_field(page, "fix-reject"), _field(page, "fix-failed")) == ("1", "0")
    assert set(_samples(page)) == set(later)
    assert "<h1>Saved fix preview</h1>" in page
    assert f'action="{page_url}/fixes/{fix.id}/apply"' in page
    assert ">Apply the saved fix: replay 1 patched event<" in page
    # A preview of a saved fix records nothing.
    assert sorted(f.id for f in _fixes(url)) == sorted([fix.id, hostile])


def test_unsave_takes_the_fix_off_the_list_and_it_is_not_applied_again(
    client: TestClient, projects, console_settings: Settings
) -> None:
    a, _ = projects
    pid = a["project_id"]
    url = _url(console_settings)
    problem_id, _ids = _four_in_one_problem(url, pid)
    csrf = signed_in_token(client, a)
    page_url = f"/console/projects/{pid}/problems/{problem_id}"
    fix_id = _save(client, pid, problem_id, csrf, RENAME)
    assert _saved_ids(client.get(page_url).text) == [fix_id]

    answer = client.post(
        f"{page_url}/fixes/{fix_id}/unsave", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{page_url}#saved-fixes"
    page = client.get(page_url).text
    assert _saved_ids(page) == [] and 'id="no-saved-fixes"' in page
    actor = _master_actor(url, pid)
    [fix] = _fixes(url)
    assert (fix.saved, fix.unsaved_by) == (False, actor)
    with session_scope(engine_for(url)) as db:
        audit = db.execute(
            select(AuditEntry.actor, AuditEntry.target).where(AuditEntry.action == "fix.unsaved")
        ).all()
    assert audit == [(actor, fix_id)]
    # A page still showing it: its preview is refused with the service's word.
    answer = client.post(f"{page_url}/fixes/{fix_id}/preview", data={"csrf_token": csrf})
    assert answer.status_code == 409
    assert (
        "This fix is not saved on its problem; save one with &#34;save&#34;: true." in answer.text
    )
    assert 'id="fix-apply"' not in answer.text


def test_saved_fix_posts_without_the_csrf_token_are_refused(
    client: TestClient, projects, console_settings: Settings
) -> None:
    a, _ = projects
    pid = a["project_id"]
    url = _url(console_settings)
    problem_id, _ids = _four_in_one_problem(url, pid)
    csrf = signed_in_token(client, a)
    fix_id = _save(client, pid, problem_id, csrf, RENAME)
    base = f"/console/projects/{pid}/problems/{problem_id}/fixes/{fix_id}"
    for action in ("preview", "apply", "unsave"):
        for forged in ({"action": "apply"}, {"csrf_token": "x" * 43}):
            refused = client.post(f"{base}/{action}", data=forged)
            assert refused.status_code == 403, action
            assert "CSRF token is missing or wrong" in refused.text
    [fix] = _fixes(url)
    assert (fix.saved, fix.status) == (True, "preview")


def test_customer_b_cannot_see_or_touch_a_saved_fix_of_a(
    client: TestClient, projects, console_settings: Settings
) -> None:
    a, b = projects
    url = _url(console_settings)
    problem_id, _ids = _four_in_one_problem(url, a["project_id"])
    csrf_a = signed_in_token(client, a)
    fix_id = _save(client, a["project_id"], problem_id, csrf_a, RENAME)
    # B's own problem: A's fix id under it is no fix of B's either.
    reject(url, b["project_id"], [Sent(b'{"a": 1,}')])
    with session_scope(engine_for(url)) as db:
        b_problem = db.scalar(select(Problem.id).where(Problem.project_id == b["project_id"]))
    csrf = signed_in_token(client, b)
    paths = [
        f"{a['project_id']}/problems/{problem_id}",
        f"{b['project_id']}/problems/{problem_id}",
        f"{b['project_id']}/problems/{b_problem}",
    ]
    for path in paths:
        for action in ("preview", "apply", "unsave"):
            answer = client.post(
                f"/console/projects/{path}/fixes/{fix_id}/{action}", data={"csrf_token": csrf}
            )
            assert answer.status_code == 404, (path, action)
            assert "$price" not in answer.text
    assert (
        fix_id not in client.get(f"/console/projects/{b['project_id']}/problems/{b_problem}").text
    )
    [fix] = _fixes(url)
    assert (fix.saved, fix.status) == (True, "preview")


@pytest.mark.kafka
def test_apply_of_a_saved_fix_replays_the_errors_that_arrived_later(
    kafka_console: tuple[TestClient, dict[str, str]], db_url: str, kafka_bootstrap: str
) -> None:
    client, project = kafka_console
    pid = project["project_id"]
    problem_id, first = _four_in_one_problem(db_url, pid)
    csrf = signed_in_token(client, project)
    page_url = f"/console/projects/{pid}/problems/{problem_id}"
    saved_id = _save(client, pid, problem_id, csrf, RENAME)
    later = reject(db_url, pid, [Sent(b'{"items": [{"$price": 7}]}')])
    answer = client.post(f"{page_url}/fixes/{saved_id}/apply", data={"csrf_token": csrf})
    assert answer.status_code == 200, answer.text
    page = answer.text
    applied = [f for f in _fixes(db_url) if f.id != saved_id]
    [fix] = applied
    assert (fix.status, fix.saved, fix.saved_fix_id, fix.matched) == (
        "applied",
        False,
        saved_id,
        5,
    )
    assert _field(page, "fix-id") == fix.id
    assert _field(page, "fix-replayed") == "3"
    assert f"The operations of the saved fix <code>{saved_id}</code>" in page
    with session_scope(engine_for(db_url)) as db:
        statuses = {e.id: e.status for e in db.scalars(select(IngestError))}
    replayed = {first[0], first[1], later[0]}
    assert {i for i, s in statuses.items() if s == "replayed"} == replayed
    records = read_records(kafka_bootstrap, f"in.{pid}.purchases", 3)
    assert sorted(r.value for r in records) == [
        b'{"items":[{"price":1}],"note":"</pre><script>alert(1)</script>"}',
        b'{"items":[{"price":1}]}',
        b'{"items":[{"price":7}]}',
    ]
    # It stays saved on the problem, for the next ones.
    assert _saved_ids(client.get(page_url).text) == [saved_id]
