"""Keen's count and extraction queries (GET with query parameters, POST with a JSON body)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from app.api.auth import QUERY_KEY, Caller
from app.api.problems import KEY_ERRORS, ApiError, error_responses
from app.api.queries import (
    QueryTimeout,
    parse_query,
    run_count,
    run_extraction,
    statement_timeout,
)
from app.api.query_build import FilterLimits
from app.api.timeframes import QueryError

router = APIRouter(tags=["queries"])


class FilterModel(BaseModel):
    property_name: str = Field(examples=["user.plan"])
    operator: str = Field(
        examples=["eq"],
        description="eq, ne, lt, lte, gt, gte, exists, in, contains, not_contains, within, regex",
    )
    property_value: Any = Field(default=None, examples=["pro"])


class AbsoluteTimeframe(BaseModel):
    start: str = Field(examples=["2026-11-01T00:00:00Z"])
    end: str = Field(examples=["2026-12-01T00:00:00Z"])


class _QueryBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event_collection: str = Field(examples=["purchases"])
    timeframe: str | AbsoluteTimeframe | None = Field(
        default=None, examples=["this_7_days"], description="Relative name or {start, end}."
    )
    timezone: str | int | None = Field(
        default=None, examples=["Europe/Berlin"], description="IANA name or offset in seconds."
    )
    filters: list[FilterModel] | None = None


class CountBody(_QueryBody):
    group_by: str | list[str] | None = Field(default=None, examples=["user.plan"])
    interval: str | None = Field(default=None, examples=["daily"])


class ExtractionBody(_QueryBody):
    latest: int | None = Field(default=None, ge=1, examples=[100])
    property_names: list[str] | None = Field(default=None, examples=[["item", "keen.timestamp"]])


class CountResult(BaseModel):
    result: int | list[dict[str, Any]] = Field(
        description="A number; a list of {<group>: value, result: n} with group_by; a list of "
        "{timeframe: {start, end}, value} with interval.",
        examples=[42],
    )


class ExtractionResult(BaseModel):
    result: list[dict[str, Any]] = Field(
        examples=[
            [
                {
                    "item": "golden widget",
                    "keen": {
                        "id": "5f0c4d7e9a3b2c1d0e6f7a8b",
                        "timestamp": "2026-11-24T19:07:46.123Z",
                        "created_at": "2026-11-24T19:07:46.500Z",
                    },
                }
            ]
        ]
    )


_COUNT_DOC = (
    "Count events of `event_collection` in `timeframe` matching every filter (and the filters "
    "an access key forces). `group_by` and `interval` shape the result as in Keen."
)
_EXTRACTION_DOC = (
    "Full events (with `keen`) of `event_collection`, oldest first; `latest` keeps the most "
    "recent N, `property_names` keeps only the given dotted paths."
)


def _run(request: Request, caller: Caller, params: dict[str, Any], kind: str) -> dict[str, Any]:
    # A sync function called from sync endpoints: FastAPI runs it in its thread pool, so a
    # slow query never holds the event loop (/healthz and the rest keep answering).
    settings = request.app.state.settings
    limits = FilterLimits(
        max_filters=settings.query_max_filters, max_in_values=settings.query_max_in_values
    )
    try:
        query = parse_query(
            caller.project_id, params, forced_filters=caller.forced_filters, limits=limits
        )
        with (
            request.app.state.session_factory() as session,
            statement_timeout(session, settings.query_timeout_seconds),
        ):
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


def _get_params(
    event_collection: str | None,
    timeframe: str | None,
    timezone: str | None,
    filters: str | None,
    **more: Any,
) -> dict[str, Any]:
    params = {
        "event_collection": event_collection,
        "timeframe": timeframe,
        "timezone": timezone,
        "filters": filters,
    }
    params.update(more)
    return {k: v for k, v in params.items() if v is not None}


_Q_COLLECTION = Query(default=None, description="Collection to query (required).")
_Q_TIMEFRAME = Query(
    default=None,
    description='Relative (this_7_days, previous_24_hours) or JSON {"start": iso, "end": iso}.',
)
_Q_TZ = Query(default=None, description="IANA timezone name or offset in seconds.")
_Q_FILTERS = Query(
    default=None, description="JSON list of {property_name, operator, property_value}."
)


@router.get(
    "/3.0/projects/{project_id}/queries/count",
    summary="Count events (query parameters)",
    description=_COUNT_DOC,
    response_model=CountResult,
    responses=error_responses(*KEY_ERRORS),
)
def count_get(
    request: Request,
    event_collection: str | None = _Q_COLLECTION,
    timeframe: str | None = _Q_TIMEFRAME,
    timezone: str | None = _Q_TZ,
    filters: str | None = _Q_FILTERS,
    group_by: str | None = Query(default=None, description="Property name or JSON list."),
    interval: str | None = Query(default=None, description="daily, hourly, every_N_units, ..."),
    caller: Caller = Depends(QUERY_KEY),
) -> Any:
    params = _get_params(
        event_collection, timeframe, timezone, filters, group_by=group_by, interval=interval
    )
    return _run(request, caller, params, "count")


@router.post(
    "/3.0/projects/{project_id}/queries/count",
    summary="Count events (JSON body)",
    description=_COUNT_DOC,
    response_model=CountResult,
    responses=error_responses(*KEY_ERRORS),
)
def count_post(request: Request, body: CountBody, caller: Caller = Depends(QUERY_KEY)) -> Any:
    return _run(request, caller, body.model_dump(exclude_none=True), "count")


@router.get(
    "/3.0/projects/{project_id}/queries/extraction",
    summary="Extract events (query parameters)",
    description=_EXTRACTION_DOC,
    response_model=ExtractionResult,
    responses=error_responses(*KEY_ERRORS),
)
def extraction_get(
    request: Request,
    event_collection: str | None = _Q_COLLECTION,
    timeframe: str | None = _Q_TIMEFRAME,
    timezone: str | None = _Q_TZ,
    filters: str | None = _Q_FILTERS,
    latest: int | None = Query(default=None, ge=1, description="Keep the most recent N."),
    property_names: str | None = Query(default=None, description="JSON list of dotted paths."),
    caller: Caller = Depends(QUERY_KEY),
) -> Any:
    params = _get_params(
        event_collection, timeframe, timezone, filters, latest=latest, property_names=property_names
    )
    return _run(request, caller, params, "extraction")


@router.post(
    "/3.0/projects/{project_id}/queries/extraction",
    summary="Extract events (JSON body)",
    description=_EXTRACTION_DOC,
    response_model=ExtractionResult,
    responses=error_responses(*KEY_ERRORS),
)
def extraction_post(
    request: Request, body: ExtractionBody, caller: Caller = Depends(QUERY_KEY)
) -> Any:
    return _run(request, caller, body.model_dump(exclude_none=True), "extraction")
