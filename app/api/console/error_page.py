"""What one error's page shows: the payload (pretty JSON with the offending property marked,
raw text, or a hex view), the truncation notice, the record key and headers, the DLQ
coordinates with a kcat command to read that record, and the replay history.

Opening the page is reading the payload: it writes the same audit entry as the JSON API's
GET of the error (``error_views.audit_payload_read``).
"""

from __future__ import annotations

import shlex
from typing import Any

from sqlalchemy.orm import Session

from app.api.console.payload_view import (
    HEX_SHOWN,
    bytes_text,
    hex_lines,
    pretty_json,
    text_with_mark,
)
from app.api.console.problem_pages import problem_url
from app.api.console.sessions import ConsoleUser
from app.api.error_views import audit_payload_read, decode_headers, detail_view, find_error
from app.api.problems import ApiError
from app.settings import Settings


def kcat_command(settings: Settings, project_id: str, dlq: dict[str, Any]) -> str | None:
    """The kcat line that reads this one dead letter through the Kafka edge; the key stays
    ``$KEY`` (never the real one), names are shell-quoted (a collection name is the sender's)."""
    if dlq.get("topic") is None or dlq.get("partition") is None or dlq.get("offset") is None:
        return None
    host = settings.gateway_advertised_host or settings.gateway_host
    return (
        f"kcat -C -b {shlex.quote(f'{host}:{settings.gateway_port}')} "
        "-X security.protocol=SASL_SSL -X sasl.mechanisms=PLAIN "
        f"-X sasl.username={shlex.quote(project_id)} -X sasl.password=$KEY "
        f"-t {shlex.quote(dlq['topic'])} -p {int(dlq['partition'])} -o {int(dlq['offset'])} -c 1"
    )


def _bytes_block(raw: bytes | None) -> dict[str, Any]:
    """Bytes shown as text when they are UTF-8, as hex lines otherwise."""
    if raw is None:
        return {"absent": True}
    text = bytes_text(raw)
    if text is not None:
        return {"absent": False, "text": text, "size": len(raw)}
    return {
        "absent": False,
        "text": None,
        "hex": hex_lines(raw),
        "size": len(raw),
        "shown": min(len(raw), HEX_SHOWN),
    }


def _payload(raw: bytes | None, detail: dict[str, Any]) -> dict[str, Any]:
    path = detail.get("path") if isinstance(detail.get("path"), str) else None
    if raw is None:
        return {"kind": "none", "path": path}
    text = bytes_text(raw)
    if text is None:
        return {
            "kind": "hex",
            "hex": hex_lines(raw),
            "shown": min(len(raw), HEX_SHOWN),
            "size": len(raw),
            "path": path,
        }
    pretty = pretty_json(text, path)
    if pretty is not None:
        return {
            "kind": "json",
            "html": pretty.html,
            "highlighted": pretty.highlighted,
            "path": path,
        }
    return {"kind": "text", "html": text_with_mark(text, detail.get("char_offset")), "path": path}


def error_page(
    db: Session, settings: Settings, user: ConsoleUser, project_id: str, error_id: str
) -> dict[str, Any]:
    """The page's context; the audit entry is committed with it."""
    with db.begin():
        row = find_error(db, error_id, user.scope(project_id))
        if row.project_id != project_id:  # staff: the URL names the error's own project
            raise ApiError(404, "ResourceNotFoundError", "No such error in this project.")
        audit_payload_read(db, user.actor, row)
        view = detail_view(row)
        payload = _payload(row.payload, view["detail"] if isinstance(view["detail"], dict) else {})
        key = _bytes_block(row.record_key)
        headers = [
            {"name": name, **_bytes_block(value)} for name, value in decode_headers(row.headers)
        ]
        stored = len(row.payload) if row.payload is not None else 0
    return {
        "title": f"Error {view['error_id']}",
        "project_id": project_id,
        "error": view,
        "payload": payload,
        "record_key": key,
        "headers": headers,
        "stored": stored,
        "kcat": kcat_command(settings, view["project_id"], view["dlq"]),
        "problem_url": problem_url(project_id, view["problem_id"]) if view["problem_id"] else None,
    }
