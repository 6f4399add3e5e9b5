"""Bodies and results of Keen's analyses (count, sum, ..., select_unique) and extraction."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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


class OrderBy(BaseModel):
    property_name: str = Field(examples=["result"], description="result or a group_by property")
    direction: str = Field(default="ASC", examples=["DESC"], description="ASC or DESC")


class CountBody(_QueryBody):
    group_by: str | list[str] | None = Field(
        default=None, examples=["user.plan"], description="At most 10 properties."
    )
    interval: str | None = Field(default=None, examples=["daily"])
    order_by: str | OrderBy | list[OrderBy] | None = Field(
        default=None,
        examples=[{"property_name": "result", "direction": "DESC"}],
        description="Order of group_by results (default: result, descending).",
    )
    limit: int | None = Field(
        default=None, ge=1, examples=[10], description="Keep the first N group_by results."
    )


class TargetBody(CountBody):
    target_property: str | None = Field(
        default=None, examples=["price"], description="Required: the property analysed."
    )


class PercentileBody(TargetBody):
    percentile: float | None = Field(
        default=None, ge=0, le=100, examples=[90], description="Required: 0 to 100."
    )


class ExtractionBody(_QueryBody):
    latest: int | None = Field(default=None, ge=1, examples=[100])
    property_names: list[str] | None = Field(default=None, examples=[["item", "keen.timestamp"]])


class CountResult(BaseModel):
    result: int | list[dict[str, Any]] = Field(
        description="A number; a list of {<group>: value, result: n} with group_by; a list of "
        "{timeframe: {start, end}, value} with interval.",
        examples=[42],
    )


class AnalysisResult(BaseModel):
    result: Any = Field(
        description="A number (null for average/minimum/maximum/median/percentile over no "
        "numbers; a list of values for select_unique); a list of {<group>: value, result} with "
        "group_by; a list of {timeframe: {start, end}, value} with interval.",
        examples=[1234.5],
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


class AnalysisSpecModel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    analysis_type: str | None = Field(
        default=None,
        examples=["sum"],
        description="Required: count, count_unique, sum, average, minimum, maximum, median, percentile "
        "or select_unique.",
    )
    target_property: str | None = Field(
        default=None, examples=["price"], description="Required for all but count."
    )
    percentile: float | None = Field(
        default=None, examples=[90], description="Required for percentile: 0 to 100."
    )


class MultiAnalysisBody(_QueryBody):
    analyses: dict[str, AnalysisSpecModel] | None = Field(
        default=None,
        examples=[
            {
                "purchases": {"analysis_type": "count"},
                "revenue": {"analysis_type": "sum", "target_property": "price"},
            }
        ],
        description="Required: label -> analysis (at most 20).",
    )
    group_by: str | list[str] | None = Field(
        default=None, examples=["user.plan"], description="At most 10 properties."
    )
    interval: str | None = Field(default=None, examples=["daily"])


class MultiAnalysisResult(BaseModel):
    result: dict[str, Any] | list[dict[str, Any]] = Field(
        description="{label: value}; a list of {<group>: value, <label>: value} with "
        "group_by; a list of {timeframe: {start, end}, value} with interval.",
        examples=[{"purchases": 3, "revenue": 35.5}],
    )


class FunnelStepModel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event_collection: str | None = Field(default=None, examples=["signups"])
    actor_property: str | None = Field(
        default=None, examples=["user.id"], description="Required: the property naming the actor."
    )
    timeframe: str | AbsoluteTimeframe | None = Field(
        default=None, examples=["this_30_days"], description="Default: the funnel's timeframe."
    )
    timezone: str | int | None = Field(
        default=None, examples=["UTC"], description="Default: the funnel's timezone."
    )
    filters: list[FilterModel] | None = None
    optional: bool | None = Field(
        default=None, description="Counted, but does not narrow the steps after it."
    )
    inverted: bool | None = Field(
        default=None, description="Counts the funnel's actors that are NOT in this step."
    )
    with_actors: bool | None = Field(
        default=None, description="Also return this step's actors (in `actors`)."
    )


class FunnelBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    steps: list[FunnelStepModel] | None = Field(
        default=None,
        description="Required: 1 to 20 steps, in order.",
        examples=[
            [
                {"event_collection": "signups", "actor_property": "user.id"},
                {"event_collection": "purchases", "actor_property": "user.id"},
            ]
        ],
    )
    timeframe: str | AbsoluteTimeframe | None = Field(
        default=None, examples=["this_30_days"], description="Steps' default timeframe."
    )
    timezone: str | int | None = Field(
        default=None, examples=["UTC"], description="Steps' default timezone."
    )


class FunnelResultStep(BaseModel):
    event_collection: str
    actor_property: str
    timeframe: str | dict[str, Any] | None
    timezone: str | int | None
    filters: list[dict[str, Any]]
    optional: bool
    inverted: bool
    with_actors: bool


class FunnelResult(BaseModel):
    result: list[int] = Field(description="Actors counted at each step.", examples=[[3, 2, 1]])
    steps: list[FunnelResultStep] = Field(description="The steps, with their defaults filled.")
    actors: list[list[Any] | None] | None = Field(
        default=None,
        description="Only when a step has with_actors: per step, its actors (null for the "
        "steps without with_actors).",
        examples=[[None, ["u1", "u2"]]],
    )
