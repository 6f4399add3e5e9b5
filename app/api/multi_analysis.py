"""Keen's multi_analysis: several labelled analyses over one collection, timeframe, filters,
interval and group_by, answered as one result keyed by label.

Each label is one analysis of analyses.py over the same parsed query (the same filter,
timeframe, interval and group_by code as count), one statement each, all under one query
deadline. Their results are merged by interval bucket and group_by values into Keen's shapes:

- plain: ``{"result": {"<label>": value, ...}}``
- group_by: ``{"result": [{"<group>": g, "<label>": value, ...}, ...]}``
- interval: ``{"result": [{"timeframe": {start, end}, "value": {"<label>": value}}, ...]}``
  (each ``value`` a list as for group_by when both are given).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from app.api.analyses import ANALYSES, _json_key, run_analysis
from app.api.queries import Deadline, Query, QueryRefusal, _maybe_json, _parse_percentile
from app.api.query_build import split_path
from app.api.timeframes import QueryError

# The most labelled analyses one multi_analysis may run (each is one statement).
MAX_ANALYSES = 20


@dataclass(frozen=True)
class AnalysisSpec:
    analysis_type: str
    target_property: str | None = None
    percentile: float | None = None


def parse_analyses(raw: object, group_by: list[str]) -> dict[str, AnalysisSpec]:
    """``analyses``: {"<label>": {"analysis_type", "target_property"?, "percentile"?}}."""
    raw = _maybe_json(raw)
    if raw in (None, "", {}):
        raise QueryRefusal(
            "missing_analyses",
            'analyses is required: {"<label>": {"analysis_type": "count"}, ...}',
        )
    if not isinstance(raw, dict):
        raise QueryRefusal(
            "invalid_analyses", 'analyses is an object {"<label>": {"analysis_type": ...}}'
        )
    if len(raw) > MAX_ANALYSES:
        raise QueryRefusal(
            "too_many_analyses",
            f"{len(raw)} analyses; a multi_analysis may have at most {MAX_ANALYSES}",
        )
    out: dict[str, AnalysisSpec] = {}
    for label, spec in raw.items():
        if not label:
            raise QueryRefusal("invalid_analyses", "an analysis label is a non-empty string")
        if label in group_by:
            # A group_by result item holds the group's values and the labels side by side.
            raise QueryRefusal(
                "invalid_analyses", f"label {label[:80]!r} is also a group_by property"
            )
        if not isinstance(spec, dict):
            raise QueryRefusal(
                "invalid_analyses", f"analyses[{label[:80]!r}] is {{analysis_type, ...}}"
            )
        kind = spec.get("analysis_type")
        if kind not in ANALYSES:
            raise QueryRefusal(
                "unknown_analysis_type",
                f"analyses[{label[:80]!r}]: unknown analysis_type {str(kind)[:80]!r} "
                f"(one of {', '.join(ANALYSES)})",
            )
        target = spec.get("target_property")
        if kind == "count":
            target = None
        elif target in (None, ""):
            raise QueryRefusal(
                "missing_target_property",
                f"analyses[{label[:80]!r}]: target_property is required for {kind}",
            )
        else:
            split_path(target)
        try:
            percentile = _parse_percentile(spec.get("percentile"), required=kind == "percentile")
        except QueryError as exc:
            raise QueryRefusal("invalid_percentile", f"analyses[{label[:80]!r}]: {exc}") from exc
        out[label] = AnalysisSpec(kind, target, percentile if kind == "percentile" else None)
    return out


def _merge_groups(
    q: Query, specs: dict[str, AnalysisSpec], per_label: dict[str, list[dict]]
) -> list[dict]:
    """One item per group: its group_by values and every label's value.

    Every analysis but select_unique answers every group of the query's events; select_unique
    leaves out the groups without a value, which get its empty list here."""
    merged: dict[bytes, dict] = {}
    for label, items in per_label.items():
        for item in items:
            group = [item[name] for name in q.group_by]
            row = merged.setdefault(_json_key(group), dict(zip(q.group_by, group, strict=True)))
            row[label] = item["result"]
    out = []
    for key in sorted(merged):
        row = merged[key]
        # The group's values first, then the labels in the order they were asked for.
        item = {name: row[name] for name in q.group_by}
        item.update((label, row.get(label, [])) for label in specs)
        out.append(item)
    return out


def _merge(q: Query, specs: dict[str, AnalysisSpec], per_label: dict[str, Any]) -> Any:
    if q.group_by:
        return _merge_groups(q, specs, per_label)
    return {label: per_label[label] for label in specs}


def run_multi_analysis(
    session: Session,
    q: Query,
    specs: dict[str, AnalysisSpec],
    deadline: Deadline,
    *,
    max_buckets: int,
    max_values: int,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for label, spec in specs.items():
        one = replace(
            q, target_property=spec.target_property, percentile=spec.percentile, order_by=[]
        )
        deadline.next_statement()
        results[label] = run_analysis(
            session, one, spec.analysis_type, max_buckets=max_buckets, max_values=max_values
        )["result"]
    if q.interval is None:
        return {"result": _merge(q, specs, results)}
    first = next(iter(results.values()))
    out = []
    for i, bucket in enumerate(first):
        values = {label: results[label][i]["value"] for label in specs}
        out.append({"timeframe": bucket["timeframe"], "value": _merge(q, specs, values)})
    return {"result": out}
