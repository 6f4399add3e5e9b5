"""Webhook secrets sealed at rest: room for the Fernet token

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

A sealed secret (``fernet:`` and the token of a ``whsec_`` secret) is about 170 characters;
the columns were 100. Rows already there (plaintext) stay as they are and are still read.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = ("secret", "previous_secret")


def upgrade() -> None:
    with op.batch_alter_table("webhooks") as batch:
        for name in COLUMNS:
            batch.alter_column(
                name,
                existing_type=sa.String(100),
                type_=sa.String(255),
                existing_nullable=name != "secret",
            )


def downgrade() -> None:
    with op.batch_alter_table("webhooks") as batch:
        for name in COLUMNS:
            batch.alter_column(
                name,
                existing_type=sa.String(255),
                type_=sa.String(100),
                existing_nullable=name != "secret",
            )
