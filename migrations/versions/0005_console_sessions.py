"""Error console sessions: one row per signed-in person

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

The console (app/api/console) exchanges a master key or the admin token for a session id kept
in a cookie; the row is keyed by the id's sha256 and holds the CSRF token and the time of
the last request (the idle timeout). In the database, not in memory, so any API process
serves any session.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column(
            "project_id",
            sa.String(24),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column(
            "key_id", sa.String(32), sa.ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column("token_digest", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_console_sessions_project_id", "console_sessions", ["project_id"])
    op.create_index("ix_console_sessions_last_seen_at", "console_sessions", ["last_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_console_sessions_last_seen_at", table_name="console_sessions")
    op.drop_index("ix_console_sessions_project_id", table_name="console_sessions")
    op.drop_table("console_sessions")
