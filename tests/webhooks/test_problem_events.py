"""problem.created and problem.regressed webhooks (issue #12, "Notifications"), on SQLite and
PostgreSQL: the worker's BatchWriter writes the notifications as it does in production, the
real dispatcher signs and sends them to a loopback receiver. Literals are the contract's."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook as StandardVerifier

from app.contract.errors import Rejection
from app.ingest.dlq import DeadLetter, dead_letter
from app.ingest.persist import BatchOutcome, BatchWriter
from app.ingest.records import RawRecord
from app.store.models import Problem
from app.store.problem_lifecycle import change_status
from app.webhooks.dispatcher import Dispatcher
from tests.webhooks.helpers import (
    add_notifications,
    deliveries_of,
    dispatch_once,
    failed_payload,
    new_project,
    new_webhook,
    verify_from_spec,
)

T0 = datetime(2026, 11, 28, 10, 15, 0, tzinfo=UTC)
LINKS = "https://in.example.com"


def rule(project: str, collection: str, code: str, location: str) -> str:
    """The documented fingerprint rule, written out."""
    joined = "\x1f".join((project, collection, code, location))
    return hashlib.sha256(joined.encode()).hexdigest()[:32]


def dollar_price() -> Rejection:
    detail = {"path": "$price", "reason": "starts with '$'", "count": 1}
    return Rejection("invalid_property_name", "validate", "bad name", detail)


def bad_json() -> Rejection:
    detail = {"char_offset": 1, "reason": "unexpected character (char 1)"}
    return Rejection("invalid_json", "decode", "not JSON", detail)


def letter(project: str, collection: str, offset: int, rejection: Rejection) -> DeadLetter:
    record = RawRecord(
        f"in.{project}.{collection}",
        0,
        offset,
        1_795_000_000_000,
        b"k",
        b"{bad",
        (("inbound.key_id", b"k1"),),
    )
    return dead_letter(record, rejection, T0 + timedelta(seconds=offset))


def write(engine: Engine, letters: list[DeadLetter]) -> None:
    """What the worker does with a batch's rejections: rows, problems, outbox, one commit."""
    BatchWriter(engine, payload_cap=64).write(BatchOutcome(rejected=letters, dlq_coordinates={}))


def dispatch(engine: Engine, hook_settings) -> None:  # noqa: ANN001 - settings factory
    dispatch_once(Dispatcher(hook_settings(webhook_link_base=LINKS), engine))


def test_problem_created_is_signed_and_sent_to_its_subscribers_only(
    engine, receiver, hook_settings
) -> None:
    project = new_project(engine)
    price = rule(project, "purchases", "invalid_property_name", "$price")
    broken = rule(project, "clicks", "invalid_json", "")
    problems, problems_secret = new_webhook(
        engine, project, receiver.url("/problems"), ["problem.created", "problem.regressed"]
    )
    failed, failed_secret = new_webhook(engine, project, receiver.url("/failed"), ["ingest.failed"])
    clicks_only, _ = new_webhook(
        engine, project, receiver.url("/clicks"), ["problem.created"], ["clicks"]
    )
    stranger = new_project(engine)
    elsewhere, _ = new_webhook(engine, stranger, receiver.url("/elsewhere"), ["problem.created"])
    letters = [
        letter(project, "purchases", 0, dollar_price()),
        letter(project, "purchases", 1, dollar_price()),
        letter(project, "clicks", 2, bad_json()),
    ]
    write(engine, letters)

    dispatch(engine, hook_settings)

    got = receiver.wait_for(2, "/problems")
    assert len(got) == 2
    bodies = {}
    for request in got:
        assert verify_from_spec(problems_secret, request.headers, request.body)
        body = StandardVerifier(problems_secret).verify(request.body, request.headers)
        assert body["type"] == "problem.created"
        bodies[body["data"]["problem_id"]] = body["data"]
    assert bodies[price] == {
        "project_id": project,
        "problem_id": price,
        "title": "Property name `$price` starts with `$`",
        "code": "invalid_property_name",
        "stage": "validate",
        "collection": "purchases",
        "status": "open",
        "count": 2,
        "first_seen": "2026-11-28T10:15:00.000Z",
        "last_seen": "2026-11-28T10:15:01.000Z",
        "first_error_id": letters[0].error_id,
        "last_error_id": letters[1].error_id,
        "url": f"https://in.example.com/3.0/projects/{project}/problems/{price}",
    }
    assert bodies[broken]["title"] == "Event is not valid JSON"
    assert bodies[broken]["count"] == 1 and bodies[broken]["collection"] == "clicks"
    assert (
        bodies[broken]["url"] == f"https://in.example.com/3.0/projects/{project}/problems/{broken}"
    )

    # The collections filter reads the problem's collection.
    (clicks,) = receiver.wait_for(1, "/clicks")
    assert clicks.json["type"] == "problem.created"
    assert clicks.json["data"]["problem_id"] == broken
    assert len(deliveries_of(engine, clicks_only)) == 1

    # ingest.failed alone for its subscriber, its samples naming their problems.
    (batch,) = receiver.wait_for(1, "/failed")
    body = StandardVerifier(failed_secret).verify(batch.body, batch.headers)
    assert body["type"] == "ingest.failed" and body["data"]["total"] == 3
    samples = {s["error_id"]: s["problem_id"] for s in body["data"]["samples"]}
    assert samples == {
        letters[0].error_id: price,
        letters[1].error_id: price,
        letters[2].error_id: broken,
    }
    assert [d.event_type for d in deliveries_of(engine, failed)] == ["ingest.failed"]
    assert sorted(d.event_type for d in deliveries_of(engine, problems)) == [
        "problem.created",
        "problem.created",
    ]
    assert receiver.to("/elsewhere") == [] and deliveries_of(engine, elsewhere) == []
    assert all(d.status == "delivered" for d in deliveries_of(engine, problems))


