"""Collection schemas and deleted events (issue #17)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

``collection_properties``: one row per (project, collection, property path, JSON type) seen in
stored events, which the worker adds to in each batch's transaction and the inspection routes
(GET /3.0/projects/{id}/events[/{collection}]) read. The events stored before this revision
are walked once here, in chunks of ids, with the worker's own rule and caps
(app/store/collection_schema.py), so collections written before it have their schemas too.

``ingest_counters.deleted``: accepted events of the hour deleted since through
DELETE /3.0/projects/{id}/events/{collection}, shown in the reconciliation apart from
rejections (received = accepted + rejected + dropped is untouched).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.store.collection_schema import batch_pairs, record_schema

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

CHUNK = 5000


def upgrade() -> None:
    op.create_table(
        "collection_properties",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("collection", sa.String(300), primary_key=True),
        sa.Column("path", sa.String(512), primary_key=True),
        sa.Column("type", sa.String(16), primary_key=True),
    )
    with op.batch_alter_table("ingest_counters") as batch:
        batch.add_column(sa.Column("deleted", sa.BigInteger(), nullable=False, server_default="0"))
    _backfill(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("ingest_counters") as batch:
        batch.drop_column("deleted")
    op.drop_table("collection_properties")


# The events table as this revision knows it; later revisions may change the models.
_events = sa.Table(
    "events",
    sa.MetaData(),
    sa.Column("id", sa.BigInteger(), primary_key=True),
    sa.Column("project_id", sa.String(24)),
    sa.Column("collection", sa.String(64)),
    sa.Column("body", sa.JSON()),
)


def _backfill(conn: sa.Connection) -> None:
    after = None
    while True:
        query = sa.select(_events.c.id, _events.c.project_id, _events.c.collection, _events.c.body)
        if after is not None:
            query = query.where(_events.c.id > after)
        rows = conn.execute(query.order_by(_events.c.id).limit(CHUNK)).all()
        if not rows:
            return
        record_schema(conn, batch_pairs((r.project_id, r.collection, r.body) for r in rows))
        after = rows[-1].id
