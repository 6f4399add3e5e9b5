"""Fix and replay for a project: select the errors as replay does, preview each patched
payload through the worker's pipeline, and (``dry_run`` false) record the fix and replay the
patched events that would now be accepted through the replay path.

Only would-be-accepted events are replayed: one that would still be rejected would only come
back as a new error row and use up a replay of the cap. The rest are reported by code.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.api.audit import record_audit
from app.api.producer import KafkaProducerHolder
from app.api.replay_limit import TokenBucket
from app.api.replay_service import (
    NoSuchError,
    load_errors,
    produce_replays,
    rate_limited,
    target_where,
)
from app.api.schemas.fixes import FixRequest
from app.fixes.operations import FixPlan, OperationError, parse_operations
from app.fixes.preview import Outcome, preview_rows, shared_addons
from app.store.models import Fix, IngestError

SAMPLES = 5
SAMPLE_CHARS = 2000  # of each sample's before/after text
FAILURE_GROUPS = 20


def plan_for(request: FixRequest) -> FixPlan:
    """The validated operations; OperationError for a bad one (or replace_payload on a filter)."""
    if (request.error_id is None) == (request.filter is None):
        raise OperationError(-1, "give either error_id or filter")
    plan = parse_operations(request.operations)
    if plan.replaces_payload and request.error_id is None:
        raise OperationError(0, "replace_payload applies to one error_id only, not to a filter")
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


def _open_fix(sessions: sessionmaker[Session], fix: Fix) -> None:
    with sessions() as session, session.begin():
        session.add(fix)
        at = fix.created_at
        record_audit(
            session, fix.actor, "fix.applied", project_id=fix.project_id, target=fix.id, at=at
        )


def _close_fix(sessions: sessionmaker[Session], fix_id: str, counts: dict[str, int]) -> None:
    with sessions() as session, session.begin():
        session.execute(update(Fix).where(Fix.id == fix_id).values(**counts))


async def run_fix(
    request: FixRequest,
    *,
    project_id: str,
    actor: str,
    sessions: sessionmaker[Session],
    producer: KafkaProducerHolder,
    bucket: TokenBucket,
    cap: int,
    bootstrap: str | None,
    geoip_database: Path | None,
) -> dict[str, Any]:
    """The FixResult of one call. Raises OperationError (400), NoSuchError (404) or
    RateLimited (429, before anything is recorded)."""
    plan = plan_for(request)
    where = target_where(request.error_id, request.filter, project_id)
    matched, rows = await run_in_threadpool(load_errors, sessions, where, request.limit)
    if request.error_id is not None and not rows:
        raise NoSuchError(request.error_id)
    addons = await run_in_threadpool(shared_addons, geoip_database)
    outcomes = await run_in_threadpool(
        preview_rows, rows, plan, sessions=sessions, addons=addons, cap=cap
    )
    result = summarize(matched, rows, outcomes)
    accepted = [
        (r, o.patched) for r, o in zip(rows, outcomes, strict=True) if o.status == "accepted"
    ]
    if request.dry_run:
        return {
            **result,
            "dry_run": True,
            "fix_id": None,
            "replayed": 0,
            "refused": [],
            "remaining": len(accepted) + max(0, matched - len(rows)),
        }

    allowed = bucket.available()
    if accepted and allowed < 1:
        raise rate_limited(bucket)
    fix = Fix(
        id=uuid.uuid4().hex,
        project_id=project_id,
        operations=list(plan.operations),
        target=_target(request),
        problem_id=(request.filter.problem_id if request.filter else rows[0].problem_id),
        actor=actor,
        created_at=datetime.now(UTC),
        matched=matched,
        examined=len(rows),
        accepted=result["would_accept"],
        rejected=result["would_reject"],
        failed=result["failed_to_apply"],
        replayed=0,
        refused=0,
        remaining=0,
    )
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
        bootstrap=bootstrap,
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