def test_an_error_after_resolution_sends_problem_regressed(engine, receiver, hook_settings) -> None:
    project = new_project(engine)
    price = rule(project, "purchases", "invalid_property_name", "$price")
    watcher, secret = new_webhook(
        engine, project, receiver.url("/problems"), ["problem.created", "problem.regressed"]
    )
    created_only, _ = new_webhook(engine, project, receiver.url("/created"), ["problem.created"])
    other_collection, _ = new_webhook(
        engine, project, receiver.url("/clicks"), ["problem.regressed"], ["clicks"]
    )
    write(engine, [letter(project, "purchases", 0, dollar_price())])
    dispatch(engine, hook_settings)
    receiver.wait_for(1, "/problems")
    receiver.wait_for(1, "/created")
    with Session(engine) as session, session.begin():
        problem = session.get(Problem, price)
        assert problem is not None
        change_status(session, problem, "resolved", "ana@example.com")

    regress = letter(project, "purchases", 1, dollar_price())
    write(engine, [regress])
    dispatch(engine, hook_settings)

    got = receiver.wait_for(2, "/problems")
    assert len(got) == 2
    last = got[-1]
    assert verify_from_spec(secret, last.headers, last.body)
    body = StandardVerifier(secret).verify(last.body, last.headers)
    assert body["type"] == "problem.regressed"
    data = body["data"]
    assert data["problem_id"] == price and data["project_id"] == project
    assert data["status"] == "regressed" and data["previous_status"] == "resolved"
    assert data["count"] == 2 and data["last_error_id"] == regress.error_id
    assert data["regressed_at"].endswith("Z")
    assert data["url"] == f"https://in.example.com/3.0/projects/{project}/problems/{price}"
    assert [d.event_type for d in deliveries_of(engine, watcher)] == [
        "problem.created",
        "problem.regressed",
    ]
    # Not subscribed to regressions, or to another collection: told nothing more.
    assert len(receiver.to("/created")) == 1 and len(deliveries_of(engine, created_only)) == 1
    assert receiver.to("/clicks") == [] and deliveries_of(engine, other_collection) == []


def test_ingest_failed_samples_written_before_problems_have_no_problem_id(
    engine, receiver, hook_settings
) -> None:
    """Notifications already in the outbox when the upgrade lands have no problem_id."""
    project = new_project(engine)
    new_webhook(engine, project, receiver.url(), ["ingest.failed"])
    old = failed_payload()
    tagged = failed_payload() | {"problem_id": "0f" * 16}
    add_notifications(engine, project, "ingest.failed", [old, tagged])
    dispatch(engine, hook_settings)
    (got,) = receiver.wait_for(1)
    samples = {s["error_id"]: s["problem_id"] for s in got.json["data"]["samples"]}
    assert samples == {old["error_id"]: None, tagged["error_id"]: "0f" * 16}
