"""PostgreSQL: a GIN index on events.body for property filters

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

Query filters on event properties are written as jsonb containment (`body @> ...`), which a
jsonb_path_ops GIN index answers without reading every event. SQLite has no such index type;
there the migration does nothing. The index is not in the models (it is PostgreSQL-only), so
the models-match-migrations test leaves it out.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEX = "ix_events_body_gin"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX {INDEX} ON events USING gin (body jsonb_path_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX {INDEX}")
