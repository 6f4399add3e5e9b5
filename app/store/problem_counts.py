"""Counts new error rows into their problems, in the transaction that inserts the rows.

The caller passes only rows it actually inserted (a redelivered batch passes none twice), so a
problem's ``count`` is always the number of its error rows. Also decides the lifecycle moves a
new error causes (docs/design.md, "Problems"): a new problem is ``problem.created``; an error
in a ``resolved`` problem, or in an ``ignored`` one whose ignore has ended, regresses it
(``problem.regressed``); an error in a still-ignored problem is stored ``ignored`` and tells
nobody.

Concurrency: the new problems are inserted first with ``ON CONFLICT DO NOTHING RETURNING``,
so of two workers meeting one new problem only one sees it created; the counts are then
incremented in place, which on PostgreSQL locks the rows until commit, so the status read and
changed after that cannot race another batch. Rows are locked in problem id order, so two
batches never wait on each other in a cycle.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy import Connection, DateTime, bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.contract.fingerprint import ProblemKey as Fingerprint
from app.contract.fingerprint import overflow_of
from app.contract.timestamps import iso_ms
from app.store.models import IngestError, Problem, ProblemHour, ProblemKey

PROBLEM_CREATED = "problem.created"
PROBLEM_REGRESSED = "problem.regressed"
# The first key of the PostgreSQL advisory lock that serialises new problems per project.
_LIMIT_LOCK = 0x1D12
_CHUNK = 500
_problems = Problem.__table__
_hours = ProblemHour.__table__
_keys = ProblemKey.__table__


@dataclass(frozen=True, slots=True)
class ProblemHit:
    """One new error row, as its problem counts it."""

    fingerprint: Fingerprint
    project_id: str
    collection: str
    stage: str
    error_id: str
    at: datetime
    key_id: str | None
    dlq: tuple[str, int, int] | None  # (backend DLQ topic, partition, offset)


@dataclass
class Recorded:
    # (project_id, type, payload) of the problem.* notifications to put in the outbox.
    notifications: list[tuple[str, str, dict]] = field(default_factory=list)
    # Problems muted by an ignore: their errors send no ingest.failed either.
    ignored: set[str] = field(default_factory=set)
    # The errors stored ``ignored`` (those of ``ignored`` problems, and of a problem whose
    # ignore by count ended within the batch, the ones still within that count).
    muted: set[str] = field(default_factory=set)
    # error_id -> the overflow problem it was counted in (its project is at its problem limit).
    remapped: dict[str, str] = field(default_factory=dict)

    def problem_id(self, error_id: str, fingerprinted: str) -> str:
        return self.remapped.get(error_id, fingerprinted)

    def mutes(self, error_id: str) -> bool:
        """The error was muted by an ignore: no ingest.failed for it."""
        return error_id in self.muted


@dataclass
class _Tally:
    first: ProblemHit
    count: int = 0
    first_at: datetime | None = None
    first_id: str = ""
    last_at: datetime | None = None
    last_id: str = ""
    sample: ProblemHit | None = None
    hours: Counter = field(default_factory=Counter)
    keys: dict[str, list] = field(default_factory=dict)
    hits: list[ProblemHit] = field(default_factory=list)

    def add(self, hit: ProblemHit) -> None:
        self.count += 1
        at = hit.at
        if self.first_at is None or (at, hit.error_id) < (self.first_at, self.first_id):
            self.first_at, self.first_id = at, hit.error_id
        if self.last_at is None or (at, hit.error_id) > (self.last_at, self.last_id):
            self.last_at, self.last_id = at, hit.error_id
        if hit.dlq is not None and (self.sample is None or at >= self.sample.at):
            self.sample = hit
        self.hours[_hour(at)] += 1
        if hit.key_id:
            seen = self.keys.get(hit.key_id)
            if seen is None:
                self.keys[hit.key_id] = [1, at]
            else:
                seen[0] += 1
                if at > seen[1]:
                    seen[1] = at
        self.hits.append(hit)


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _insert(conn: Connection, table):  # noqa: ANN001, ANN202 - dialect-specific insert construct
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _chunks(items: list, size: int = _CHUNK) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


_TIME = DateTime(timezone=True)
_p = _problems.c
# Each parameter object once: SQLAlchemy refuses two differently-typed ones of one name.
_first, _last = bindparam("b_first", type_=_TIME), bindparam("b_last", type_=_TIME)
_earlier, _later = _p.first_seen > _first, _p.last_seen < _last
_BUMP = (
    update(_problems)
    .where(_p.id == bindparam("b_id"))
    .values(
        count=_p.count + bindparam("b_n"),
        first_seen=case((_earlier, _first), else_=_p.first_seen),
        first_error_id=case((_earlier, bindparam("b_first_id")), else_=_p.first_error_id),
        last_seen=case((_later, _last), else_=_p.last_seen),
        last_error_id=case((_later, bindparam("b_last_id")), else_=_p.last_error_id),
        sample_error_id=func.coalesce(bindparam("b_s_id"), _p.sample_error_id),
        sample_dlq_topic=func.coalesce(bindparam("b_s_topic"), _p.sample_dlq_topic),
        sample_dlq_partition=func.coalesce(bindparam("b_s_partition"), _p.sample_dlq_partition),
        sample_dlq_offset=func.coalesce(bindparam("b_s_offset"), _p.sample_dlq_offset),
        updated_at=bindparam("b_now", type_=_TIME),
    )
)


def hit_for(fingerprint: Fingerprint, row: dict) -> ProblemHit:
    """The hit of an error row as ``RejectedRecord.error_row`` builds it."""
    topic = row["dlq_topic"]
    return ProblemHit(
        fingerprint=fingerprint,
        project_id=row["project_id"],
        collection=row["collection"],
        stage=row["stage"],
        error_id=row["id"],
        at=row["created_at"],
        key_id=row["key_id"],
        dlq=(topic, row["dlq_partition"], row["dlq_offset"]) if topic else None,
    )


def record_hits(
    conn: Connection, hits: Sequence[ProblemHit], now: datetime, max_problems: int
) -> Recorded:
    """Count ``hits`` (new error rows, already inserted) into their problems.

    ``max_problems``: most problems a project keeps; the errors of locations beyond it are
    counted in their code's overflow problem, and their rows say so.
    """
    out = Recorded()
    if not hits:
        return out
    tallies: dict[str, _Tally] = {}
    for hit in hits:
        pid = hit.fingerprint.problem_id
        tally = tallies.get(pid)
        if tally is None:
            tally = tallies[pid] = _Tally(hit)
        tally.add(hit)
    known = _keep_within_limit(conn, tallies, max_problems, out)
    # Every writer locks problem rows (and their hour and key rows) in id order: two batches
    # meeting the same problems in different orders would otherwise deadlock on PostgreSQL.
    tallies = dict(sorted(tallies.items()))
    created = _insert_new(conn, tallies, now, known)
    existing = [pid for pid in tallies if pid not in created]
    if existing:
        conn.execute(_BUMP, [_bump_params(pid, tallies[pid], now) for pid in existing])
    _count_hours_and_keys(conn, tallies)
    regressed: list[tuple[str, str]] = []
    rows = {}
    for chunk in _chunks(list(tallies)):
        for row in conn.execute(select(_problems).where(_problems.c.id.in_(chunk))):
            rows[row.id] = row
    for pid, row in rows.items():
        if pid in created:
            out.notifications.append((row.project_id, PROBLEM_CREATED, _payload(row)))
        elif row.status == "resolved":
            regressed.append((pid, "resolved"))
        elif row.status == "ignored":
            until = _utc(row.ignore_until)
            hits = tallies[pid].hits
            # ignore_until_count is the count at which the ignore has had all its errors:
            # reaching it is still muted, the first error beyond it regresses. The batch's
            # errors up to it are muted even when the same batch goes beyond it.
            if until is not None and until <= now:
                regressed.append((pid, "ignored"))
            elif row.ignore_until_count is not None and row.count > row.ignore_until_count:
                still = max(0, row.ignore_until_count - (row.count - len(hits)))
                out.muted.update(hit.error_id for hit in hits[:still])
                regressed.append((pid, "ignored"))
            else:
                out.ignored.add(pid)
                out.muted.update(hit.error_id for hit in hits)
    if regressed:
        ids = [pid for pid, _ in regressed]
        conn.execute(
            update(_problems)
            .where(_problems.c.id.in_(ids))
            .values(
                status="regressed",
                regressed_at=now,
                status_changed_at=now,
                status_changed_by="inbound",
                ignore_until=None,
                ignore_until_count=None,
            )
        )
        for pid, previous in regressed:
            row = rows[pid]
            payload = _payload(row) | {
                "status": "regressed",
                "previous_status": previous,
                "regressed_at": iso_ms(now),
            }
            out.notifications.append((row.project_id, PROBLEM_REGRESSED, payload))
    if out.muted:
        for chunk in _chunks(sorted(out.muted)):
            conn.execute(
                update(IngestError)
                .where(IngestError.id.in_(chunk), IngestError.status == "open")
                .values(status="ignored")
            )
    return out


def _keep_within_limit(
    conn: Connection, tallies: dict[str, _Tally], max_problems: int, out: Recorded
) -> set[str]:
    """Spills what is over the limit into overflow problems; returns the ids already stored."""
    known: set[str] = set()
    for chunk in _chunks(list(tallies)):
        known.update(conn.scalars(select(_p.id).where(_p.id.in_(chunk))))
    fresh: dict[str, list[str]] = {}
    for pid, t in tallies.items():
        if pid not in known:
            fresh.setdefault(t.first.project_id, []).append(pid)
    if fresh and conn.dialect.name == "postgresql":
        # Two writers adding problems to one project would each see the room left before
        # either commits, and both fill it: one at a time per project (until commit). Taken
        # in project order and before any problem row lock, so no two writers wait in a cycle.
        for project_id in sorted(fresh):
            conn.execute(select(func.pg_advisory_xact_lock(_LIMIT_LOCK, func.hashtext(project_id))))
        # What a writer committed while this one waited is known now, not new.
        unknown = [pid for pids in fresh.values() for pid in pids]
        for chunk in _chunks(unknown):
            known.update(conn.scalars(select(_p.id).where(_p.id.in_(chunk))))
        fresh = {
            project_id: [pid for pid in pids if pid not in known]
            for project_id, pids in fresh.items()
        }
    for project_id, pids in fresh.items():
        have = conn.scalar(select(func.count()).where(_p.project_id == project_id)) or 0
        room = max(0, max_problems - have)
        for pid in pids[room:]:
            t = tallies.pop(pid)
            first = t.first
            spill = overflow_of(project_id, first.fingerprint.code)
            into = tallies.get(spill.problem_id)
            for hit in t.hits:
                moved = replace(hit, fingerprint=spill)
                if into is None:
                    into = tallies[spill.problem_id] = _Tally(moved)
                into.add(moved)
                out.remapped[hit.error_id] = spill.problem_id
    if out.remapped:
        moved: dict[str, list[str]] = {}
        for error_id, pid in out.remapped.items():
            moved.setdefault(pid, []).append(error_id)
        for pid, error_ids in moved.items():
            for chunk in _chunks(error_ids):
                conn.execute(
                    update(IngestError).where(IngestError.id.in_(chunk)).values(problem_id=pid)
                )
    return known


def _insert_new(
    conn: Connection, tallies: dict[str, _Tally], now: datetime, known: set[str]
) -> set[str]:
    """Inserts the problems not ``known`` to exist; returns those this call created.

    Problems are never deleted, so a known one needs no insert: in steady state a batch
    inserts nothing here (a many-row INSERT is compiled anew each time, and cost more than
    the rest of the counting). Unknown ones still go through ON CONFLICT DO NOTHING, which
    tells which of two racing writers created it.
    """
    created: set[str] = set()
    values = []
    for pid, t in tallies.items():
        if pid in known:
            continue
        hit, sample = t.first, t.sample
        values.append(
            {
                "id": pid,
                "project_id": hit.project_id,
                "collection": hit.fingerprint.collection,
                "code": hit.fingerprint.code,
                "stage": hit.stage,
                "location": hit.fingerprint.location,
                "title": hit.fingerprint.title,
                "status": "open",
                "count": t.count,
                "first_seen": t.first_at,
                "last_seen": t.last_at,
                "first_error_id": t.first_id,
                "last_error_id": t.last_id,
                "sample_error_id": sample.error_id if sample else None,
                "sample_dlq_topic": sample.dlq[0] if sample and sample.dlq else None,
                "sample_dlq_partition": sample.dlq[1] if sample and sample.dlq else None,
                "sample_dlq_offset": sample.dlq[2] if sample and sample.dlq else None,
                "created_at": now,
                "updated_at": now,
            }
        )
    for chunk in _chunks(values):
        stmt = (
            _insert(conn, _problems)
            .values(chunk)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(_problems.c.id)
        )
        created.update(conn.scalars(stmt))
    return created


def _bump_params(pid: str, t: _Tally, now: datetime) -> dict:
    sample = t.sample
    dlq = sample.dlq if sample is not None else None
    return {
        "b_id": pid,
        "b_n": t.count,
        "b_first": t.first_at,
        "b_first_id": t.first_id,
        "b_last": t.last_at,
        "b_last_id": t.last_id,
        "b_s_id": sample.error_id if sample is not None else None,
        "b_s_topic": dlq[0] if dlq else None,
        "b_s_partition": dlq[1] if dlq else None,
        "b_s_offset": dlq[2] if dlq else None,
        "b_now": now,
    }


# One statement object per dialect, run with many parameter sets: compiled once and cached by
# SQLAlchemy, where a many-row VALUES statement is compiled again for every batch.
_UPSERTS: dict[str, tuple] = {}


def _upserts(conn: Connection) -> tuple:  # (hours upsert, keys upsert)
    found = _UPSERTS.get(conn.dialect.name)
    if found is None:
        hours = _insert(conn, _hours)
        hours = hours.on_conflict_do_update(
            index_elements=["problem_id", "bucket"],
            set_={"count": _hours.c.count + hours.excluded.count},
        )
        keys = _insert(conn, _keys)
        keys = keys.on_conflict_do_update(
            index_elements=["problem_id", "key_id"],
            set_={
                "count": _keys.c.count + keys.excluded.count,
                "last_seen": case(
                    (keys.excluded.last_seen > _keys.c.last_seen, keys.excluded.last_seen),
                    else_=_keys.c.last_seen,
                ),
            },
        )
        found = _UPSERTS[conn.dialect.name] = (hours, keys)
    return found


def _count_hours_and_keys(conn: Connection, tallies: dict[str, _Tally]) -> None:
    upsert_hours, upsert_keys = _upserts(conn)
    hours = [
        {"problem_id": pid, "bucket": bucket, "count": n}
        for pid, t in tallies.items()
        for bucket, n in sorted(t.hours.items())
    ]
    if hours:
        conn.execute(upsert_hours, hours)
    keys = [
        {"problem_id": pid, "key_id": key_id, "count": n, "last_seen": at}
        for pid, t in tallies.items()
        for key_id, (n, at) in sorted(t.keys.items())
    ]
    if keys:
        conn.execute(upsert_keys, keys)


def _payload(row) -> dict:  # noqa: ANN001 - a problems row
    """What problem.* webhooks carry about the problem."""
    return {
        "problem_id": row.id,
        "title": row.title,
        "code": row.code,
        "stage": row.stage,
        "collection": row.collection,
        "status": row.status,
        "count": row.count,
        "first_seen": iso_ms(_utc(row.first_seen)),
        "last_seen": iso_ms(_utc(row.last_seen)),
        "first_error_id": row.first_error_id,
        "last_error_id": row.last_error_id,
    }
