"""Problems: error rows grouped by fingerprint, with counts per hour and per key

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

Adds ``problems``, ``problem_hours``, ``problem_keys`` and ``ingest_errors.problem_id``, then
assigns every error row written before this revision to its problem with the same rule the
worker uses (app/contract/fingerprint.py), in chunks, so a large error table is migrated
without holding it in memory. A backfilled problem is ``open`` when one of its errors is
open, ``ignored`` when all are ignored, ``resolved`` otherwise.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from app.contract.fingerprint import problem_of

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CHUNK = 5000


def upgrade() -> None:
    op.create_table(
        "problems",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("collection", sa.String(300), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_error_id", sa.String(32), nullable=False),
        sa.Column("last_error_id", sa.String(32), nullable=False),
        sa.Column("sample_error_id", sa.String(32)),
        sa.Column("sample_dlq_topic", sa.String(300)),
        sa.Column("sample_dlq_partition", sa.Integer()),
        sa.Column("sample_dlq_offset", sa.BigInteger()),
        sa.Column("status_changed_at", sa.DateTime(timezone=True)),
        sa.Column("status_changed_by", sa.String(200)),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("regressed_at", sa.DateTime(timezone=True)),
        sa.Column("ignore_until", sa.DateTime(timezone=True)),
        sa.Column("ignore_until_count", sa.BigInteger()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_problems_project_last_seen", "problems", ["project_id", "last_seen"])
    op.create_index("ix_problems_project_count", "problems", ["project_id", "count"])
    op.create_table(
        "problem_hours",
        sa.Column("problem_id", sa.String(32), primary_key=True),
        sa.Column("bucket", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "problem_keys",
        sa.Column("problem_id", sa.String(32), primary_key=True),
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_problem_keys_key", "problem_keys", ["key_id"])
    with op.batch_alter_table("ingest_errors") as batch:
        batch.add_column(sa.Column("problem_id", sa.String(32)))
    op.create_index("ix_errors_problem_created", "ingest_errors", ["problem_id", "created_at"])
    _backfill(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_errors_problem_created", table_name="ingest_errors")
    with op.batch_alter_table("ingest_errors") as batch:
        batch.drop_column("problem_id")
    op.drop_index("ix_problem_keys_key", table_name="problem_keys")
    op.drop_table("problem_keys")
    op.drop_table("problem_hours")
    op.drop_index("ix_problems_project_count", table_name="problems")
    op.drop_index("ix_problems_project_last_seen", table_name="problems")
    op.drop_table("problems")


# The tables as this revision knows them; later revisions may change the models.
_meta = sa.MetaData()
_errors = sa.Table(
    "ingest_errors",
    _meta,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("project_id", sa.String(64)),
    sa.Column("collection", sa.String(300)),
    sa.Column("code", sa.String(64)),
    sa.Column("stage", sa.String(16)),
    sa.Column("detail", sa.JSON()),
    sa.Column("key_id", sa.String(32)),
    sa.Column("status", sa.String(16)),
    sa.Column("dlq_topic", sa.String(300)),
    sa.Column("dlq_partition", sa.Integer()),
    sa.Column("dlq_offset", sa.BigInteger()),
    sa.Column("problem_id", sa.String(32)),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)
_problems = sa.Table(
    "problems",
    _meta,
    *(
        sa.Column(name, kind)
        for name, kind in (
            ("id", sa.String(32)),
            ("project_id", sa.String(64)),
            ("collection", sa.String(300)),
            ("code", sa.String(64)),
            ("stage", sa.String(16)),
            ("location", sa.Text()),
            ("title", sa.Text()),
            ("status", sa.String(16)),
            ("count", sa.BigInteger()),
            ("first_seen", sa.DateTime(timezone=True)),
            ("last_seen", sa.DateTime(timezone=True)),
            ("first_error_id", sa.String(32)),
            ("last_error_id", sa.String(32)),
            ("sample_error_id", sa.String(32)),
            ("sample_dlq_topic", sa.String(300)),
            ("sample_dlq_partition", sa.Integer()),
            ("sample_dlq_offset", sa.BigInteger()),
            ("resolved_at", sa.DateTime(timezone=True)),
            ("created_at", sa.DateTime(timezone=True)),
            ("updated_at", sa.DateTime(timezone=True)),
        )
    ),
)
_hours = sa.Table(
    "problem_hours",
    _meta,
    sa.Column("problem_id", sa.String(32)),
    sa.Column("bucket", sa.DateTime(timezone=True)),
    sa.Column("count", sa.BigInteger()),
)
_keys = sa.Table(
    "problem_keys",
    _meta,
    sa.Column("problem_id", sa.String(32)),
    sa.Column("key_id", sa.String(32)),
    sa.Column("count", sa.BigInteger()),
    sa.Column("last_seen", sa.DateTime(timezone=True)),
)


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


class _Tally:
    # Not a dataclass: Alembic loads this file outside sys.modules, which dataclasses need.
    def __init__(self, row: dict) -> None:
        self.row = row
        self.count = 0
        self.first: tuple[datetime, str] | None = None
        self.last: tuple[datetime, str] | None = None
        self.sample: tuple[datetime, str, str, int, int] | None = None
        self.statuses: Counter = Counter()
        self.hours: Counter = Counter()
        self.keys: dict[str, list] = {}


def _backfill(conn: sa.Connection) -> None:
    tallies: dict[str, _Tally] = {}
    after = ""
    while True:
        rows = conn.execute(
            sa.select(_errors).where(_errors.c.id > after).order_by(_errors.c.id).limit(CHUNK)
        ).all()
        if not rows:
            break
        after = rows[-1].id
        assigned = []
        for r in rows:
            # A detail is a JSON object as the worker writes it; anything else stored there
            # (JSON null, a list) must not stop the upgrade: it is a detail without a path.
            detail = r.detail if isinstance(r.detail, dict) else {}
            key = problem_of(r.project_id, r.collection, r.code, detail)
            assigned.append({"error_id": r.id, "pid": key.problem_id})
            tally = tallies.get(key.problem_id)
            if tally is None:
                tally = tallies[key.problem_id] = _Tally(
                    {
                        "id": key.problem_id,
                        "project_id": r.project_id,
                        "collection": key.collection,
                        "code": r.code,
                        "stage": r.stage,
                        "location": key.location,
                        "title": key.title,
                    }
                )
            at = _utc(r.created_at)
            tally.count += 1
            if tally.first is None or (at, r.id) < tally.first:
                tally.first = (at, r.id)
            if tally.last is None or (at, r.id) > tally.last:
                tally.last = (at, r.id)
            if r.dlq_topic and (tally.sample is None or at > tally.sample[0]):
                tally.sample = (at, r.id, r.dlq_topic, r.dlq_partition, r.dlq_offset)
            tally.statuses[r.status] += 1
            tally.hours[at.replace(minute=0, second=0, microsecond=0)] += 1
            if r.key_id:
                seen = tally.keys.setdefault(r.key_id, [0, at])
                seen[0] += 1
                seen[1] = max(seen[1], at)
        conn.execute(
            _errors.update()
            .where(_errors.c.id == sa.bindparam("error_id"))
            .values(problem_id=sa.bindparam("pid")),
            assigned,
        )
    now = datetime.now(UTC)
    problems, hours, keys = [], [], []
    for pid, t in tallies.items():
        assert t.first is not None and t.last is not None
        if t.statuses.get("open"):
            status = "open"
        elif t.statuses.get("ignored") == t.count:
            status = "ignored"
        else:
            status = "resolved"
        sample = t.sample or (None, None, None, None, None)
        problems.append(
            {
                **t.row,
                "status": status,
                "count": t.count,
                "first_seen": t.first[0],
                "last_seen": t.last[0],
                "first_error_id": t.first[1],
                "last_error_id": t.last[1],
                "sample_error_id": sample[1],
                "sample_dlq_topic": sample[2],
                "sample_dlq_partition": sample[3],
                "sample_dlq_offset": sample[4],
                "resolved_at": now if status == "resolved" else None,
                "created_at": now,
                "updated_at": now,
            }
        )
        hours += [{"problem_id": pid, "bucket": b, "count": n} for b, n in t.hours.items()]
        keys += [
            {"problem_id": pid, "key_id": k, "count": n, "last_seen": at}
            for k, (n, at) in t.keys.items()
        ]
    for table, values in ((_problems, problems), (_hours, hours), (_keys, keys)):
        for i in range(0, len(values), CHUNK):
            conn.execute(table.insert(), values[i : i + CHUNK])
