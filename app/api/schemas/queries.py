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
