"""Fix and replay for a project: select the errors as replay does, preview each patched
payload through the worker's pipeline, and (``dry_run`` false) record the fix and replay the
patched events that would now be accepted through the replay path.

Only would-be-accepted events are replayed: one that would still be rejected would only come
back as a new error row and use up a replay of the cap. The rest are reported by code.

Saved fixes: ``save`` keeps a fix (applied, or a preview recorded with status ``preview``) on
its problem; ``apply_saved_fix`` runs its operations again on the problem's errors open now,
as a new fix naming the saved one. Nothing is ever applied without a call.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.api.audit import record_audit
from app.api.fixes.operations import FixPlan, OperationError, parse_operations
from app.api.fixes.preview import Outcome, load_rows, preview_rows, shared_addons
from app.api.fixes.views import SavedFix
from app.api.producer import KafkaProducerHolder
from app.api.replay_limit import TokenBucket
from app.api.replay_service import (
    NoSuchError,
    load_errors,
    produce_replays,
    rate_limited,
    target_where,
)
from app.api.schemas.fixes import FixRequest, SavedFixApply
from app.api.schemas.replay import ReplayFilter
from app.store.models import Fix, IngestError, Problem

SAMPLES = 5
SAMPLE_CHARS = 2000  # of each sample's before/after text
FAILURE_GROUPS = 20


class CannotSave(ValueError):
    """``save`` where no problem can keep the fix (400)."""


class NoSuchProblem(Exception):
    """The problem a fix is to be saved on is not in this project (404)."""


def plan_for(request: FixRequest) -> FixPlan:
    """The validated operations; OperationError for a bad one (or replace_payload on a filter,
    or saved: a saved fix applies to its problem's errors, never to one alone)."""
    if (request.error_id is None) == (request.filter is None):
        raise OperationError(-1, "give either error_id or filter")
    plan = parse_operations(request.operations)
    if plan.replaces_payload and request.error_id is None:
        raise OperationError(0, "replace_payload applies to one error_id only, not to a filter")
    if plan.replaces_payload and request.save:
        raise OperationError(0, "replace_payload cannot be saved: a saved fix applies to a problem")
    return plan


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return raw.decode("utf-8", errors="replace")[:SAMPLE_CHARS]


def _sample(row: IngestError, outcome: Outcome) -> dict[str, Any]:
    shown = {
        "accepted": {"keen_id": outcome.keen_id},
        "rejected": {"code": outcome.code, "message": outcome.message},
        "failed": {"index": outcome.index, "reason": outcome.reason},
    }[outcome.status]
    return {
        "error_id": row.id,
        "before": _text(row.payload),
        "after": _text(outcome.patched),
        "outcome": {"status": outcome.status, **shown},
    }


def summarize(
    matched: int, rows: Sequence[IngestError], outcomes: Sequence[Outcome]
) -> dict[str, Any]:
    """The preview's answer: counts by outcome, failures grouped, the first samples."""
    codes = Counter(o.code for o in outcomes if o.status == "rejected")
    failures = Counter((o.index, o.reason) for o in outcomes if o.status == "failed")
    return {
        "matched": matched,
        "examined": len(rows),
        "would_accept": sum(1 for o in outcomes if o.status == "accepted"),
        "would_reject": sum(codes.values()),
        "would_reject_by_code": dict(sorted(codes.items())),
        "failed_to_apply": sum(failures.values()),
        "failures": [
            {"index": index, "reason": reason, "count": count}
            for (index, reason), count in sorted(
                failures.items(), key=lambda item: (-item[1], item[0][0], item[0][1])
            )[:FAILURE_GROUPS]
        ],
        "samples": [_sample(r, o) for r, o in zip(rows[:SAMPLES], outcomes[:SAMPLES], strict=True)],
    }


def _target(request: FixRequest) -> dict[str, Any]:
    if request.error_id is not None:
        return {"error_id": request.error_id}
    assert request.filter is not None
    return {"filter": request.filter.model_dump(exclude_none=True)}


def _applied_target(fix: Fix) -> str:
    # The audit log has one target column: an application of a saved fix names both.
    return fix.id if fix.saved_fix_id is None else f"{fix.id} saved_fix_id={fix.saved_fix_id}"


def _open_fix(sessions: sessionmaker[Session], fix: Fix) -> None:
    with sessions() as session, session.begin():
        session.add(fix)
        at, project_id = fix.created_at, fix.project_id
        if fix.status == "applied":
            target = _applied_target(fix)
            record_audit(
                session, fix.actor, "fix.applied", project_id=project_id, target=target, at=at
            )
        if fix.saved:
            record_audit(
                session, fix.actor, "fix.saved", project_id=project_id, target=fix.id, at=at
            )


def _close_fix(sessions: sessionmaker[Session], fix_id: str, counts: dict[str, int]) -> None:
    with sessions() as session, session.begin():
        session.execute(update(Fix).where(Fix.id == fix_id).values(**counts))


def _problem_to_save_on(
    sessions: sessionmaker[Session], project_id: str, problem_id: str | None
) -> str:
    if problem_id is None:
        raise CannotSave("this error belongs to no problem: there is nothing to save the fix on")
    with sessions() as session:
        found = session.scalar(
            select(Problem.id).where(Problem.id == problem_id, Problem.project_id == project_id)
        )
    if found is None:
        raise NoSuchProblem(problem_id)
    return problem_id


async def run_fix(
    request: FixRequest,
    *,
    project_id: str,
    actor: str,
    sessions: sessionmaker[Session],
    producer: KafkaProducerHolder,
    bucket: TokenBucket,
    cap: int,
    geoip_database: Path | None,
) -> dict[str, Any]:
    """The FixResult of one call. Raises OperationError (400), CannotSave (400), NoSuchError
    or NoSuchProblem (404) or RateLimited (429, before anything is recorded)."""
    plan = plan_for(request)
    if request.save and request.filter is not None and not request.filter.problem_id:
        raise CannotSave("save needs filter.problem_id or an error_id: a fix is saved on a problem")
    where = target_where(request.error_id, request.filter, project_id)
    # A preview only reads the rows: plain rows cost a third of ORM objects; an apply marks
    # them replayed through the ORM.
    load = load_rows if request.dry_run else load_errors
    matched, rows = await run_in_threadpool(load, sessions, where, request.limit)
    if request.error_id is not None and not rows:
        raise NoSuchError(request.error_id)
    problem_id = request.filter.problem_id if request.filter else rows[0].problem_id
    if request.save:
        problem_id = await run_in_threadpool(_problem_to_save_on, sessions, project_id, problem_id)
    return await _preview_or_apply(
        plan,
        matched,
        rows,
        dry_run=request.dry_run,
        target=_target(request),
        problem_id=problem_id,
        save=request.save,
        saved_fix_id=None,
        project_id=project_id,
        actor=actor,
        sessions=sessions,
        producer=producer,
        bucket=bucket,
        cap=cap,
        geoip_database=geoip_database,
    )


async def apply_saved_fix(
    saved: SavedFix,
    body: SavedFixApply,
    *,
    actor: str,
    sessions: sessionmaker[Session],
    producer: KafkaProducerHolder,
    bucket: TokenBucket,
    cap: int,
    geoip_database: Path | None,
) -> dict[str, Any]:
    """A saved fix's operations on its problem's errors that are open now (those that came
    after it, and any it left): the SavedFixResult. Applied (``dry_run`` false), it is a new
    fix naming the saved one; a preview stores nothing. Raises RateLimited (429)."""
    # Stored operations are normalized ones, which parse back to themselves.
    plan = parse_operations(saved.operations)
    open_now = ReplayFilter(problem_id=saved.problem_id, status="open")
    where = target_where(None, open_now, saved.project_id)
    load = load_rows if body.dry_run else load_errors
    matched, rows = await run_in_threadpool(load, sessions, where, body.limit)
    result = await _preview_or_apply(
        plan,
        matched,
        rows,
        dry_run=body.dry_run,
        target={"filter": open_now.model_dump(exclude_none=True)},
        problem_id=saved.problem_id,
        save=False,
        saved_fix_id=saved.fix_id,
        project_id=saved.project_id,
        actor=actor,
        sessions=sessions,
        producer=producer,
        bucket=bucket,
        cap=cap,
        geoip_database=geoip_database,
    )
    return {**result, "saved_fix_id": saved.fix_id}


def unsave_fix(session: Session, fix: Fix, actor: str, now: datetime | None = None) -> Fix:
    """Stops ``fix`` being saved, keeping its row (audited ``fix.unsaved``); a fix that is not
    saved is left as it is, so un-saving twice is harmless."""
    if fix.saved:
        at = now or datetime.now(UTC)
        fix.saved, fix.unsaved_at, fix.unsaved_by = False, at, actor
        record_audit(session, actor, "fix.unsaved", project_id=fix.project_id, target=fix.id, at=at)
    return fix


def _fix_row(
    plan: FixPlan,
    result: dict[str, Any],
    *,
    status: str,
    target: dict[str, Any],
    problem_id: str | None,
    save: bool,
    saved_fix_id: str | None,
    project_id: str,
    actor: str,
    remaining: int,
) -> Fix:
    return Fix(
        id=uuid.uuid4().hex,
        project_id=project_id,
        operations=list(plan.operations),
        target=target,
        problem_id=problem_id,
        actor=actor,
        created_at=datetime.now(UTC),
        matched=result["matched"],
        examined=result["examined"],
        accepted=result["would_accept"],
        rejected=result["would_reject"],
        failed=result["failed_to_apply"],
        replayed=0,
        refused=0,
        remaining=remaining,
        status=status,
        saved=save,
        saved_fix_id=saved_fix_id,
    )


async def _preview_or_apply(
    plan: FixPlan,
    matched: int,
    rows: Sequence[IngestError],
    *,
    dry_run: bool,
    target: dict[str, Any],
    problem_id: str | None,
    save: bool,
    saved_fix_id: str | None,
    project_id: str,
    actor: str,
    sessions: sessionmaker[Session],
    producer: KafkaProducerHolder,
    bucket: TokenBucket,
    cap: int,
    geoip_database: Path | None,
) -> dict[str, Any]:
    addons = await run_in_threadpool(shared_addons, geoip_database)
    outcomes = await run_in_threadpool(
        preview_rows, rows, plan, sessions=sessions, addons=addons, cap=cap
    )
    result = summarize(matched, rows, outcomes)
    accepted = [
        (r, o.patched) for r, o in zip(rows, outcomes, strict=True) if o.status == "accepted"
    ]
    row = partial(
        _fix_row,
        plan,
        result,
        target=target,
        problem_id=problem_id,
        save=save,
        saved_fix_id=saved_fix_id,
        project_id=project_id,
        actor=actor,
    )
    if dry_run:
        remaining = len(accepted) + max(0, matched - len(rows))
        fix_id = None
        if save:  # a saved preview: recorded so it can be applied later, nothing replayed
            fix = row(status="preview", remaining=remaining)
            fix_id = fix.id
            await run_in_threadpool(_open_fix, sessions, fix)
        return {
            **result,
            "dry_run": True,
            "fix_id": fix_id,
            "replayed": 0,
            "refused": [],
            "remaining": remaining,
        }

    allowed = bucket.available()
    if accepted and allowed < 1:
        raise rate_limited(bucket)
    fix = row(status="applied", remaining=0)
    fix_id = fix.id
    # Recorded before anything is produced, so every replay's fix_id names a stored fix.
    await run_in_threadpool(_open_fix, sessions, fix)
    replayed, refused = await produce_replays(
        accepted[:allowed],
        fix_id=fix_id,
        project_id=project_id,
        actor=actor,
        sessions=sessions,
        producer=producer,
        bucket=bucket,
        cap=cap,
    )
    remaining = max(0, len(accepted) - allowed) + max(0, matched - len(rows))
    counts = {"replayed": len(replayed), "refused": len(refused), "remaining": remaining}
    await run_in_threadpool(_close_fix, sessions, fix_id, counts)
    return {
        **result,
        "dry_run": False,
        "fix_id": fix_id,
        "replayed": len(replayed),
        "refused": refused,
        "remaining": remaining,
    }
