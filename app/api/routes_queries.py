"""Keen's count and extraction queries (GET with query parameters, POST with a JSON body)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from app.api.auth import QUERY_KEY, Caller
from app.api.deps import SessionDep, SettingsDep
from app.api.problems import KEY_ERRORS, ApiError, error_responses
from app.api.queries import (
    QueryTimeout,
    parse_query,
    run_count,
    run_extraction,
    statement_timeout,
)
from app.api.query_build import FilterLimits
from app.api.schemas.queries import CountBody, CountResult, ExtractionBody, ExtractionResult
from app.api.timeframes import QueryError
from app.settings import Settings

router = APIRouter(tags=["queries"])


_COUNT_DOC = (
    "Count events of `event_collection` in `timeframe` matching every filter (and the filters "
    "an access key forces). `group_by` and `interval` shape the result as in Keen."
)
_EXTRACTION_DOC = (
    "Full events (with `keen`) of `event_collection`, oldest first; `latest` keeps the most "
    "recent N, `property_names` keeps only the given dotted paths."
)


def _run(
    session: Session, settings: Settings, caller: Caller, params: dict[str, Any], kind: str
) -> dict[str, Any]:
    # A sync function called from sync endpoints: FastAPI runs it in its thread pool, so a
    # slow query never holds the event loop (/healthz and the rest keep answering).
    limits = FilterLimits(
        max_filters=settings.query_max_filters, max_in_values=settings.query_max_in_values
    )
    try:
        query = parse_query(
            caller.project_id, params, forced_filters=caller.forced_filters, limits=limits
        )
        with statement_timeout(session, settings.query_timeout_seconds):
            if kind == "count":
                return run_count(session, query, max_buckets=settings.query_max_buckets)
            return run_extraction(session, query, max_events=settings.query_extraction_limit)
    except QueryError as exc:
        raise ApiError(400, "InvalidQueryError", str(exc)) from exc
    except QueryTimeout as exc:
        raise ApiError(
            503,
            "QueryTimeoutError",
            f"{exc}; narrow the timeframe or the filters",
        ) from exc


def _present(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


# The GET routes' query parameters as dependencies, so the four every query takes are
# declared once; each returns the parameters given, as parse_query reads them.
def _common_params(
    event_collection: str | None = Query(
        default=None, description="Collection to query (required)."
    ),
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
) -> dict[str, Any]:
    return _present(
        event_collection=event_collection, timeframe=timeframe, timezone=timezone, filters=filters
    )


def _count_params(
    group_by: str | None = Query(default=None, description="Property name or JSON list."),
    interval: str | None = Query(default=None, description="daily, hourly, every_N_units, ..."),
) -> dict[str, Any]:
    return _present(group_by=group_by, interval=interval)


def _extraction_params(
    latest: int | None = Query(default=None, ge=1, description="Keep the most recent N."),
    property_names: str | None = Query(default=None, description="JSON list of dotted paths."),
) -> dict[str, Any]:
    return _present(latest=latest, property_names=property_names)


_CommonParams = Annotated[dict[str, Any], Depends(_common_params)]


@router.get(
    "/3.0/projects/{project_id}/queries/count",
    summary="Count events (query parameters)",
    description=_COUNT_DOC,
    response_model=CountResult,
    responses=error_responses(*KEY_ERRORS),
)
def count_get(
    session: SessionDep,
    settings: SettingsDep,
    common: _CommonParams,
    more: Annotated[dict[str, Any], Depends(_count_params)],
    caller: Caller = Depends(QUERY_KEY),
) -> Any:
    return _run(session, settings, caller, {**common, **more}, "count")


@router.post(
    "/3.0/projects/{project_id}/queries/count",
    summary="Count events (JSON body)",
    description=_COUNT_DOC,
    response_model=CountResult,
    responses=error_responses(*KEY_ERRORS),
)
def count_post(
    session: SessionDep, settings: SettingsDep, body: CountBody, caller: Caller = Depends(QUERY_KEY)
) -> Any:
    return _run(session, settings, caller, body.model_dump(exclude_none=True), "count")


@router.get(
    "/3.0/projects/{project_id}/queries/extraction",
    summary="Extract events (query parameters)",
    description=_EXTRACTION_DOC,
    response_model=ExtractionResult,
    responses=error_responses(*KEY_ERRORS),
)
def extraction_get(
    session: SessionDep,
    settings: SettingsDep,
    common: _CommonParams,
    more: Annotated[dict[str, Any], Depends(_extraction_params)],
    caller: Caller = Depends(QUERY_KEY),
) -> Any:
    return _run(session, settings, caller, {**common, **more}, "extraction")


@router.post(
    "/3.0/projects/{project_id}/queries/extraction",
    summary="Extract events (JSON body)",
    description=_EXTRACTION_DOC,
    response_model=ExtractionResult,
    responses=error_responses(*KEY_ERRORS),
)
def extraction_post(
    session: SessionDep,
    settings: SettingsDep,
    body: ExtractionBody,
    caller: Caller = Depends(QUERY_KEY),
) -> Any:
    return _run(session, settings, caller, body.model_dump(exclude_none=True), "extraction")
