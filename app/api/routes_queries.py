"""Keen's analyses and extraction (GET with query parameters, POST with a JSON body)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from app.api.analyses import run_analysis
from app.api.auth import QUERY_KEY, Caller
from app.api.deps import SessionDep, SettingsDep
from app.api.funnel import parse_steps, run_funnel
from app.api.multi_analysis import parse_analyses, run_multi_analysis
from app.api.problems import KEY_ERRORS, ApiError, error_responses
from app.api.queries import (
    TARGETED_ANALYSES,
    QueryRefusal,
    QueryTimeout,
    check_timeframe,
    parse_query,
    run_count,
    run_extraction,
    statement_timeout,
)
from app.api.query_build import FilterLimits
from app.api.schemas.queries import (
    AnalysisResult,
    CountBody,
    CountResult,
    ExtractionBody,
    ExtractionResult,
    FunnelBody,
    FunnelResult,
    MultiAnalysisBody,
    MultiAnalysisResult,
    PercentileBody,
    TargetBody,
)
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


@contextmanager
def _answering() -> Iterator[None]:
    """A refused query as a 400 (with its stable reason, when it has one), a timeout as 503."""
    try:
        yield
    except QueryError as exc:
        extra = {"reason": exc.reason} if isinstance(exc, QueryRefusal) else None
        raise ApiError(400, "InvalidQueryError", str(exc), extra=extra) from exc
    except QueryTimeout as exc:
        raise ApiError(
            503,
            "QueryTimeoutError",
            f"{exc}; narrow the timeframe or the filters",
        ) from exc


def _limits(settings: Settings) -> FilterLimits:
    return FilterLimits(
        max_filters=settings.query_max_filters, max_in_values=settings.query_max_in_values
    )


def _run(
    session: Session, settings: Settings, caller: Caller, params: dict[str, Any], kind: str
) -> dict[str, Any]:
    # A sync function called from sync endpoints: FastAPI runs it in its thread pool, so a
    # slow query never holds the event loop (/healthz and the rest keep answering).
    with _answering():
        query = parse_query(
            caller.project_id,
            params,
            forced_filters=caller.forced_filters,
            limits=_limits(settings),
            analysis=kind,
        )
        with statement_timeout(session, settings.query_timeout_seconds):
            if kind == "count":
                return run_count(session, query, max_buckets=settings.query_max_buckets)
            if kind == "extraction":
                return run_extraction(session, query, max_events=settings.query_extraction_limit)
            return run_analysis(
                session,
                query,
                kind,
                max_buckets=settings.query_max_buckets,
                max_values=settings.query_extraction_limit,
            )


def _run_multi(
    session: Session, settings: Settings, caller: Caller, params: dict[str, Any]
) -> dict[str, Any]:
    with _answering():
        check_timeframe(params.get("timeframe"), params.get("timezone"))
        query = parse_query(
            caller.project_id,
            params,
            forced_filters=caller.forced_filters,
            limits=_limits(settings),
            analysis="count",
        )
        specs = parse_analyses(params.get("analyses"), query.group_by)
        with statement_timeout(session, settings.query_timeout_seconds) as deadline:
            return run_multi_analysis(
                session,
                query,
                specs,
                deadline,
                max_buckets=settings.query_max_buckets,
                max_values=settings.query_extraction_limit,
            )


def _run_funnel(
    session: Session, settings: Settings, caller: Caller, params: dict[str, Any]
) -> dict[str, Any]:
    with _answering():
        steps = parse_steps(
            caller.project_id,
            params.get("steps"),
            {"timeframe": params.get("timeframe"), "timezone": params.get("timezone")},
            forced_filters=caller.forced_filters,
            limits=_limits(settings),
        )
        with statement_timeout(session, settings.query_timeout_seconds) as deadline:
            return run_funnel(session, steps, deadline, max_actors=settings.query_extraction_limit)


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
    group_by: str | None = Query(
        default=None, description="Property name or JSON list (at most 10)."
    ),
    interval: str | None = Query(default=None, description="daily, hourly, every_N_units, ..."),
    order_by: str | None = Query(
        default=None,
        description='group_by results\' order: "result", a group_by property, or JSON '
        '{"property_name": ..., "direction": "DESC"} or a list of them.',
    ),
    limit: int | None = Query(default=None, ge=1, description="Keep the first N group_by results."),
) -> dict[str, Any]:
    return _present(group_by=group_by, interval=interval, order_by=order_by, limit=limit)


def _target_params(
    target_property: str | None = Query(
        default=None, description="The property analysed (required)."
    ),
) -> dict[str, Any]:
    return _present(target_property=target_property)


def _percentile_params(
    percentile: float | None = Query(
        default=None, ge=0, le=100, description="0 to 100 (required)."
    ),
) -> dict[str, Any]:
    return _present(percentile=percentile)


def _no_params() -> dict[str, Any]:
    return {}


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


_ANALYSIS_DOCS = {
    "count_unique": "Number of distinct values of `target_property` (any JSON type but null; "
    'the string "1" and the number 1 are two values).',
    "sum": "Sum of the numbers in `target_property` (strings and booleans skipped; 0 over none).",
    "average": "Mean of the numbers in `target_property` (null over none).",
    "minimum": "Smallest number in `target_property` (null over none).",
    "maximum": "Largest number in `target_property` (null over none).",
    "median": "Median of the numbers in `target_property`, interpolated (null over none).",
    "percentile": "The `percentile` (0-100) of the numbers in `target_property`, interpolated "
    "as PostgreSQL's percentile_cont (null over none).",
    "select_unique": "The distinct values of `target_property` (any JSON type but null), as a "
    "list sorted booleans < numbers < strings < arrays < objects.",
}
_ANALYSIS_COMMON_DOC = (
    " Same filters, timeframe, timezone, `interval` and `group_by` (with `order_by`, `limit`) "
    "as count; Keen's result shapes."
)
_TargetParams = Annotated[dict[str, Any], Depends(_target_params)]
_CountParams = Annotated[dict[str, Any], Depends(_count_params)]


def _add_analysis(analysis: str) -> None:
    """GET and POST /3.0/projects/{project_id}/queries/<analysis>."""
    is_percentile = analysis == "percentile"
    body_model = PercentileBody if is_percentile else TargetBody
    extra = _percentile_params if is_percentile else _no_params

    def get_endpoint(
        session: SessionDep,
        settings: SettingsDep,
        common: _CommonParams,
        more: _CountParams,
        target: _TargetParams,
        pct: dict,
        caller: Caller,
    ) -> Any:
        return _run(session, settings, caller, {**common, **more, **target, **pct}, analysis)

    def post_endpoint(session: SessionDep, settings: SettingsDep, body: Any, caller: Caller) -> Any:
        return _run(session, settings, caller, body.model_dump(exclude_none=True), analysis)

    # The annotations that vary per analysis, as objects (closures are not module globals).
    get_endpoint.__annotations__["pct"] = Annotated[dict[str, Any], Depends(extra)]
    get_endpoint.__defaults__ = (Depends(QUERY_KEY),)
    post_endpoint.__annotations__["body"] = body_model
    post_endpoint.__defaults__ = (Depends(QUERY_KEY),)
    title = analysis.replace("_", " ")
    for method, endpoint, how in (
        ("GET", get_endpoint, "query parameters"),
        ("POST", post_endpoint, "JSON body"),
    ):
        endpoint.__name__ = f"{analysis}_{method.lower()}"
        router.add_api_route(
            f"/3.0/projects/{{project_id}}/queries/{analysis}",
            endpoint,
            methods=[method],
            summary=f"{title[0].upper()}{title[1:]} ({how})",
            description=_ANALYSIS_DOCS[analysis] + _ANALYSIS_COMMON_DOC,
            response_model=AnalysisResult,
            responses=error_responses(*KEY_ERRORS),
        )


for _analysis in TARGETED_ANALYSES:
    _add_analysis(_analysis)


_MULTI_DOC = (
    "Several labelled analyses (`analyses`: {label: {analysis_type, target_property, "
    "percentile}}) over one `event_collection`, with the same timeframe, timezone, filters, "
    "`interval` and `group_by` as count. The result is keyed by label: {label: value}; with "
    "group_by a list of {<group>: value, <label>: value}; with interval a list of "
    "{timeframe, value}."
)
_FUNNEL_DOC = (
    "Ordered `steps`, each {event_collection, actor_property, timeframe, timezone, filters, "
    "optional, inverted, with_actors} (timeframe and timezone default to the funnel's). "
    "`result[i]` counts the actors of every earlier non-optional step that are in step i "
    "(inverted: that are not); `steps` echoes the steps; `actors` (only when a step has "
    "with_actors) lists each such step's actors. At most 20 steps."
)


def _multi_params(
    analyses: str | None = Query(
        default=None,
        description='Required: JSON {"<label>": {"analysis_type": "sum", '
        '"target_property": "price"}, ...}.',
    ),
    group_by: str | None = Query(
        default=None, description="Property name or JSON list (at most 10)."
    ),
    interval: str | None = Query(default=None, description="daily, hourly, every_N_units, ..."),
) -> dict[str, Any]:
    return _present(analyses=analyses, group_by=group_by, interval=interval)


@router.get(
    "/3.0/projects/{project_id}/queries/multi_analysis",
    summary="Multi-analysis (query parameters)",
    description=_MULTI_DOC,
    response_model=MultiAnalysisResult,
    responses=error_responses(*KEY_ERRORS),
)
def multi_analysis_get(
    session: SessionDep,
    settings: SettingsDep,
    common: _CommonParams,
    more: Annotated[dict[str, Any], Depends(_multi_params)],
    caller: Caller = Depends(QUERY_KEY),
) -> Any:
    return _run_multi(session, settings, caller, {**common, **more})


@router.post(
    "/3.0/projects/{project_id}/queries/multi_analysis",
    summary="Multi-analysis (JSON body)",
    description=_MULTI_DOC,
    response_model=MultiAnalysisResult,
    responses=error_responses(*KEY_ERRORS),
)
def multi_analysis_post(
    session: SessionDep,
    settings: SettingsDep,
    body: MultiAnalysisBody,
    caller: Caller = Depends(QUERY_KEY),
) -> Any:
    return _run_multi(session, settings, caller, body.model_dump(exclude_none=True))


@router.get(
    "/3.0/projects/{project_id}/queries/funnel",
    summary="Funnel (query parameters)",
    description=_FUNNEL_DOC,
    response_model=FunnelResult,
    response_model_exclude_unset=True,
    responses=error_responses(*KEY_ERRORS),
)
def funnel_get(
    session: SessionDep,
    settings: SettingsDep,
    steps: str | None = Query(
        default=None,
        description='Required: JSON list of {"event_collection", "actor_property", ...}.',
    ),
    timeframe: str | None = Query(
        default=None, description="The steps' default timeframe (relative or JSON {start, end})."
    ),
    timezone: str | None = Query(default=None, description="The steps' default timezone."),
    caller: Caller = Depends(QUERY_KEY),
) -> Any:
    params = _present(steps=steps, timeframe=timeframe, timezone=timezone)
    return _run_funnel(session, settings, caller, params)


@router.post(
    "/3.0/projects/{project_id}/queries/funnel",
    summary="Funnel (JSON body)",
    description=_FUNNEL_DOC,
    response_model=FunnelResult,
    response_model_exclude_unset=True,
    responses=error_responses(*KEY_ERRORS),
)
def funnel_post(
    session: SessionDep,
    settings: SettingsDep,
    body: FunnelBody,
    caller: Caller = Depends(QUERY_KEY),
) -> Any:
    return _run_funnel(session, settings, caller, body.model_dump(exclude_none=True))
