"""SQLAlchemy 2 models. Alembic migrations in migrations/ are the schema's source of truth."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# JSONB on PostgreSQL (indexable operators), JSON text elsewhere.
JsonType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Per-project overrides, e.g. {"dlq_pause_ratio": 0.5}.
    options: Mapped[dict] = mapped_column(JsonType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # master | write | read | access
    name: Mapped[str | None] = mapped_column(String(200))
    # sha256 of the secret: keys are 256-bit random, so a plain digest cannot be brute-forced.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(12))
    permitted: Mapped[list] = mapped_column(JsonType, default=list)
    options: Mapped[dict] = mapped_column(JsonType, default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_project_collection_ts", "project_id", "collection", "keen_timestamp"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(24))
    collection: Mapped[str] = mapped_column(String(64))
    keen_id: Mapped[str] = mapped_column(String(40), unique=True)
    keen_timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    body: Mapped[dict] = mapped_column(JsonType)


class IngestError(Base):
    __tablename__ = "ingest_errors"
    __table_args__ = (
        UniqueConstraint(
            "source_topic", "source_partition", "source_offset", name="uq_error_source"
        ),
        Index("ix_errors_project_created", "project_id", "created_at"),
        Index("ix_errors_problem_created", "problem_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the error_id
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    collection: Mapped[str] = mapped_column(String(300))
    code: Mapped[str] = mapped_column(String(64), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict] = mapped_column(JsonType, default=dict)
    source_topic: Mapped[str | None] = mapped_column(String(300))
    source_partition: Mapped[int | None] = mapped_column(Integer)
    source_offset: Mapped[int | None] = mapped_column(BigInteger)
    record_timestamp: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)  # up to the configured cap
    payload_size: Mapped[int] = mapped_column(Integer)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    record_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    headers: Mapped[list] = mapped_column(JsonType, default=list)  # [[name, base64 value], ...]
    key_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(
        String(16), default="open"
    )  # open|replayed|resolved|ignored
    replay_count: Mapped[int] = mapped_column(Integer, default=0)
    replay_outcome: Mapped[dict | None] = mapped_column(JsonType)
    dlq_topic: Mapped[str | None] = mapped_column(String(300))
    dlq_partition: Mapped[int | None] = mapped_column(Integer)
    dlq_offset: Mapped[int | None] = mapped_column(BigInteger)
    # app/contract/fingerprint.py; None only between migration 0004's column and its backfill.
    problem_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Problem(Base):
    """One kind of failure in one collection: the error rows grouped by fingerprint, with
    counts the worker keeps in the same transaction as the rows (docs/design.md, "Problems")."""

    __tablename__ = "problems"
    __table_args__ = (
        Index("ix_problems_project_last_seen", "project_id", "last_seen"),
        Index("ix_problems_project_count", "project_id", "count"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the problem_id
    project_id: Mapped[str] = mapped_column(String(64))
    collection: Mapped[str] = mapped_column(String(300))
    code: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(16))
    location: Mapped[str] = mapped_column(Text, default="")
    title: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(
        String(16), default="open"
    )  # open|resolved|regressed|ignored
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    first_error_id: Mapped[str] = mapped_column(String(32))
    last_error_id: Mapped[str] = mapped_column(String(32))
    # The latest error of the problem that has a dead letter: where to read one in the DLQ.
    sample_error_id: Mapped[str | None] = mapped_column(String(32))
    sample_dlq_topic: Mapped[str | None] = mapped_column(String(300))
    sample_dlq_partition: Mapped[int | None] = mapped_column(Integer)
    sample_dlq_offset: Mapped[int | None] = mapped_column(BigInteger)
    status_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status_changed_by: Mapped[str | None] = mapped_column(String(200))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    regressed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # An ignore ends at this time, or once count reaches this total; both None: for good.
    ignore_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ignore_until_count: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProblemHour(Base):
    """Errors of a problem per hour (the sparkline)."""

    __tablename__ = "problem_hours"

    problem_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class ProblemKey(Base):
    """Which keys sent a problem's errors, and how many each."""

    __tablename__ = "problem_keys"
    # The problems list filters by key (key_id IN ...): without it that scans the table.
    __table_args__ = (Index("ix_problem_keys_key", "key_id"),)

    problem_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Notification(Base):
    """Outbox of things customers are told about (ingest.failed, dlq.paused, ...)."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list] = mapped_column(JsonType, default=list)
    collections: Mapped[list | None] = mapped_column(JsonType)
    # Sealed with Fernet ("fernet:..."; app.store.secret_box); older rows in clear are still read.
    secret: Mapped[str] = mapped_column(String(255))
    # After a rotation the old secret also signs until it expires, so receivers can roll over.
    previous_secret: Mapped[str | None] = mapped_column(String(255))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    # Start of the current run of failed attempts: auto-disable needs failure sustained in time.
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the webhook-id header
    webhook_id: Mapped[str] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JsonType)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|delivered|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


class IngestCounter(Base):
    """Per collection and hour: received = accepted + rejected + dropped (reconciliation)."""

    __tablename__ = "ingest_counters"

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    collection: Mapped[str] = mapped_column(String(300), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    accepted: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    dropped: Mapped[int] = mapped_column(BigInteger, default=0)
    # {"dlq_paused": 12, ...}: why events were dropped by policy.
    dropped_reasons: Mapped[dict] = mapped_column(JsonType, default=dict)
    # Accepted events of this hour deleted since (DELETE .../events/{collection}): apart from
    # received = accepted + rejected + dropped, which stays true of what came in.
    deleted: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class CollectionProperty(Base):
    """One property path seen in a collection's stored events, with one JSON type it had
    (app/store/collection_schema.py): the worker adds new pairs in the batch's transaction,
    the inspection routes read them. A path seen with two types has two rows."""

    __tablename__ = "collection_properties"

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    collection: Mapped[str] = mapped_column(String(300), primary_key=True)
    path: Mapped[str] = mapped_column(String(512), primary_key=True)
    type: Mapped[str] = mapped_column(String(16), primary_key=True)


class StreamPause(Base):
    """A partition whose DLQ the circuit breaker paused; resumed by API or CLI."""

    __tablename__ = "stream_pauses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    collection: Mapped[str] = mapped_column(String(300))
    topic: Mapped[str] = mapped_column(String(300))
    partition: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    paused_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resumed_by: Mapped[str | None] = mapped_column(String(200))


class AuditEntry(Base):
    """Who read which payload, and other support-staff actions."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[str | None] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(300))


