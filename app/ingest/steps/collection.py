"""Step 3: the project and collection named by the backend topic (spec §2)."""

from __future__ import annotations

import re
from functools import lru_cache

from app.ingest.rejection import Rejection
from app.kafka.topics import DLQ_SUFFIX, parse_inbound

MAX_COLLECTION_LENGTH = 64
_ALLOWED = re.compile(r"[a-zA-Z0-9._-]*")


@lru_cache(maxsize=4096)  # a batch holds few topics; the answer never changes for a name
def collection_of(topic: str) -> tuple[str, str] | Rejection:
    """(project_id, collection) from ``in.<project>.<collection>``, or why it is refused."""
    parsed = parse_inbound(topic)
    if parsed is None:
        return Rejection(
            "unknown_project",
            "validate",
            "The topic does not belong to a project; produce to a topic of your own project.",
            {"topic": topic[:300]},
        )
    project_id, collection = parsed
    if not collection or _ALLOWED.fullmatch(collection) is None:
        return Rejection(
            "invalid_collection_name",
            "validate",
            "Collection names may use only letters, digits, '.', '_' and '-', and may not be "
            "empty; rename the collection (topic).",
            {"collection": collection[:300]},
        )
    if len(collection) > MAX_COLLECTION_LENGTH:
        return Rejection(
            "collection_name_too_long",
            "validate",
            f"The collection name has {len(collection)} characters; use at most "
            f"{MAX_COLLECTION_LENGTH}.",
            {"collection": collection[:300], "length": len(collection)},
        )
    if collection.endswith(DLQ_SUFFIX):
        return Rejection(
            "invalid_collection_name",
            "validate",
            f"Names ending in {DLQ_SUFFIX!r} are reserved for dead-letter topics, which are "
            "read-only; produce to a collection without that suffix.",
            {"collection": collection},
        )
    return project_id, collection
