"""The console's streams, webhooks and audit pages through the real app on SQLite and
PostgreSQL: the reconciliation of events stored by the worker's BatchWriter, resuming a paused
stream (audit entry and dlq.resumed notification), the webhook list and delivery log with
attempts from a real loopback receiver (its hostile answer shown as text), redeliver, test and
rotate (the new secret shown once), the staff-only audit log and its filters, CSRF on every
POST, and that customer B sees nothing of A."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.api.audit import record_audit
from app.ingest.persist import BatchOutcome, BatchWriter
from app.ingest.records import Accepted
from app.settings import Settings
from app.store.db import engine_for, session_scope
from app.store.models import (
    AuditEntry,
    IngestCounter,
    Notification,
    StreamPause,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)
from app.store.secret_box import box_for
from app.webhooks.registry import create_webhook
from tests.console.conftest import ADMIN_TOKEN, signed_in_token
from tests.console.support import Sent, reject
from tests.webhooks.receiver import Receiver, Reply

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>\u202egnp.exe'
HOSTILE_SHOWN = (
    "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;"
    '<span class="ctl">\\u202e</span>gnp.exe'
)
SECRET = re.compile(r'id="new-secret">(whsec_[A-Za-z0-9+/=]+)<')


@pytest.fixture
def console_settings(db_url: str, make_settings) -> Settings:  # noqa: ANN001
    # Loopback receivers allowed: the test ping goes to a real server on 127.0.0.1.
    return make_settings(
        db_url,
        admin_token=ADMIN_TOKEN,
        console_login_failures_per_minute=3,
        webhook_allow_private=True,
        webhook_connect_timeout=2.0,
        webhook_read_timeout=2.0,
    )


@pytest.fixture
def receiver():  # noqa: ANN201
    server = Receiver().start()
    yield server
    server.stop()


def _url(settings: Settings) -> str:
    return settings.effective_database_url


def _accept(url: str, project_id: str, collection: str, count: int, at: datetime) -> None:
    """``count`` events accepted into ``collection`` at ``at``, stored by the BatchWriter."""
    events = []
    for _ in range(count):
        keen_id = uuid.uuid4().hex
        events.append(
            Accepted(
                project_id=project_id,
                collection=collection,
                keen_id=keen_id,
                keen_timestamp=at,
                created_at=at,
                body={"keen": {"id": keen_id, "timestamp": at.isoformat()}, "n": 1},
            )
        )
    BatchWriter(engine_for(url), payload_cap=65536).write(BatchOutcome(accepted=events))


def _audit(settings: Settings) -> list[tuple[str, str, str | None]]:
    with session_scope(engine_for(_url(settings))) as db:
        rows = db.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.target).order_by(AuditEntry.id)
        )
        return [tuple(r) for r in rows if r[1] != "console.sign_in"]


def _pause(settings: Settings, project_id: str, collection: str = "orders") -> int:
    with session_scope(engine_for(_url(settings))) as db:
        pause = StreamPause(
            project_id=project_id,
            collection=collection,
            topic=f"in.{project_id}.{collection}",
            partition=2,
            reason="95% of 1000 events rejected",
            paused_at=datetime.now(UTC),
        )
        db.add(pause)
        db.flush()
        return pause.id


def _webhook(settings: Settings, project_id: str, url: str) -> str:
    with session_scope(engine_for(_url(settings))) as db:
        hook, _secret = create_webhook(
            db,
            project_id,
            url,
            ["ingest.failed", "dlq.resumed"],
            ["purchases"],
            datetime.now(UTC),
            box_for(settings),
        )
        return hook.id


def _delivery(
    settings: Settings,
    webhook_id: str,
    *,
    status: str,
    at: datetime,
    attempts: list[tuple[int | None, int | None, str | None, str | None]] = (),
) -> str:
    """A delivery row with its attempts (status code, latency, excerpt, error), as the
    dispatcher records them."""
    delivery_id = "msg_" + uuid.uuid4().hex
    with session_scope(engine_for(_url(settings))) as db:
        db.add(
            WebhookDelivery(
                id=delivery_id,
                webhook_id=webhook_id,
                event_type="ingest.failed",
                payload={"type": "ingest.failed", "data": {"collection": HOSTILE}},
                status=status,
                attempts=len(attempts),
                next_attempt_at=None if status != "pending" else at,
                created_at=at,
                updated_at=at,
            )
        )
        db.flush()
        for i, (code, latency, excerpt, error) in enumerate(attempts):
            db.add(
                WebhookAttempt(
                    delivery_id=delivery_id,
                    attempted_at=at + timedelta(seconds=i),
                    status_code=code,
                    latency_ms=latency,
                    response_excerpt=excerpt,
                    error=error,
                )
            )
    return delivery_id


def _csrf_of(page: str) -> set[str]:
    return set(re.findall(r'name="csrf_token" value="([^"]*)"', page))


# --- streams ----------------------------------------------------------------------------


def test_streams_page_shows_the_reconciliation_per_collection(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, _ = projects
    pid = a["project_id"]
    url = _url(console_settings)
    now = datetime.now(UTC)
    _accept(url, pid, "purchases", 3, now)
    _accept(url, pid, "signups", 4, now)
    reject(url, pid, [Sent(b'{"$price": 1}'), Sent(b"{nope")])  # both into purchases
    # Three days ago: outside the 24 hours, inside the 7 days.
    _accept(url, pid, "purchases", 5, now - timedelta(days=3))
    signed_in_token(client, a)
    page = client.get(f"/console/projects/{pid}/streams")
    assert page.status_code == 200
    text = page.text
    assert 'id="total-received">9<' in text
    assert 'id="total-accepted">7<' in text
    assert 'id="total-rejected">2<' in text
    assert 'id="total-dropped">0<' in text
    assert "Unaccounted" not in text and 'id="unaccounted"' not in text
    # One row and one chart per collection; the current hour's bar of purchases is
    # 3 accepted under 2 rejected, of signups 4 accepted.
    assert '<td data-label="Received" class="num received">5</td>' in text
    assert '<td data-label="Received" class="num received">4</td>' in text
    assert text.count('<svg class="stacked"') == 2
    assert text.count('<rect class="accepted"') == 2 and text.count('<rect class="rejected"') == 1
    assert ": 3 accepted of 5</title>" in text and ": 2 rejected of 5</title>" in text
    assert 'aria-label="purchases: 3 accepted, 2 rejected, 0 dropped, at most 5 in one hour"' in (
        text
    )
    assert "No partition is paused." in text
    week = client.get(f"/console/projects/{pid}/streams", params={"window": "7d"}).text
    assert 'id="total-received">14<' in week and 'id="total-accepted">12<' in week
    assert "per day (UTC)" in week
    assert 'aria-label="purchases: 8 accepted, 2 rejected, 0 dropped, at most 5 in one day"' in (
        week
    )


def test_streams_page_shows_unaccounted_events(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, _ = projects
    pid = a["project_id"]
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    # Counters out of balance, as a bug or events in flight would leave them.
    with session_scope(engine_for(_url(console_settings))) as db:
        db.add(
            IngestCounter(
                project_id=pid,
                collection="clicks",
                bucket=hour,
                received=10,
                accepted=6,
                rejected=1,
                dropped=0,
                dropped_reasons={},
            )
        )
    signed_in_token(client, a)
    text = client.get(f"/console/projects/{pid}/streams").text
    assert 'id="total-unaccounted">3<' in text
    assert "3 received events are not (yet) counted as accepted, rejected or dropped" in text


def test_resume_button_resumes_through_the_admin_service(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, _ = projects
    pid = a["project_id"]
    pause_id = _pause(console_settings, pid)
    resume_url = f"/console/projects/{pid}/streams/pauses/{pause_id}/resume"
    # A customer sees the pause, without a button (the JSON resume is support staff's).
    csrf = signed_in_token(client, a)
    mine = client.get(f"/console/projects/{pid}/streams").text
    assert "95% of 1000 events rejected" in mine and "Resume</button>" not in mine
    assert client.post(resume_url, data={"csrf_token": csrf}).status_code == 403
    client.cookies.clear()
    staff_csrf = signed_in_token(client, None)
    page = client.get(f"/console/projects/{pid}/streams").text
    assert f'action="{resume_url}"' in page and _csrf_of(page) == {staff_csrf}
    for forged in ({"no": "token"}, {"csrf_token": "x" * 43}):
        assert client.post(resume_url, data=forged).status_code == 403
    with session_scope(engine_for(_url(console_settings))) as db:
        assert db.get(StreamPause, pause_id).resumed_at is None
    done = client.post(resume_url, data={"csrf_token": staff_csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == f"/console/projects/{pid}/streams?done=resumed"
    after = client.get(done.headers["location"]).text
    assert "The stream is resumed" in after and "No partition is paused." in after
    with session_scope(engine_for(_url(console_settings))) as db:
        pause = db.get(StreamPause, pause_id)
        assert pause.resumed_at is not None and pause.resumed_by == "admin"
        notes = db.execute(select(Notification.type, Notification.payload)).all()
    assert [tuple(n) for n in notes] == [
        (
            "dlq.resumed",
            {
                "collection": "orders",
                "topic": "orders",
                "partitions": [2],
                "resumed_by": "admin",
            },
        )
    ]
    assert _audit(console_settings) == [("admin", "stream.resume", f"in.{pid}.orders/2")]
    again = client.post(resume_url, data={"csrf_token": staff_csrf})
    assert again.status_code == 409 and "This stream was already resumed." in again.text


# --- webhooks ---------------------------------------------------------------------------


def test_webhooks_list_and_delivery_log_with_attempts(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, _ = projects
    pid = a["project_id"]
    hook_id = _webhook(console_settings, pid, "https://hooks.example.com/inbound")
    now = datetime.now(UTC).replace(microsecond=0)
    failed = _delivery(
        console_settings,
        hook_id,
        status="failed",
        at=now - timedelta(minutes=5),
        attempts=[(None, None, None, "connect timeout"), (502, 1234, HOSTILE, None)],
    )
    delivered = _delivery(
        console_settings, hook_id, status="delivered", at=now, attempts=[(200, 87, "ok", None)]
    )
    with session_scope(engine_for(_url(console_settings))) as db:
        hook = db.get(Webhook, hook_id)
        hook.consecutive_failures = 7
        hook.is_active = False
        hook.disabled_reason = "disabled after 7 failed attempts over 2 days"
    signed_in_token(client, a)
    listing = client.get(f"/console/projects/{pid}/webhooks").text
    assert f'href="/console/projects/{pid}/webhooks/{hook_id}"' in listing
    assert "https://hooks.example.com/inbound" in listing
    assert '<span class="badge badge-disabled">disabled</span>' in listing
    assert "disabled after 7 failed attempts over 2 days" in listing
    assert '<td data-label="Failures in a row" class="num">7' in listing
    assert "<code>dlq.resumed</code> <code>ingest.failed</code>" in listing
    page = client.get(f"/console/projects/{pid}/webhooks/{hook_id}").text
    # Newest first; every attempt with its time, status code, latency and response.
    assert page.index(f'id="d-{delivered}"') < page.index(f'id="d-{failed}"')
    assert '<span class="http bad">502</span>' in page and "1234 ms" in page
    assert '<span class="http ok">200</span>' in page and "87 ms" in page
    assert "connect timeout" in page
    # The remote server's text and the payload's sender-chosen names, shown literally.
    assert HOSTILE_SHOWN in page
    assert "<script>alert" not in page and "<img src=x" not in page
    # A redeliver button for each delivery that is not pending.
    assert page.count('class="redeliver"') == 2
    only_failed = client.get(
        f"/console/projects/{pid}/webhooks/{hook_id}", params={"status": "failed"}
    ).text
    assert f'id="d-{failed}"' in only_failed and f'id="d-{delivered}"' not in only_failed


def test_delivery_log_pages_with_the_api_before_cursor(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, _ = projects
    pid = a["project_id"]
    hook_id = _webhook(console_settings, pid, "https://hooks.example.com/x")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    ids = [
        _delivery(console_settings, hook_id, status="delivered", at=start + timedelta(seconds=i))
        for i in range(27)
    ]
    signed_in_token(client, a)
    first = client.get(f"/console/projects/{pid}/webhooks/{hook_id}").text
    shown = re.findall(r'id="d-(msg_[0-9a-f]+)"', first)
    assert shown == ids[::-1][:25]
    older = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = client.get(older).text
    assert re.findall(r'id="d-(msg_[0-9a-f]+)"', second) == [ids[1], ids[0]]
    assert 'rel="next"' not in second and ">Newest</a>" in second


def test_send_a_test_to_a_real_receiver_shows_its_attempt(
    client: TestClient,
    projects,
    console_settings: Settings,
    receiver: Receiver,  # noqa: ANN001
) -> None:
    a, _ = projects
    pid = a["project_id"]
    receiver.plan = lambda _r: Reply(status=500, body=HOSTILE.encode())
    hook_id = _webhook(console_settings, pid, receiver.url())
    csrf = signed_in_token(client, a)
    test_url = f"/console/projects/{pid}/webhooks/{hook_id}/test"
    assert client.post(test_url, data={"no": "token"}).status_code == 403
    assert receiver.requests == []
    done = client.post(test_url, data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    (got,) = receiver.wait_for(1)
    assert got.json["type"] == "webhook.test" and got.headers["webhook-signature"]
    page = client.get(done.headers["location"]).text
    assert "A webhook.test was sent" in page
    assert "<code>webhook.test</code>" in page
    assert '<span class="http bad">500</span>' in page
    assert HOSTILE_SHOWN in page and "<script>alert" not in page
    with session_scope(engine_for(_url(console_settings))) as db:
        (delivery,) = db.scalars(select(WebhookDelivery)).all()
    assert _audit(console_settings) == [
        (f"key:{_key_id(console_settings, pid)}", "webhook.test", delivery.id)
    ]


def _key_id(settings: Settings, project_id: str) -> str:
    from app.store.models import ApiKey

    with session_scope(engine_for(_url(settings))) as db:
        return db.scalar(
            select(ApiKey.id).where(ApiKey.project_id == project_id, ApiKey.kind == "master")
        )


def test_redeliver_queues_again_and_needs_csrf(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, _ = projects
    pid = a["project_id"]
    hook_id = _webhook(console_settings, pid, "https://hooks.example.com/x")
    at = datetime.now(UTC) - timedelta(minutes=1)
    failed = _delivery(
        console_settings, hook_id, status="failed", at=at, attempts=[(500, 3, "", None)]
    )
    csrf = signed_in_token(client, a)
    url = f"/console/projects/{pid}/webhooks/{hook_id}/deliveries/{failed}/redeliver"
    assert client.post(url, data={"csrf_token": "nope"}).status_code == 403
    with session_scope(engine_for(_url(console_settings))) as db:
        assert db.get(WebhookDelivery, failed).status == "failed"
    done = client.post(url, data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"].endswith("?done=redelivered")
    with session_scope(engine_for(_url(console_settings))) as db:
        row = db.get(WebhookDelivery, failed)
        assert (row.status, row.attempts) == ("pending", 0)
    page = client.get(done.headers["location"]).text
    assert "The delivery is queued again under the same webhook-id." in page
    assert 'class="redeliver"' not in page  # pending now
    again = client.post(url, data={"csrf_token": csrf})
    assert again.status_code == 409
    assert "This delivery is already queued for its next attempt." in again.text
    actor = f"key:{_key_id(console_settings, pid)}"
    assert _audit(console_settings) == [(actor, "webhook.redeliver", failed)]


def test_rotate_shows_the_new_secret_once(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, _ = projects
    pid = a["project_id"]
    hook_id = _webhook(console_settings, pid, "https://hooks.example.com/x")
    with session_scope(engine_for(_url(console_settings))) as db:
        old_sealed = db.get(Webhook, hook_id).secret
    csrf = signed_in_token(client, a)
    url = f"/console/projects/{pid}/webhooks/{hook_id}/rotate-secret"
    assert client.post(url, data={"previous_valid_seconds": "60"}).status_code == 403
    with session_scope(engine_for(_url(console_settings))) as db:
        assert db.get(Webhook, hook_id).secret == old_sealed
    rotated = client.post(url, data={"csrf_token": csrf, "previous_valid_seconds": "3600"})
    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"
    secret = SECRET.search(rotated.text).group(1)
    assert "it is shown this once and never again" in rotated.text
    assert "The old secret keeps signing too until" in rotated.text
    with session_scope(engine_for(_url(console_settings))) as db:
        hook = db.get(Webhook, hook_id)
        box = box_for(console_settings)
        assert box.open(hook.secret) == secret and hook.secret != secret  # sealed at rest
        assert box.open(hook.previous_secret) == box.open(old_sealed)
        expires = hook.previous_secret_expires_at
        expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
        assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    later = client.get(f"/console/projects/{pid}/webhooks/{hook_id}").text
    assert secret not in later and 'id="new-secret"' not in later
    bad = client.post(url, data={"csrf_token": csrf, "previous_valid_seconds": "9999999"})
    assert bad.status_code == 400 and "from 0 to 604800" in bad.text
    actor = f"key:{_key_id(console_settings, pid)}"
    assert _audit(console_settings) == [(actor, "webhook.rotate_secret", hook_id)]


# --- audit ------------------------------------------------------------------------------


def test_audit_page_is_staff_only_with_filters_and_paging(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, b = projects
    start = datetime.now(UTC) - timedelta(hours=2)
    with session_scope(engine_for(_url(console_settings))) as db:
        for i in range(101):
            record_audit(
                db,
                "admin:sam",
                "error.payload.read",
                project_id=a["project_id"],
                target=f"err{i:03d}",
                at=start + timedelta(seconds=i),
            )
        record_audit(
            db,
            f"admin:{HOSTILE}",
            "stream.resume",
            project_id=b["project_id"],
            target=f"in.{b['project_id']}.orders/2",
            at=start,
        )
    csrf = signed_in_token(client, a)
    assert csrf
    refused = client.get("/console/audit")
    assert refused.status_code == 404 and "err100" not in refused.text
    assert (
        'href="/console/audit"'
        not in client.get(f"/console/projects/{a['project_id']}/streams").text
    )
    client.cookies.clear()
    signed_in_token(client, None)
    page = client.get("/console/audit").text
    assert 'href="/console/audit" aria-current="page"' in page
    # Newest first, 100 a page: two sign-ins and the resume, then err100 down to err004.
    assert page.split("<tbody>")[1].count("<tr>") == 100
    assert page.index("console.sign_in") < page.index("stream.resume") < page.index("err100")
    assert "admin:" + HOSTILE_SHOWN in page and "<script>alert" not in page
    # An error's entry links to its page.
    assert f'href="/console/projects/{a["project_id"]}/errors/err100"' in page
    reads = client.get("/console/audit", params={"action": "error.payload.read"}).text
    targets = re.findall(r"<bdi dir=\"ltr\" class=\"ltr\">(err\d{3})</bdi>", reads)
    assert targets == [f"err{i:03d}" for i in range(100, 0, -1)]
    older = re.search(r'href="([^"]+)" rel="next"', reads).group(1).replace("&amp;", "&")
    rest = client.get(older).text  # the filter is kept on the next page
    assert re.findall(r"<bdi dir=\"ltr\" class=\"ltr\">(err\d{3})</bdi>", rest) == ["err000"]
    assert "stream.resume</code>" not in rest and 'rel="next"' not in rest
    by_project = client.get("/console/audit", params={"project_id": b["project_id"]}).text
    assert "stream.resume" in by_project and "err0" not in by_project
    by_action = client.get("/console/audit", params={"action": "stream.resume"}).text
    assert "stream.resume" in by_action and "err0" not in by_action
    by_actor = client.get("/console/audit", params={"actor": "admin:sam"}).text
    assert "err100" in by_actor and "stream.resume" not in by_actor.split("<table")[1]
    none = client.get("/console/audit", params={"actor": "nobody"}).text
    assert "No audit entries match these filters." in none
    assert client.get("/console/audit", params={"before_id": "x"}).status_code == 400


# --- who sees what ----------------------------------------------------------------------


def test_customer_b_gets_404_on_a_pages_and_actions(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, b = projects
    apid, bpid = a["project_id"], b["project_id"]
    hook_id = _webhook(console_settings, apid, "https://a.example.com/secret-path")
    delivery = _delivery(console_settings, hook_id, status="failed", at=datetime.now(UTC))
    pause_id = _pause(console_settings, apid)
    _accept(_url(console_settings), apid, "a-only-collection", 2, datetime.now(UTC))
    csrf = signed_in_token(client, b)
    for path in (
        f"/console/projects/{apid}/streams",
        f"/console/projects/{apid}/webhooks",
        f"/console/projects/{apid}/webhooks/{hook_id}",
        f"/console/projects/{bpid}/webhooks/{hook_id}",
    ):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "secret-path" not in answer.text and "a-only-collection" not in answer.text
    own = client.get(f"/console/projects/{bpid}/streams").text
    assert "a-only-collection" not in own and "No events were received in this window." in own
    assert "secret-path" not in client.get(f"/console/projects/{bpid}/webhooks").text
    for path in (
        f"/console/projects/{apid}/webhooks/{hook_id}/test",
        f"/console/projects/{apid}/webhooks/{hook_id}/rotate-secret",
        f"/console/projects/{bpid}/webhooks/{hook_id}/rotate-secret",
        f"/console/projects/{apid}/webhooks/{hook_id}/deliveries/{delivery}/redeliver",
        f"/console/projects/{bpid}/webhooks/{hook_id}/deliveries/{delivery}/redeliver",
        f"/console/projects/{apid}/streams/pauses/{pause_id}/resume",
    ):
        assert client.post(path, data={"csrf_token": csrf}).status_code == 404, path
    with session_scope(engine_for(_url(console_settings))) as db:
        assert db.get(WebhookDelivery, delivery).status == "failed"
        assert db.get(StreamPause, pause_id).resumed_at is None
    assert _audit(console_settings) == []
    # B's nav points at B's pages.
    assert client.get("/console/webhooks", follow_redirects=False).headers["location"] == (
        f"/console/projects/{bpid}/webhooks"
    )


def test_staff_pick_a_project_and_open_any(
    client: TestClient,
    projects,
    console_settings: Settings,  # noqa: ANN001
) -> None:
    a, b = projects
    hook_id = _webhook(console_settings, b["project_id"], "https://b.example.com/in")
    signed_in_token(client, None)
    picker = client.get("/console/webhooks").text
    assert f'<option value="{a["project_id"]}"' in picker and "Pick a project" in picker
    picked = client.get("/console/webhooks", params={"project": b["project_id"]})
    assert picked.url.path == f"/console/projects/{b['project_id']}/webhooks"
    assert "https://b.example.com/in" in picked.text
    assert client.get(f"/console/projects/{b['project_id']}/webhooks/{hook_id}").status_code == 200
    # The URL must name the webhook's own project; a project that does not exist is a 404.
    assert client.get(f"/console/projects/{a['project_id']}/webhooks/{hook_id}").status_code == 404
    assert client.get("/console/projects/nope/streams").status_code == 404
    streams = client.get("/console/streams", params={"project": a["project_id"], "window": "7d"})
    assert streams.url.path == f"/console/projects/{a['project_id']}/streams"
    assert "per day (UTC)" in streams.text


@pytest.mark.parametrize(
    "path", ["/console/projects/x/streams", "/console/projects/x/webhooks/y", "/console/audit"]
)
def test_pages_need_a_session(client: TestClient, path: str) -> None:
    answer = client.get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/login?next=")
