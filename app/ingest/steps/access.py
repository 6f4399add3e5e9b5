"""Step 4: the project must exist and be active; the writing key, when named, must be allowed to write.

The edge gateway and the HTTP API stamp every record they produce with the id of the key
that wrote it (header ``inbound.key_id``) after stripping any ``inbound.*`` header the
customer sent. A record without that header therefore came from a trusted internal
producer: it gets no key check and no autofill.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.contract.errors import Rejection
from app.contract.headers import KEY_ID, last_header

if TYPE_CHECKING:
    from app.ingest.records import KeyInfo, Lookup


def check_access(
    project_id: str, headers: tuple[tuple[str, bytes], ...], lookup: Lookup
) -> KeyInfo | None | Rejection:
    """The writing key (None for trusted internal producers), or the refusal."""
    project = lookup.project(project_id)
    if project is None or not project.is_active:
        return Rejection(
            "unknown_project",
            "validate",
            "The project does not exist or is disabled; check the project id you produce to.",
            {"project_id": project_id},
        )
    raw = last_header(headers, KEY_ID)
    if raw is None:
        return None
    try:
        key_id = raw.decode("utf-8")
    except UnicodeDecodeError:
        key_id = ""
    key = lookup.key(key_id) if key_id else None
    if key is None or key.project_id != project_id or not key.can_write:
        return Rejection(
            "key_not_permitted",
            "validate",
            "The key that sent this event may not write to this project (revoked, read-only "
            "or another project's); send it with a write or master key of this project.",
            {"key_id": key_id[:64]},
        )
    return key
