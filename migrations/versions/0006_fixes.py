"""Fixes: operations applied to rejected events' payloads and replayed (issue #14)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

One row per applied fix, or per preview kept as a saved fix (a preview that is not saved
stores nothing): its operations, its target (one error_id or a filter), who applied it and
when, and what came of it. Each replayed error's replay_outcome names the fix by its id; the
audit log has a `fix.applied` entry. A saved fix (`saved`) is kept on its problem and applied
again on request; each application is a new row naming it (`saved_fix_id`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JsonType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
COUNTS = (
    "matched",
    "examined",
    "accepted",
    "rejected",
    "failed",
    "replayed",
    "refused",
    "remaining",
)


def upgrade() -> None:
    op.create_table(
        "fixes",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "project_id",
            sa.String(24),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("operations", JsonType, nullable=False),
        sa.Column("target", JsonType, nullable=False),
        sa.Column("problem_id", sa.String(32), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(name, sa.Integer, nullable=False, server_default="0") for name in COUNTS),
        sa.Column("status", sa.String(16), nullable=False, server_default="applied"),
        sa.Column("saved", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column(
            "saved_fix_id",
            sa.String(32),
            sa.ForeignKey("fixes.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("unsaved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unsaved_by", sa.String(200), nullable=True),
    )
    op.create_index("ix_fixes_project_created", "fixes", ["project_id", "created_at"])
    op.create_index("ix_fixes_problem_id", "fixes", ["problem_id"])
    op.create_index("ix_fixes_saved_fix_id", "fixes", ["saved_fix_id"])


def downgrade() -> None:
    op.drop_index("ix_fixes_saved_fix_id", table_name="fixes")
    op.drop_index("ix_fixes_problem_id", table_name="fixes")
    op.drop_index("ix_fixes_project_created", table_name="fixes")
    op.drop_table("fixes")