class ConsoleSession(Base):
    """A signed-in person of the error console (app/api/console/sessions.py).

    ``id`` is the sha256 of the cookie's token, so the table alone signs no one in. A
    customer's session names the master key it was opened with (revoking the key ends it);
    a support-staff session keeps the digest of the admin token it was opened with
    (changing the token ends it).
    """

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # customer | staff
    project_id: Mapped[str | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    token_digest: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(200))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Fix(Base):
    """A fix (app/api/fixes): operations replayed onto rejected events' payloads.

    A row is an applied fix (``status`` "applied") or a preview kept as a saved fix
    (``status`` "preview", nothing replayed); a preview that is not saved stores nothing.
    ``target`` is what was asked for ({"error_id": ...} or {"filter": {...}}); the counts are
    of the errors it examined. Each replayed error's ``replay_outcome`` names the fix
    (``fix_id``). ``saved``: kept on its problem, to be applied again to later errors; each
    such application is a new applied row naming it (``saved_fix_id``). Un-saving keeps the
    row (``unsaved_at``/``unsaved_by``).
    """

    __tablename__ = "fixes"
    __table_args__ = (Index("ix_fixes_project_created", "project_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the fix_id
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    operations: Mapped[list] = mapped_column(JsonType)
    target: Mapped[dict] = mapped_column(JsonType)
    problem_id: Mapped[str | None] = mapped_column(String(32), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    matched: Mapped[int] = mapped_column(Integer, default=0)
    examined: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)  # would be accepted
    rejected: Mapped[int] = mapped_column(Integer, default=0)  # would still be rejected
    failed: Mapped[int] = mapped_column(Integer, default=0)  # could not be patched
    replayed: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)  # the replay refused (cap)
    remaining: Mapped[int] = mapped_column(Integer, default=0)  # left by the limit or rate
    status: Mapped[str] = mapped_column(String(16), default="applied")  # applied | preview
    saved: Mapped[bool] = mapped_column(Boolean, default=False)
    saved_fix_id: Mapped[str | None] = mapped_column(
        ForeignKey("fixes.id", ondelete="SET NULL"), index=True
    )
    unsaved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    unsaved_by: Mapped[str | None] = mapped_column(String(200))
