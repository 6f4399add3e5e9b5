"""The problems API on SQLite and PostgreSQL: list (filters, sorts, cursor), one problem
(hourly counts, keys, samples, advice), status changes applied to errors and audited, the
ignore-by-count regression, the problems settings, the errors and replay `problem_id` filter,
the reconciliation line, and the support-staff routes across projects.

Errors are written by the worker's real BatchWriter (tests/api/problem_support.py), which
counts them into problems as a running worker does."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from app.api.app import create_app
from app.api.code_advice import ADVICE
from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.models import ApiKey, AuditEntry
from tests.api.conftest import ADMIN_TOKEN, admin, auth, insert_error, iso
from tests.api.problem_support import Rejector, bad_json, bad_timestamp, dollar_name

TITLE_PRICE = "Property name `$price` starts with `$` in items[]"


def rule(project_id: str, collection: str, code: str, location: str) -> str:
    """The documented fingerprint: sha256 of the four fields joined by U+001F, 32 hex digits."""
    joined = "\x1f".join((project_id, collection, code, location))
    return hashlib.sha256(joined.encode()).hexdigest()[:32]


@dataclass
class Side:
    pid: str
    headers: dict[str, str]
    rejector: Rejector
    master_key_id: str
    write_key_id: str
    read_key: str

    @property
    def url(self) -> str:
        return f"/3.0/projects/{self.pid}/problems"


def _side(db_url: str, project: dict[str, str], write_key_name: str) -> Side:
    with session_scope(engine_for(db_url)) as s:
        keys = {
            k.kind: k
            for k in s.scalars(select(ApiKey).where(ApiKey.project_id == project["project_id"]))
        }
        keys["write"].name = write_key_name
        master_id, write_id = keys["master"].id, keys["write"].id
    return Side(
        pid=project["project_id"],
        headers=auth(project["master_key"]),
        rejector=Rejector(db_url, project["project_id"]),
        master_key_id=master_id,
        write_key_id=write_id,
        read_key=project["read_key"],
    )


@pytest.fixture
def sides(projects: tuple, db_url: str) -> tuple[Side, Side]:
    a, b = projects
    return _side(db_url, a, "checkout-service"), _side(db_url, b, "b-private-name")


def _refused(r, *needles: str) -> str:  # noqa: ANN001 - an httpx response
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error_code"] == "InvalidParameterError"
    for needle in needles:
        assert needle in body["message"], body["message"]
    return body["message"]


def _all_pages(client: TestClient, url: str, headers: dict, **params: object) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = client.get(url, headers=headers, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append([p["problem_id"] for p in body["problems"]])
        cursor = body["next_cursor"]
        if not cursor:
            return pages


def _today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def test_list_shows_a_problem_as_documented(client: TestClient, sides: tuple[Side, Side]) -> None:
    a, _ = sides
    today = _today()
    first_at = today - timedelta(days=2) + timedelta(hours=1, minutes=5)
    second_at = today - timedelta(days=2) + timedelta(hours=1, minutes=40)
    third_at = today
    ids = a.rejector.reject(dollar_name("$price", index=3), at=first_at, key_id=a.write_key_id)
    ids += a.rejector.reject(dollar_name("$price", index=7), at=second_at)
    ids += a.rejector.reject(dollar_name("$price", index=0), at=third_at, key_id="k-other")
    r = client.get(a.url, headers=a.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["next_cursor"] is None
    [problem] = body["problems"]
    errors = client.get(f"/3.0/projects/{a.pid}/errors", headers=a.headers).json()["errors"]
    last_error = next(e for e in errors if e["error_id"] == ids[2])
    assert last_error["dlq"]["offset"] is not None
    assert problem == {
        "problem_id": rule(a.pid, "purchases", "invalid_property_name", "items[].$price"),
        "project_id": a.pid,
        "title": TITLE_PRICE,
        "code": "invalid_property_name",
        "stage": "validate",
        "collection": "purchases",
        "location": "items[].$price",
        "status": "open",
        "count": 3,
        "first_seen": iso(first_at),
        "last_seen": iso(third_at),
        "first_error_id": ids[0],
        "last_error_id": ids[2],
        "sample": {
            "error_id": ids[2],
            "dlq": {
                "topic": "purchases-DLQ",
                "backend_topic": f"dlq.{a.pid}.purchases",
                "partition": 0,
                "offset": last_error["dlq"]["offset"],
            },
        },
        "status_changed_at": None,
        "status_changed_by": None,
        "resolved_at": None,
        "regressed_at": None,
        "ignore_until": None,
        "ignore_until_count": None,
        "daily": [0] * 11 + [2, 0, 1],
    }
    # Every error names its problem.
    assert {e["problem_id"] for e in errors} == {problem["problem_id"]}


def test_one_problem_with_hourly_counts_keys_samples_and_advice(
    client: TestClient, sides: tuple[Side, Side]
) -> None:
    a, b = sides
    now = datetime.now(UTC)
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    times = [this_hour - timedelta(hours=h) for h in (0, 0, 5, 5, 5, 100, 335)]
    ids = []
    for n, at in enumerate(times):
        # The write key sends 4, an unknown key 2, B's key 1 (its name must not show in A).
        key = (a.write_key_id, a.write_key_id, "k-unknown", a.write_key_id, "k-unknown",
               a.write_key_id, b.write_key_id)[n]  # fmt: skip
        ids += a.rejector.reject(dollar_name("$price", index=n), at=at, key_id=key)
    # Older than 14 days: counted, but outside the hourly window.
    ids += a.rejector.reject(dollar_name("$price"), at=this_hour - timedelta(hours=400))
    pid = rule(a.pid, "purchases", "invalid_property_name", "items[].$price")
    r = client.get(f"{a.url}/{pid}", headers=a.headers)
    assert r.status_code == 200, r.text
    detail = r.json()
    assert detail["count"] == 8
    hourly = detail["hourly"]
    assert len(hourly) == 336
    assert hourly[0]["hour"] == iso(this_hour - timedelta(hours=335))
    assert hourly[-1]["hour"] == iso(this_hour)
    expected = Counter(iso(at) for at in times)
    assert {h["hour"]: h["count"] for h in hourly if h["count"]} == dict(expected)
    assert sum(h["count"] for h in hourly) == 7
    window = _today() - timedelta(days=13)
    assert sum(detail["daily"]) == sum(1 for at in times if at >= window)
    assert len(detail["daily"]) == 14
    assert [(k["key_id"], k["name"], k["count"]) for k in detail["keys"]] == sorted(
        [
            (a.write_key_id, "checkout-service", 4),
            ("k-unknown", None, 2),
            (b.write_key_id, None, 1),
        ],
        key=lambda k: (-k[2], k[0]),
    )
    assert detail["keys"][0]["last_seen"] == iso(this_hour)
    samples = detail["samples"]
    assert len(samples) == 5
    # Newest first: the two of this hour, then the three of 5 hours ago (same time: id desc).
    assert [s["error_id"] for s in samples[:2]] == sorted(ids[:2], reverse=True)
    assert {s["error_id"] for s in samples[2:]} == set(ids[2:5])
    assert {s["problem_id"] for s in samples} == {pid}
    assert detail["explanation"].startswith("A property name is not allowed")
    # The list object is a subset of the detail.
    listed = client.get(a.url, headers=a.headers).json()["problems"][0]
    assert {k: detail[k] for k in listed} == listed


def test_every_error_code_has_advice() -> None:
    codes = {
        "event_too_large", "empty_value", "invalid_utf8", "invalid_json", "not_an_object",
        "invalid_collection_name", "collection_name_too_long", "unknown_project",
        "key_not_permitted", "invalid_property_name", "invalid_property_value",
        "reserved_property", "invalid_timestamp",
        "too_deeply_nested", "addon_error",
    }  # fmt: skip
    from app.contract.errors import ERROR_CODES

    assert set(ERROR_CODES) == codes
    assert set(ADVICE) == codes
    for code, text in ADVICE.items():
        assert 60 <= len(text) <= 400, code
        assert text.endswith("."), code


def test_filters(client: TestClient, sides: tuple[Side, Side]) -> None:
    a, _ = sides
    r = a.rejector
    r.reject(dollar_name("$price"), key_id=a.write_key_id)
    r.reject(dollar_name("$Cost", parent="lines"), collection="orders", times=2)
    r.reject(bad_json(), collection="orders", key_id="k-2")
    r.reject(bad_timestamp(), collection="signups")
    ids = {
        "price": rule(a.pid, "purchases", "invalid_property_name", "items[].$price"),
        "cost": rule(a.pid, "orders", "invalid_property_name", "lines[].$Cost"),
        "json": rule(a.pid, "orders", "invalid_json", ""),
        "ts": rule(a.pid, "signups", "invalid_timestamp", "keen.timestamp"),
    }
    by_id = {v: k for k, v in ids.items()}

    def names(**params: str) -> set[str]:
        got = client.get(a.url, headers=a.headers, params=params)
        assert got.status_code == 200, got.text
        return {by_id[p["problem_id"]] for p in got.json()["problems"]}

    assert names() == {"price", "cost", "json", "ts"}
    assert names(code="invalid_json") == {"json"}
    assert names(code="invalid_json,invalid_timestamp") == {"json", "ts"}
    assert names(collection="orders") == {"cost", "json"}
    assert names(collection="orders,signups", code="invalid_property_name") == {"cost"}
    assert names(key_id=a.write_key_id) == {"price"}
    assert names(key_id="k-2") == {"json"}
    assert names(key_id="nobody") == set()
    assert names(q="PRICE") == {"price"}  # title, case-insensitive
    assert names(q="lines[]") == {"cost"}  # location
    assert names(q="signups") == {"ts"}  # collection
    assert names(q="invalid_json") == {"json"}  # code
    assert names(q="not valid json") == {"json"}
    # Status: resolve one, then filter.
    patched = client.patch(f"{a.url}/{ids['ts']}", headers=a.headers, json={"status": "resolved"})
    assert patched.status_code == 200, patched.text
    assert names(status="resolved") == {"ts"}
    assert names(status="open") == {"price", "cost", "json"}
    assert names(status="open,resolved", collection="signups") == {"ts"}
    assert names(status="regressed,ignored") == set()


def test_q_matches_wildcards_literally(client: TestClient, sides: tuple[Side, Side]) -> None:
    a, _ = sides
    for name in ("$a_b", "$axb", "$50%off", "$50xoff", "$c\\d", "$cd"):
        a.rejector.reject(dollar_name(name))

    def titles(q: str) -> list[str]:
        got = client.get(a.url, headers=a.headers, params={"q": q}).json()["problems"]
        return sorted(p["title"] for p in got)

    assert titles("a_b") == ["Property name `$a_b` starts with `$` in items[]"]
    assert titles("50%o") == ["Property name `$50%off` starts with `$` in items[]"]
    assert titles("c\\d") == ["Property name `$c\\d` starts with `$` in items[]"]
    assert len(titles("$")) == 6
    assert client.get(a.url, headers=a.headers, params={"q": "x" * 200}).status_code == 200
    _refused(client.get(a.url, headers=a.headers, params={"q": "x" * 201}), "200")


def _sort_fixture(a: Side) -> dict[str, dict]:
    """Six problems with known counts and times; two share a count (the id breaks the tie)."""
    base = datetime.now(UTC) - timedelta(days=3)
    plan = {  # name: (count, first seen (hours after base), last seen)
        "$p1": (5, 0, 10),
        "$p2": (1, 1, 60),
        "$p3": (3, 2, 20),
        "$p4": (3, 3, 30),
        "$p5": (8, 4, 5),
        "$p6": (2, 5, 40),
    }
    out = {}
    for name, (count, first, last) in plan.items():
        a.rejector.reject(dollar_name(name), at=base + timedelta(hours=first))
        if count > 2:
            a.rejector.reject(dollar_name(name), times=count - 2, at=base + timedelta(hours=first))
        if count > 1:
            a.rejector.reject(dollar_name(name), at=base + timedelta(hours=last))
        pid = rule(a.pid, "purchases", "invalid_property_name", f"items[].{name}")
        out[pid] = {"count": count, "first_seen": first, "last_seen": last if count > 1 else first}
    return out


@pytest.mark.parametrize("sort", ["last_seen", "count", "first_seen"])
def test_each_sort_pages_without_overlap(
    client: TestClient, sides: tuple[Side, Side], sort: str
) -> None:
    a, _ = sides
    known = _sort_fixture(a)
    expected = sorted(known, key=lambda pid: (known[pid][sort], pid), reverse=True)
    pages = _all_pages(client, a.url, a.headers, sort=sort, limit=4)
    assert [len(p) for p in pages] == [4, 2]
    assert [pid for page in pages for pid in page] == expected
    pages = _all_pages(client, a.url, a.headers, sort=sort, limit=1)
    assert [pid for page in pages for pid in page] == expected
    if sort == "last_seen":
        assert pages == _all_pages(client, a.url, a.headers, limit=1)  # the default sort
    # A page does not shift when a problem on an earlier page is counted again.
    r = client.get(a.url, headers=a.headers, params={"sort": sort, "limit": 2}).json()
    first_page = [p["problem_id"] for p in r["problems"]]
    a.rejector.reject(dollar_name("$p2"))  # now the newest, and one more count
    rest = client.get(
        a.url, headers=a.headers, params={"sort": sort, "limit": 10, "cursor": r["next_cursor"]}
    ).json()["problems"]
    assert not set(first_page) & {p["problem_id"] for p in rest}


def test_bad_parameters_are_400(client: TestClient, sides: tuple[Side, Side]) -> None:
    a, _ = sides
    a.rejector.reject(dollar_name("$p1"))
    a.rejector.reject(dollar_name("$p2"))

    def get(**params: object):  # noqa: ANN202 - an httpx response
        return client.get(a.url, headers=a.headers, params=params)

    _refused(get(status="weird"), "open", "resolved", "regressed", "ignored")
    _refused(get(status="open,nope"), "regressed")
    _refused(get(code="no_such_code"), "no_such_code", "invalid_json")
    _refused(get(sort="newest"), "last_seen", "count", "first_seen")
    _refused(get(limit=0), "limit")
    _refused(get(limit=501), "limit")
    _refused(get(limit="x"), "limit")
    _refused(get(cursor="!!"), "cursor")
    count_cursor = get(sort="count", limit=1).json()["next_cursor"]
    assert count_cursor
    _refused(get(sort="last_seen", cursor=count_cursor), "cursor")


def test_another_projects_problem_is_not_found(
    client: TestClient, sides: tuple[Side, Side]
) -> None:
    a, b = sides
    b.rejector.reject(bad_json())
    b_problem = rule(b.pid, "purchases", "invalid_json", "")
    assert client.get(f"{b.url}/{b_problem}", headers=b.headers).status_code == 200
    assert client.get(a.url, headers=a.headers).json()["problems"] == []
    r = client.get(f"{a.url}/{b_problem}", headers=a.headers)
    assert r.status_code == 404 and r.json()["error_code"] == "ResourceNotFoundError"
    r = client.patch(f"{a.url}/{b_problem}", headers=a.headers, json={"status": "resolved"})
    assert r.status_code == 404
    assert client.get(f"{b.url}/{b_problem}", headers=b.headers).json()["status"] == "open"
    # B's problem through B's path with A's key, and A's read key: refused.
    assert client.get(f"{b.url}/{b_problem}", headers=a.headers).status_code == 403
    assert client.get(a.url, headers=auth(a.read_key)).status_code == 403


def _error_statuses(client: TestClient, side: Side, problem_id: str) -> list[str]:
    r = client.get(
        f"/3.0/projects/{side.pid}/errors", headers=side.headers, params={"problem_id": problem_id}
    )
    assert r.status_code == 200, r.text
    return sorted(e["status"] for e in r.json()["errors"])


def test_resolve_applies_to_errors_is_audited_and_regresses(
    client: TestClient, sides: tuple[Side, Side], db_url: str
) -> None:
    a, _ = sides
    a.rejector.reject(dollar_name("$price"), times=3)
    a.rejector.reject(bad_json(), times=2)
    price = rule(a.pid, "purchases", "invalid_property_name", "items[].$price")
    other = rule(a.pid, "purchases", "invalid_json", "")
    r = client.patch(f"{a.url}/{price}", headers=a.headers, json={"status": "resolved"})
    assert r.status_code == 200, r.text
    body = r.json()
    actor = f"key:{a.master_key_id}"
    assert (body["status"], body["status_changed_by"], body["count"]) == ("resolved", actor, 3)
    assert body["resolved_at"] == body["status_changed_at"] is not None
    assert "hourly" not in body and len(body["daily"]) == 14
    assert _error_statuses(client, a, price) == ["resolved"] * 3
    assert _error_statuses(client, a, other) == ["open"] * 2
    with session_scope(engine_for(db_url)) as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action.like("problem.%"))).all()
        assert [(e.actor, e.action, e.project_id, e.target) for e in entries] == [
            (actor, "problem.resolved", a.pid, price)
        ]
    # A new error of the resolved problem regresses it.
    a.rejector.reject(dollar_name("$price", index=9))
    again = client.get(f"{a.url}/{price}", headers=a.headers).json()
    assert (again["status"], again["count"]) == ("regressed", 4)
    assert again["regressed_at"] is not None
    assert _error_statuses(client, a, price) == ["open", "resolved", "resolved", "resolved"]
    # Reopen: the resolved errors open again.
    r = client.patch(f"{a.url}/{price}", headers=a.headers, json={"status": "open"})
    assert r.json()["status"] == "open"
    assert _error_statuses(client, a, price) == ["open"] * 4


def test_status_change_validation(client: TestClient, sides: tuple[Side, Side]) -> None:
    a, _ = sides
    a.rejector.reject(bad_json())
    url = f"{a.url}/{rule(a.pid, 'purchases', 'invalid_json', '')}"
    past = iso(datetime.now(UTC) - timedelta(minutes=1))
    _refused(client.patch(url, headers=a.headers, json={"status": "regressed"}), "status")
    _refused(client.patch(url, headers=a.headers, json={"status": "resolved", "x": 1}), "x")
    _refused(client.patch(url, headers=a.headers, json={}), "status")
    _refused(
        client.patch(url, headers=a.headers, json={"status": "resolved", "ignore_count": 2}),
        "ignored",
    )
    _refused(
        client.patch(url, headers=a.headers, json={"status": "open", "ignore_until": past}),
        "ignored",
    )
    _refused(
        client.patch(url, headers=a.headers, json={"status": "ignored", "ignore_until": past}),
        "future",
    )
    _refused(
        client.patch(url, headers=a.headers, json={"status": "ignored", "ignore_until": "soon"}),
        "ignore_until",
    )
    _refused(
        client.patch(url, headers=a.headers, json={"status": "ignored", "ignore_count": 0}),
        "ignore_count",
    )
    assert client.get(url, headers=a.headers).json()["status"] == "open"
    later = datetime.now(UTC) + timedelta(days=2)
    r = client.patch(url, headers=a.headers, json={"status": "ignored", "ignore_until": iso(later)})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["ignore_until"]) == ("ignored", iso(later))


def test_ignore_for_a_count_then_regress(client: TestClient, sides: tuple[Side, Side]) -> None:
    a, _ = sides
    a.rejector.reject(bad_json(), times=2)
    pid = rule(a.pid, "purchases", "invalid_json", "")
    url = f"{a.url}/{pid}"
    r = client.patch(url, headers=a.headers, json={"status": "ignored", "ignore_count": 3})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["ignore_until_count"]) == ("ignored", 5)
    assert _error_statuses(client, a, pid) == ["ignored"] * 2
    a.rejector.reject(bad_json(), times=2)
    a.rejector.reject(bad_json())
    muted = client.get(url, headers=a.headers).json()
    assert (muted["status"], muted["count"]) == ("ignored", 5)  # the 3 more are still muted
    assert _error_statuses(client, a, pid) == ["ignored"] * 5
    a.rejector.reject(bad_json())
    back = client.get(url, headers=a.headers).json()
    assert (back["status"], back["count"], back["ignore_until_count"]) == ("regressed", 6, None)
    assert _error_statuses(client, a, pid) == ["ignored"] * 5 + ["open"]


def test_errors_and_replay_filter_by_problem(client: TestClient, sides: tuple[Side, Side]) -> None:
    a, _ = sides
    price_ids = a.rejector.reject(dollar_name("$price"), times=3)
    a.rejector.reject(dollar_name("$cost"), times=2)  # same collection and code, another problem
    price = rule(a.pid, "purchases", "invalid_property_name", "items[].$price")
    errors_url = f"/3.0/projects/{a.pid}/errors"
    listed = client.get(errors_url, headers=a.headers, params={"problem_id": price}).json()
    assert sorted(e["error_id"] for e in listed["errors"]) == sorted(price_ids)
    nothing = client.get(errors_url, headers=a.headers, params={"problem_id": "0" * 32}).json()
    assert nothing["errors"] == []
    replay = f"{errors_url}/replay"
    body = {"filter": {"problem_id": price}, "dry_run": True}
    r = client.post(replay, headers=a.headers, json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "dry_run": True,
        "matched": 3,
        "replayed": [],
        "refused": [],
        "remaining": 3,
    }
    body = {"filter": {"code": "invalid_property_name"}, "dry_run": True}
    assert client.post(replay, headers=a.headers, json=body).json()["matched"] == 5


def test_reconciliation_counts_every_error_in_a_problem(
    client: TestClient, sides: tuple[Side, Side], db_url: str
) -> None:
    a, b = sides
    a.rejector.reject(dollar_name("$price"), times=4)
    a.rejector.reject(bad_json(), times=3, collection="orders")
    b.rejector.reject(bad_json(), times=2)
    rec_url = f"/3.0/projects/{a.pid}/reconciliation"
    rec = client.get(rec_url, headers=a.headers).json()
    assert rec["problems"] == {"error_rows": 7, "counted_in_problems": 7, "unaccounted": 0}
    assert {"start", "end", "balanced", "totals", "rows"} <= set(rec)
    # A row written around the worker (no problem) shows up as unaccounted.
    insert_error(db_url, a.pid)
    rec = client.get(rec_url, headers=a.headers).json()
    assert rec["problems"] == {"error_rows": 8, "counted_in_problems": 7, "unaccounted": 1}
    admin_rec = client.get(f"/admin/projects/{b.pid}/reconciliation", headers=admin()).json()
    assert admin_rec["problems"] == {"error_rows": 2, "counted_in_problems": 2, "unaccounted": 0}


@pytest.fixture
def six_hour_client(db_url: str, make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    settings = make_settings(db_url, admin_token=ADMIN_TOKEN, problem_resolve_after_quiet_hours=6)
    with TestClient(create_app(settings)) as c:
        yield c


def test_problems_settings_round_trip(
    six_hour_client: TestClient, sides: tuple[Side, Side], db_url: str
) -> None:
    client = six_hour_client
    a, b = sides
    url = f"/3.0/projects/{a.pid}/settings/problems"
    assert client.get(url, headers=a.headers).json() == {
        "resolve_after_quiet_hours": None,
        "effective_resolve_after_quiet_hours": 6,
    }
    r = client.patch(url, headers=a.headers, json={"resolve_after_quiet_hours": 24})
    assert r.status_code == 200, r.text
    assert r.json() == {"resolve_after_quiet_hours": 24, "effective_resolve_after_quiet_hours": 24}
    assert client.get(url, headers=a.headers).json()["resolve_after_quiet_hours"] == 24
    # B keeps the default.
    b_url = f"/3.0/projects/{b.pid}/settings/problems"
    assert client.get(b_url, headers=b.headers).json()["effective_resolve_after_quiet_hours"] == 6
    for bad in ({"resolve_after_quiet_hours": 0}, {"resolve_after_quiet_hours": -1},
                {"resolve_after_quiet_hours": 10**9}, {"resolve_after_quiet_hours": "x"},
                {}, {"resolve_after_quiet_hours": 1, "other": 2}):  # fmt: skip
        _refused(client.patch(url, headers=a.headers, json=bad))
    r = client.patch(url, headers=a.headers, json={"resolve_after_quiet_hours": None})
    assert r.json() == {"resolve_after_quiet_hours": None, "effective_resolve_after_quiet_hours": 6}
    with session_scope(engine_for(db_url)) as s:
        entries = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "project.settings.problems")
        ).all()
        assert [(e.actor, e.project_id, e.target) for e in entries] == [
            (f"key:{a.master_key_id}", a.pid, a.pid)
        ] * 2
    assert client.get(url, headers=auth(a.read_key)).status_code == 403


def test_admin_routes_across_projects(
    client: TestClient, sides: tuple[Side, Side], db_url: str
) -> None:
    a, b = sides
    a.rejector.reject(dollar_name("$price"), times=2)
    b.rejector.reject(bad_json(), times=3)
    b.rejector.reject(bad_timestamp())
    a_price = rule(a.pid, "purchases", "invalid_property_name", "items[].$price")
    b_json = rule(b.pid, "purchases", "invalid_json", "")
    b_ts = rule(b.pid, "purchases", "invalid_timestamp", "keen.timestamp")
    assert client.get("/admin/problems").status_code == 401
    every = client.get("/admin/problems", headers=admin(), params={"sort": "count"}).json()
    assert [p["problem_id"] for p in every["problems"]] == [b_json, a_price, b_ts]
    only_b = client.get("/admin/problems", headers=admin(), params={"project_id": b.pid}).json()
    assert {p["problem_id"] for p in only_b["problems"]} == {b_json, b_ts}
    coded = client.get(
        "/admin/problems", headers=admin(), params={"code": "invalid_json,invalid_property_name"}
    ).json()
    assert {p["problem_id"] for p in coded["problems"]} == {b_json, a_price}
    _refused(client.get("/admin/problems", headers=admin(), params={"status": "x"}), "open")
    detail = client.get(f"/admin/problems/{b_json}", headers=admin()).json()
    assert (detail["project_id"], detail["count"], len(detail["hourly"])) == (b.pid, 3, 336)
    assert client.get(f"/admin/problems/{'0' * 32}", headers=admin()).status_code == 404
    who = {**admin(), "X-Inbound-Actor": "alice"}
    r = client.patch(f"/admin/problems/{b_json}", headers=who, json={"status": "resolved"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["status_changed_by"]) == ("resolved", "admin:alice")
    errors = client.get("/admin/errors", headers=admin(), params={"problem_id": b_json}).json()
    assert [e["status"] for e in errors["errors"]] == ["resolved"] * 3
    with session_scope(engine_for(db_url)) as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "problem.resolved")).one()
        assert (entry.actor, entry.project_id, entry.target) == ("admin:alice", b.pid, b_json)


def test_a_page_costs_two_queries_whatever_its_size(
    client: TestClient, sides: tuple[Side, Side], db_url: str
) -> None:
    a, _ = sides
    for n in range(6):
        a.rejector.reject(dollar_name(f"$p{n}"))
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001 - SQLAlchemy hook
        statements.append(statement)

    engine = engine_for(db_url)
    event.listen(engine, "before_cursor_execute", count)
    try:
        sizes = {}
        for limit in (1, 6):
            statements.clear()
            r = client.get(a.url, headers=a.headers, params={"limit": limit})
            assert len(r.json()["problems"]) == limit
            sizes[limit] = [s for s in statements if "problem" in s.lower()]
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(sizes[1]) == len(sizes[6]) == 2


def test_nul_in_a_parameter_is_400_not_a_database_error(
    client: TestClient, sides: tuple[Side, Side]
) -> None:
    a, _ = sides
    a.rejector.reject(bad_json())
    errors_url = f"/3.0/projects/{a.pid}/errors"
    for name in ("q", "collection", "key_id"):
        _refused(client.get(a.url, headers=a.headers, params={name: "a\x00b"}), name, "NUL")
    for name in ("problem_id", "collection", "code"):
        _refused(client.get(errors_url, headers=a.headers, params={name: "a\x00b"}), name)
    body = {"filter": {"problem_id": "a\x00b"}, "dry_run": True}
    _refused(client.post(f"{errors_url}/replay", headers=a.headers, json=body), "problem_id")
    assert client.get(f"{a.url}/a%00b", headers=a.headers).status_code == 404
    assert client.get(f"{errors_url}/a%00b", headers=a.headers).status_code == 404
    assert client.get("/admin/problems/a%00b", headers=admin()).status_code == 404
