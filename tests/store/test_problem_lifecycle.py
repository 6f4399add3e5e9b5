"""A problem's status changes by a person and by the quiet-time rule, on SQLite and PostgreSQL
(docs/design.md, "Problems", Lifecycle): what each change does to the problem's errors, and
the audit entry naming who made it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from app.contract.errors import Rejection
from app.ingest.dlq import DeadLetter, dead_letter
from app.ingest.persist import BatchOutcome, BatchWriter
from app.ingest.records import RawRecord
from app.store.db import make_engine
from app.store.models import AuditEntry, IngestError, Problem, Project
from app.store.problem_lifecycle import change_status, quiet_hours, resolve_quiet_problems

PID = "ab" * 12
QUIET_PID = "cd" * 12  # a project with its own resolve_after_quiet_hours
T0 = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)


def letter(project: str, offset: int, name: str, at: datetime) -> DeadLetter:
    detail = {"path": f"items[0].{name}", "reason": "starts with '$'", "count": 1}
    record = RawRecord(f"in.{project}.purchases", 0, offset, None, None, b"{}", ())
    return dead_letter(record, Rejection("invalid_property_name", "validate", "x", detail), at)


def utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


@pytest.fixture
def engine(db_url: str):  # noqa: ANN201
    made = make_engine(db_url)
    with Session(made) as session, session.begin():
        session.add(Project(id=PID, name="shop", options={}, created_at=T0))
        session.add(
            Project(
                id=QUIET_PID, name="quiet", options={"resolve_after_quiet_hours": 2}, created_at=T0
            )
        )
    yield made
    made.dispose()


def write(engine: Engine, letters: list[DeadLetter]) -> None:
    BatchWriter(engine, payload_cap=16).write(BatchOutcome(rejected=letters))


def statuses(engine: Engine, problem_id: str) -> dict[int, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(IngestError.source_offset, IngestError.status).where(
                IngestError.problem_id == problem_id
            )
        ).all()
    return dict(rows)


def set_error_status(engine: Engine, offset: int, status: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(IngestError).where(IngestError.source_offset == offset).values(status=status)
        )


def change(engine: Engine, problem_id: str, status: str, actor: str, **kwargs: object) -> None:
    with Session(engine) as session, session.begin():
        problem = session.get(Problem, problem_id)
        assert problem is not None
        change_status(session, problem, status, actor, **kwargs)


def problem(engine: Engine, problem_id: str) -> Problem:
    with Session(engine) as session:
        found = session.get(Problem, problem_id)
        assert found is not None
        return found


def audit(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                AuditEntry.actor, AuditEntry.action, AuditEntry.project_id, AuditEntry.target
            ).order_by(AuditEntry.id)
        ).all()
    return [tuple(r) for r in rows]


def test_resolve_ignore_and_open_move_their_errors(engine: Engine) -> None:
    write(engine, [letter(PID, i, "$price", T0) for i in range(4)])
    write(engine, [letter(PID, 10, "$cost", T0)])  # another problem, untouched throughout
    price = letter(PID, 0, "$price", T0).problem.problem_id
    cost = letter(PID, 10, "$cost", T0).problem.problem_id
    set_error_status(engine, 3, "replayed")
    at = T0 + timedelta(hours=1)

    change(engine, price, "resolved", "ana@example.com", now=at)
    assert statuses(engine, price) == {0: "resolved", 1: "resolved", 2: "resolved", 3: "replayed"}
    p = problem(engine, price)
    assert (p.status, p.status_changed_by) == ("resolved", "ana@example.com")
    assert utc(p.resolved_at) == at and utc(p.status_changed_at) == at

    change(engine, price, "open", "bo@example.com", now=at + timedelta(minutes=1))
    assert statuses(engine, price) == {0: "open", 1: "open", 2: "open", 3: "replayed"}
    assert problem(engine, price).status == "open"

    set_error_status(engine, 2, "resolved")  # resolved on its own, via the errors API
    change(engine, price, "ignored", "cy@example.com", now=at + timedelta(minutes=2))
    assert statuses(engine, price) == {0: "ignored", 1: "ignored", 2: "resolved", 3: "replayed"}
    p = problem(engine, price)
    assert (p.status, p.ignore_until, p.ignore_until_count) == ("ignored", None, None)

    # Opening again reopens both the ignored and the resolved errors; replayed stays.
    change(engine, price, "open", "ana@example.com", now=at + timedelta(minutes=3))
    assert statuses(engine, price) == {0: "open", 1: "open", 2: "open", 3: "replayed"}
    assert statuses(engine, cost) == {10: "open"}
    assert problem(engine, cost).status == "open"

    assert audit(engine) == [
        ("ana@example.com", "problem.resolved", PID, price),
        ("bo@example.com", "problem.open", PID, price),
        ("cy@example.com", "problem.ignored", PID, price),
        ("ana@example.com", "problem.open", PID, price),
    ]


def test_an_ignore_with_an_end_records_it_and_a_later_change_clears_it(engine: Engine) -> None:
    write(engine, [letter(PID, i, "$price", T0) for i in range(3)])
    price = letter(PID, 0, "$price", T0).problem.problem_id
    until = T0 + timedelta(days=1)
    change(engine, price, "ignored", "ana", now=T0, ignore_until=until, ignore_count=5)
    p = problem(engine, price)
    assert (utc(p.ignore_until), p.ignore_until_count) == (until, 8)  # 3 seen + 5 more
    change(engine, price, "resolved", "ana", now=T0)
    p = problem(engine, price)
    assert (p.ignore_until, p.ignore_until_count) == (None, None)


@pytest.mark.parametrize("status", ["regressed", "closed", ""])
def test_only_open_resolved_and_ignored_can_be_set(engine: Engine, status: str) -> None:
    write(engine, [letter(PID, 0, "$price", T0)])
    price = letter(PID, 0, "$price", T0).problem.problem_id
    with pytest.raises(ValueError, match="status is one of open, resolved, ignored"):
        change(engine, price, status, "ana")
    assert problem(engine, price).status == "open"
    assert audit(engine) == []


def test_quiet_problems_resolve_after_their_projects_time(engine: Engine) -> None:
    # Last seen at T0: the quiet project's problem (2 h) and the default one (5 h).
    write(engine, [letter(PID, 0, "$price", T0), letter(QUIET_PID, 0, "$price", T0)])
    write(engine, [letter(PID, 1, "$recent", T0 + timedelta(hours=4, minutes=30))])
    shop = letter(PID, 0, "$price", T0).problem.problem_id
    recent = letter(PID, 1, "$recent", T0).problem.problem_id
    quiet = letter(QUIET_PID, 0, "$price", T0).problem.problem_id

    # Not quiet long enough for anyone yet.
    assert resolve_quiet_problems(engine, 5, now=T0 + timedelta(hours=1, minutes=59)) == 0
    # The quiet project's 2 hours have passed; the default 5 have not.
    assert resolve_quiet_problems(engine, 5, now=T0 + timedelta(hours=2, minutes=1)) == 1
    assert problem(engine, quiet).status == "resolved"
    assert problem(engine, shop).status == "open"
    # Past the default: the project's old problem resolves, the one seen recently does not.
    later = T0 + timedelta(hours=5, minutes=1)
    assert resolve_quiet_problems(engine, 5, now=later) == 1
    p = problem(engine, shop)
    assert (p.status, p.status_changed_by, utc(p.resolved_at)) == (
        "resolved",
        "inbound (resolve_after_quiet)",
        later,
    )
    assert problem(engine, recent).status == "open"
    assert statuses(engine, shop) == {0: "resolved"}
    assert statuses(engine, recent) == {1: "open"}
    assert audit(engine) == [
        ("inbound (resolve_after_quiet)", "problem.resolved", QUIET_PID, quiet),
        ("inbound (resolve_after_quiet)", "problem.resolved", PID, shop),
    ]
    # Already resolved: nothing more to do.
    assert resolve_quiet_problems(engine, 5, now=later + timedelta(days=3)) == 1  # recent
    assert resolve_quiet_problems(engine, 5, now=later + timedelta(days=4)) == 0


def test_the_default_off_leaves_only_projects_that_opt_in(engine: Engine) -> None:
    write(engine, [letter(PID, 0, "$price", T0), letter(QUIET_PID, 0, "$price", T0)])
    shop = letter(PID, 0, "$price", T0).problem.problem_id
    quiet = letter(QUIET_PID, 0, "$price", T0).problem.problem_id
    assert resolve_quiet_problems(engine, 0, now=T0 + timedelta(days=30)) == 1
    assert problem(engine, quiet).status == "resolved"
    assert problem(engine, shop).status == "open"


def test_a_project_option_of_zero_opts_out_of_the_default(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        session.get(Project, QUIET_PID).options = {"resolve_after_quiet_hours": 0}
    write(engine, [letter(PID, 0, "$price", T0), letter(QUIET_PID, 0, "$price", T0)])
    quiet = letter(QUIET_PID, 0, "$price", T0).problem.problem_id
    assert resolve_quiet_problems(engine, 1, now=T0 + timedelta(days=30)) == 1
    assert problem(engine, quiet).status == "open"


def test_a_regressed_problem_resolves_when_quiet_and_ignored_ones_do_not(engine: Engine) -> None:
    write(engine, [letter(QUIET_PID, 0, "$price", T0), letter(QUIET_PID, 1, "$cost", T0)])
    price = letter(QUIET_PID, 0, "$price", T0).problem.problem_id
    cost = letter(QUIET_PID, 1, "$cost", T0).problem.problem_id
    change(engine, price, "resolved", "ana", now=T0)
    write(engine, [letter(QUIET_PID, 2, "$price", T0 + timedelta(minutes=1))])
    assert problem(engine, price).status == "regressed"
    change(engine, cost, "ignored", "ana", now=T0)
    assert resolve_quiet_problems(engine, 0, now=T0 + timedelta(days=1)) == 1
    assert problem(engine, price).status == "resolved"
    assert problem(engine, cost).status == "ignored"


@pytest.mark.parametrize(
    ("options", "hours"),
    [
        (None, 5.0),
        ({}, 5.0),
        ({"resolve_after_quiet_hours": 24}, 24.0),
        ({"resolve_after_quiet_hours": "12"}, 12.0),
        ({"resolve_after_quiet_hours": 0}, 0.0),
        ({"resolve_after_quiet_hours": -3}, 0.0),
        ({"resolve_after_quiet_hours": "soon"}, 5.0),
        ({"resolve_after_quiet_hours": [1]}, 5.0),
        ({"resolve_after_quiet_hours": True}, 5.0),
        ({"resolve_after_quiet_hours": "inf"}, 5.0),
        ({"resolve_after_quiet_hours": "nan"}, 5.0),
        # A thousand years and more: capped at 100 years, which a date can still go back.
        ({"resolve_after_quiet_hours": 1e12}, 876_000.0),
    ],
)
def test_quiet_hours_of_a_project(options: dict | None, hours: float) -> None:
    assert quiet_hours(options, 5) == hours


def test_one_projects_odd_option_does_not_stop_the_others(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        session.get(Project, PID).options = {"resolve_after_quiet_hours": 1e12}
    write(engine, [letter(PID, 0, "$price", T0), letter(QUIET_PID, 0, "$price", T0)])
    quiet = letter(QUIET_PID, 0, "$price", T0).problem.problem_id
    assert resolve_quiet_problems(engine, 0, now=T0 + timedelta(hours=3)) == 1
    assert problem(engine, quiet).status == "resolved"
    # Nor does an odd default.
    assert resolve_quiet_problems(engine, float("inf"), now=T0 + timedelta(hours=3)) == 0
    assert resolve_quiet_problems(engine, 1e12, now=T0 + timedelta(hours=3)) == 0
