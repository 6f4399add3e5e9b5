"""The /healthz answer."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str = Field(examples=["ok"], description="ok, or degraded when a check fails.")
    database: str = Field(examples=["ok"])
    kafka: str = Field(examples=["ok"], description="ok, unavailable, or not_configured.")
