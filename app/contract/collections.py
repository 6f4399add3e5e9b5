"""The one collection rule (docs/design.md, "Collections"), applied by the Kafka edge, the
worker and the HTTP API alike.

A collection name is 1 to 64 characters of ``a-z A-Z 0-9 . _ -``, is not ``.`` or ``..``
(Kafka refuses those topic names) and does not end in ``-DLQ`` (reserved for dead-letter
topics). The whole name must match: ``fullmatch``, never ``match`` with ``$``, which would let a
trailing newline through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from app.contract.topics import DLQ_SUFFIX

MAX_COLLECTION_LENGTH = 64
_ALLOWED = re.compile(r"[a-zA-Z0-9._-]+")


@dataclass(frozen=True, slots=True)
class CollectionProblem:
    code: str  # invalid_collection_name | collection_name_too_long
    message: str
    detail: dict = field(default_factory=dict)


def collection_problem(name: str) -> CollectionProblem | None:
    """Why ``name`` cannot be a collection, or None when it can."""
    shown = name[:300]
    if _ALLOWED.fullmatch(name) is None:
        return CollectionProblem(
            "invalid_collection_name",
            "A collection name uses only letters, digits, '.', '_' and '-' and is not empty; "
            "rename the collection (topic).",
            {"collection": shown},
        )
    if len(name) > MAX_COLLECTION_LENGTH:
        return CollectionProblem(
            "collection_name_too_long",
            f"The collection name has {len(name)} characters; use at most {MAX_COLLECTION_LENGTH}.",
            {"collection": shown, "length": len(name)},
        )
    if name in (".", ".."):
        return CollectionProblem(
            "invalid_collection_name",
            "A collection cannot be named '.' or '..'; rename the collection (topic).",
            {"collection": name},
        )
    if name.endswith(DLQ_SUFFIX):
        return CollectionProblem(
            "invalid_collection_name",
            f"Names ending in {DLQ_SUFFIX!r} are reserved for dead-letter topics, which are "
            "read-only; produce to a collection without that suffix.",
            {"collection": shown},
        )
    return None


def is_valid_collection(name: str) -> bool:
    return collection_problem(name) is None
