"""Collection schemas: the property paths of a collection's stored events and their JSON types,
kept incrementally (Keen's inspection endpoints, GET /3.0/projects/{id}/events[/{collection}]).

The worker computes the set of (path, type) pairs of a batch in Python and adds the new ones
in the batch's transaction, one statement per collection (``record_schema``); the API reads
the table (``read_schemas``) and never scans events. Paths are Keen's: nested objects
flatten to dotted names (``item.price``), an array is one ``list`` property (its elements are
not walked), an empty object adds nothing.

Bounded, so one hostile event cannot bloat the table: an event contributes at most
``MAX_PROPERTIES_PER_COLLECTION`` leaves (the walk stops there), a collection holds at most
that many pairs (the insert takes only what fits; two workers adding to one collection at the
same moment can each fill the last places, so it may pass the cap by one batch's new pairs),
and a path longer than ``MAX_PATH_CHARS`` is not recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import Connection, delete, select, text
from sqlalchemy.orm import Session

from app.store.models import CollectionProperty

# The most (path, type) pairs one collection's schema holds, and the most leaves one event
# adds. A documented constant, not a setting (yet): Keen's own limit was 1,000 properties.
MAX_PROPERTIES_PER_COLLECTION = 1000
# Longer dotted paths are left out (a name may be 256 characters, nested 32 deep).
MAX_PATH_CHARS = 512
# Keen's type names. When a path was seen with several types, the first of this order is
# answered ("null" only when it was never anything else).
TYPE_ORDER = ("string", "num", "bool", "datetime", "list", "null")
# The server's time properties are ISO-8601 strings Keen reported as datetime.
_DATETIME_PATHS = frozenset({"keen.timestamp", "keen.created_at"})

Pair = tuple[str, str]
Key = tuple[str, str]  # (project_id, collection)
_TYPES = {str: "string", bool: "bool", int: "num", float: "num", list: "list", type(None): "null"}


def _walk(node: dict, prefix: str, out: set[Pair], budget: int) -> int:
    """Add the leaves under ``node``; returns the budget left (0: stop)."""
    types = _TYPES
    for name, value in node.items():
        kind = type(value)
        if kind is dict:
            if value:
                path = prefix + name
                if len(path) < MAX_PATH_CHARS:
                    budget = _walk(value, path + ".", out, budget)
                    if budget <= 0:
                        return 0
            continue
        label = types.get(kind)
        if label is None:
            continue
        path = prefix + name
        if len(path) > MAX_PATH_CHARS:
            continue
        out.add((path, label))
        budget -= 1
        if budget <= 0:
            return 0
    return budget


def _name_datetimes(pairs: set[Pair]) -> None:
    # The server's time properties are always strings: renamed once per set, not per leaf.
    for path in _DATETIME_PATHS:
        if (path, "string") in pairs:
            pairs.discard((path, "string"))
            pairs.add((path, "datetime"))


def event_pairs(body: dict[str, Any]) -> set[Pair]:
    """The (path, type) pairs of one event: at most the cap's leaves."""
    pairs: set[Pair] = set()
    _walk(body, "", pairs, MAX_PROPERTIES_PER_COLLECTION)
    _name_datetimes(pairs)
    return pairs


def batch_pairs(events: Iterable[tuple[str, str, dict[str, Any]]]) -> dict[Key, set[Pair]]:
    """(project_id, collection, body) of a batch's stored events -> each collection's pairs;
    each event adds at most the cap's leaves."""
    out: dict[Key, set[Pair]] = {}
    for project_id, collection, body in events:
        key = (project_id, collection)
        pairs = out.get(key)
        if pairs is None:
            pairs = out[key] = set()
        _walk(body, "", pairs, MAX_PROPERTIES_PER_COLLECTION)
    for pairs in out.values():
        _name_datetimes(pairs)
    return out


