"""Answers of the stream API (events in)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Created(BaseModel):
    created: bool = Field(examples=[True])


class ItemError(BaseModel):
    name: str = Field(examples=["InvalidCollectionNameError"])
    description: str
    error_code: str | None = Field(default=None, examples=["invalid_collection_name"])
    error_id: str | None = None


class ItemResult(BaseModel):
    success: bool
    error: ItemError | None = None
