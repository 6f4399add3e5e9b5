"""Error rows as the API shows them, and the filtered, cursor-paginated listing of them.

Shared by the customer routes (one project) and the support-staff routes (any project).
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from app.api.audit import record_audit
from app.api.problems import ApiError
from app.api.time_params import parse_time
from app.api.timeframes import iso_or_none
from app.contract.topics import customer_dlq_name, parse_dlq
from app.store.models import IngestError

STATUSES = ("open", "replayed", "resolved", "ignored")


def _utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    # SQLite returns naive datetimes; every stored time is UTC.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _bytes_view(raw: bytes | None) -> dict[str, str | None]:
    if raw is None:
        return {"base64": None, "utf8": None}
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {"base64": base64.b64encode(raw).decode(), "utf8": text}


def customer_dlq(backend_topic: str | None) -> str | None:
    """The DLQ topic's name as the customer sees it (``<collection>-DLQ``)."""
    if not backend_topic:
        return None
    parsed = parse_dlq(backend_topic)
    return customer_dlq_name(parsed[1]) if parsed else backend_topic


def summary_view(row: IngestError) -> dict[str, Any]:
    dlq_customer = customer_dlq(row.dlq_topic)
    stored = len(row.payload) if row.payload is not None else 0
    return {
        "error_id": row.id,
        "project_id": row.project_id,
        "collection": row.collection,
        "code": row.code,
        "stage": row.stage,
        "message": row.message,
        "detail": row.detail or {},
        "status": row.status,
        "problem_id": row.problem_id,
        "created_at": iso_or_none(row.created_at),
        "updated_at": iso_or_none(row.updated_at),
        "record_timestamp": iso_or_none(row.record_timestamp),
        "key_id": row.key_id,
        "payload_size": row.payload_size,
        "payload_sha256": row.payload_sha256,
        "payload_truncated": stored < row.payload_size,
        "source": {
            "topic": row.collection if row.source_topic else None,
            "backend_topic": row.source_topic,
            "partition": row.source_partition,
            "offset": row.source_offset,
        },
        "dlq": {
            "topic": dlq_customer,
            "backend_topic": row.dlq_topic,
            "partition": row.dlq_partition,
            "offset": row.dlq_offset,
        },
        "replay_count": row.replay_count,
        "replay_outcome": row.replay_outcome,
    }


def decode_headers(stored: list | None) -> list[tuple[str, bytes]]:
    out = []
    for item in stored or []:
        try:
            name, value = item
            out.append((str(name), base64.b64decode(value) if value is not None else b""))
        except (ValueError, TypeError, binascii.Error):
            continue
    return out


def detail_view(row: IngestError) -> dict[str, Any]:
    view = summary_view(row)
    view["payload"] = _bytes_view(row.payload)
    view["record_key"] = _bytes_view(row.record_key)
    view["headers"] = [
        {
            "name": name,
            "value_base64": base64.b64encode(value).decode(),
            "value_utf8": _bytes_view(value)["utf8"],
        }
        for name, value in decode_headers(row.headers)
    ]
    return view


def audit_payload_read(session: Session, actor: str, row: IngestError) -> None:
    """Every returned payload leaves a trace: who read which error's payload, when."""
    record_audit(session, actor, "error.payload.read", project_id=row.project_id, target=row.id)


def refuse_nul(**params: str | None) -> None:
    """400 for a text parameter holding NUL: PostgreSQL cannot even compare such a string (it
    would be a 500), and no stored name or id contains one."""
    for name, value in params.items():
        if value and "\x00" in value:
            raise ApiError(400, "InvalidParameterError", f"{name} may not contain NUL")


def find_error(session: Session, error_id: str, project_id: str | None) -> IngestError:
    """The error row, of ``project_id`` when given (None: support staff, any project)."""
    row = None if "\x00" in error_id else session.get(IngestError, error_id)
    if row is None or (project_id is not None and row.project_id != project_id):
        where = " in this project" if project_id is not None else ""
        raise ApiError(404, "ResourceNotFoundError", f"No such error{where}.")
    return row


def error_filters(
    *,
    project_id: str | None,
    collection: str | None = None,
    code: str | None = None,
    status: str | None = None,
    stage: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    problem_id: str | None = None,
) -> list[ColumnElement]:
    refuse_nul(
        project_id=project_id, collection=collection, code=code, stage=stage, problem_id=problem_id
    )
    where: list[ColumnElement] = []
    if project_id is not None:
        where.append(IngestError.project_id == project_id)
    if collection:
        where.append(IngestError.collection == collection)
    if code:
        where.append(IngestError.code.in_(code.split(",")))
    if status:
        statuses = status.split(",")
        if set(statuses) - set(STATUSES):
            raise ApiError(400, "InvalidParameterError", f"status is one of {', '.join(STATUSES)}")
        where.append(IngestError.status.in_(statuses))
    if stage:
        where.append(IngestError.stage.in_(stage.split(",")))
    if problem_id:
        where.append(IngestError.problem_id == problem_id)
    if since:
        where.append(IngestError.created_at >= since)
    if until:
        where.append(IngestError.created_at < until)
    return where


def _encode_cursor(row: IngestError) -> str:
    raw = orjson.dumps([_iso_full(row.created_at), row.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _iso_full(at: datetime) -> str:
    at = _utc(at)
    assert at is not None
    return at.isoformat()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, error_id = orjson.loads(raw)
        return datetime.fromisoformat(at).astimezone(UTC), str(error_id)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise ApiError(400, "InvalidParameterError", "cursor is not one this API gave") from exc


def list_errors(
    session: Session, where: list[ColumnElement], *, cursor: str | None, limit: int
) -> dict[str, Any]:
    """Newest first; keyset pagination on (created_at, error_id) so pages never shift."""
    conditions = list(where)
    if cursor:
        at, error_id = _decode_cursor(cursor)
        conditions.append(
            or_(
                IngestError.created_at < at,
                and_(IngestError.created_at == at, IngestError.id < error_id),
            )
        )
    rows = (
        session.execute(
            select(IngestError)
            .where(*conditions)
            .order_by(IngestError.created_at.desc(), IngestError.id.desc())
            .limit(limit + 1)
        )
        .scalars()
        .all()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "errors": [summary_view(r) for r in rows],
        "next_cursor": _encode_cursor(rows[-1]) if more and rows else None,
    }


def search_errors(
    session: Session,
    *,
    project_id: str | None,
    collection: str | None,
    code: str | None,
    status: str | None,
    stage: str | None,
    since: str | None,
    until: str | None,
    cursor: str | None,
    limit: int,
    problem_id: str | None = None,
) -> dict[str, Any]:
    """One page of errors matching the filters as the list routes receive them."""
    where = error_filters(
        project_id=project_id,
        collection=collection,
        code=code,
        status=status,
        stage=stage,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        problem_id=problem_id,
    )
    return list_errors(session, where, cursor=cursor, limit=limit)