# Only the pairs not yet stored, in a fixed order (two transactions adding the same new pairs
# lock them in the same order), as many as still fit under the cap. :rows is a JSON array of
# [path, type]; the first version is PostgreSQL's, the second SQLite's.
_INSERT_PG = text(
    """
INSERT INTO collection_properties (project_id, collection, path, type)
SELECT :project_id, :collection, c.path, c.type FROM (
    SELECT v.path, v.type, row_number() OVER (ORDER BY v.path, v.type) AS n
    FROM (SELECT e ->> 0 AS path, e ->> 1 AS type
          FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS e) AS v
    WHERE NOT EXISTS (
        SELECT 1 FROM collection_properties p
        WHERE p.project_id = :project_id AND p.collection = :collection
          AND p.path = v.path AND p.type = v.type)
) AS c
WHERE c.n <= :cap - (
    SELECT count(*) FROM collection_properties p
    WHERE p.project_id = :project_id AND p.collection = :collection)
ORDER BY c.n
ON CONFLICT DO NOTHING
"""
)
_INSERT_SQLITE = text(
    """
INSERT INTO collection_properties (project_id, collection, path, type)
SELECT :project_id, :collection, c.path, c.type FROM (
    SELECT v.path, v.type, row_number() OVER (ORDER BY v.path, v.type) AS n
    FROM (SELECT json_extract(value, '$[0]') AS path, json_extract(value, '$[1]') AS type
          FROM json_each(:rows)) AS v
    WHERE NOT EXISTS (
        SELECT 1 FROM collection_properties p
        WHERE p.project_id = :project_id AND p.collection = :collection
          AND p.path = v.path AND p.type = v.type)
) AS c
WHERE c.n <= :cap - (
    SELECT count(*) FROM collection_properties p
    WHERE p.project_id = :project_id AND p.collection = :collection)
ORDER BY c.n
ON CONFLICT DO NOTHING
"""
)


def record_schema(
    conn: Connection, schemas: dict[Key, set[Pair]], cap: int = MAX_PROPERTIES_PER_COLLECTION
) -> None:
    """Add the new pairs of each collection: one statement per collection, in key order."""
    statement = _INSERT_PG if conn.dialect.name == "postgresql" else _INSERT_SQLITE
    for (project_id, collection), pairs in sorted(schemas.items()):
        if not pairs:
            continue
        # Sorted and cut to the cap: no statement carries more candidates than could fit.
        rows = sorted(pairs)[:cap]
        conn.execute(
            statement,
            {
                "project_id": project_id,
                "collection": collection,
                "rows": orjson.dumps(rows).decode(),
                "cap": cap,
            },
        )


def answer_type(types: Iterable[str]) -> str:
    """The one type Keen's shape has room for, from the types a path was seen with."""
    seen = set(types)
    for name in TYPE_ORDER:
        if name in seen:
            return name
    return "null"


def read_schemas(
    conn: Connection | Session, project_id: str, collection: str | None = None
) -> dict:
    """{collection: {path: type}} of a project (or of one collection), names sorted."""
    query = select(
        CollectionProperty.collection, CollectionProperty.path, CollectionProperty.type
    ).where(CollectionProperty.project_id == project_id)
    if collection is not None:
        query = query.where(CollectionProperty.collection == collection)
    seen: dict[str, dict[str, list[str]]] = {}
    for name, path, kind in conn.execute(query):
        seen.setdefault(name, {}).setdefault(path, []).append(kind)
    return {
        name: {path: answer_type(kinds) for path, kinds in sorted(paths.items())}
        for name, paths in sorted(seen.items())
    }


def forget_collection(conn: Connection | Session, project_id: str, collection: str) -> int:
    """Remove a collection's schema (its events are all gone); the number of rows removed."""
    result = conn.execute(
        delete(CollectionProperty).where(
            CollectionProperty.project_id == project_id,
            CollectionProperty.collection == collection,
        )
    )
    return result.rowcount or 0
