"""Keen's collection resources: inspecting schemas (GET) and deleting events (DELETE).

GET /3.0/projects/{id}/events and /events/{collection} answer from the schema table the
worker keeps (app/store/collection_schema.py), never by scanning events. Who may inspect: the
master key, a key permitted ``queries`` (the read key) unless it forces query filters (the
schema is the whole collection's, so it would name properties of events the key's filters
hide), and an access key permitted ``schema`` (Keen's permission for this), which was granted
the whole schema on purpose.

DELETE /3.0/projects/{id}/events/{collection} (master key only) takes Keen's ``filters``,
``timeframe`` and ``timezone`` query parameters (app/api/event_deletion.py).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request

from app.api.auth import MASTER_KEY, Caller, _key_header, _key_query, authenticate
from app.api.deps import SessionDep, SessionsDep, SettingsDep
from app.api.event_deletion import audit_target, delete_events, parse_deletion
from app.api.problems import KEY_ERRORS, ApiError, error_responses
from app.api.query_build import FilterLimits
from app.api.schemas.collections import CollectionSchema, EventsDeleted
from app.api.timeframes import QueryError
from app.contract.collections import collection_problem
from app.store.collection_schema import read_schemas

router = APIRouter(tags=["collections"])


def inspecting_key(
    request: Request,
    sessions: SessionsDep,
    project_id: str,
    _h: str | None = Depends(_key_header),
    _q: str | None = Depends(_key_query),
) -> Caller:
    try:
        caller = authenticate(request, sessions, project_id, "schema")
    except ApiError as exc:
        if exc.status_code != 403:
            raise
        caller = authenticate(request, sessions, project_id, "queries")
        if caller.forced_filters:
            raise ApiError(
                403,
                "InvalidApiKeyError",
                "This key forces query filters, and a collection's schema covers all its "
                "events: inspecting needs the master key, the read key, or an access key "
                "permitted 'schema'.",
            ) from None
    return caller


def _entry(project_id: str, name: str, properties: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "properties": properties,
        "url": f"/3.0/projects/{project_id}/events/{quote(name, safe='')}",
    }


@router.get(
    "/3.0/projects/{project_id}/events",
    summary="Inspect every collection",
    description="The project's collections, each with its properties (dotted paths) and their "
    "inferred types: `string`, `num`, `bool`, `datetime` (keen.timestamp, keen.created_at), "
    "`list`, `null`. Kept as events are stored, up to 1,000 properties per collection.",
    response_model=list[CollectionSchema],
    responses=error_responses(*KEY_ERRORS),
)
def all_collections(session: SessionDep, caller: Caller = Depends(inspecting_key)) -> Any:
    schemas = read_schemas(session, caller.project_id)
    return [_entry(caller.project_id, name, props) for name, props in schemas.items()]


@router.get(
    "/3.0/projects/{project_id}/events/{collection}",
    summary="Inspect one collection",
    description="The collection's properties and their inferred types (as in the list of every "
    "collection); 404 when no event of it is stored.",
    response_model=CollectionSchema,
    responses=error_responses(*KEY_ERRORS, 404),
)
def one_collection(
    session: SessionDep, collection: str, caller: Caller = Depends(inspecting_key)
) -> Any:
    # A name no event can be stored under has no schema; not looked up (PostgreSQL cannot
    # bind a NUL, which was a 500).
    possible = collection_problem(collection) is None
    schemas = read_schemas(session, caller.project_id, collection) if possible else {}
    if collection not in schemas:
        raise ApiError(
            404, "ResourceNotFoundError", f"No collection {collection[:100]!r} in this project."
        )
    return _entry(caller.project_id, collection, schemas[collection])


@router.delete(
    "/3.0/projects/{project_id}/events/{collection}",
    summary="Delete events",
    description="Delete the collection's events matching `filters` within `timeframe` (both "
    "optional: without them, every event of the collection, and its schema). Master key only; "
    "deleted in batches of 5,000, audited as `events.delete`, counted as `deleted` in the "
    "reconciliation. Keen answered 204; this answers 200 with the number deleted.",
    response_model=EventsDeleted,
    responses=error_responses(*KEY_ERRORS),
)
def delete_collection_events(
    session: SessionDep,
    settings: SettingsDep,
    collection: str,
    timeframe: str | None = Query(
        default=None,
        description='Relative (this_7_days, previous_24_hours) or JSON {"start": iso, "end": iso}.',
    ),
    timezone: str | None = Query(
        default=None, description="IANA timezone name or offset in seconds."
    ),
    filters: str | None = Query(
        default=None, description="JSON list of {property_name, operator, property_value}."
    ),
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    limits = FilterLimits(
        max_filters=settings.query_max_filters, max_in_values=settings.query_max_in_values
    )
    problem = collection_problem(collection)
    if problem is not None:
        # No event can be stored under such a name: refused, not audited as a delete of none.
        raise ApiError(400, "InvalidCollectionNameError", problem.message)
    params = {"filters": filters, "timeframe": timeframe, "timezone": timezone}
    try:
        query = parse_deletion(caller.project_id, collection, params, limits)
        audit = audit_target(query)
    except QueryError as exc:
        raise ApiError(400, "InvalidQueryError", str(exc)) from exc
    try:
        result = delete_events(session, query, actor=caller.actor, audit=audit)
    except QueryError as exc:  # a filter the SQL builder refuses (e.g. a bad regex)
        raise ApiError(400, "InvalidQueryError", str(exc)) from exc
    return {"deleted": result.deleted}
