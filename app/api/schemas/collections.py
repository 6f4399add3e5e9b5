"""Answers of the collection resources: schema inspection and event deletion."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CollectionSchema(BaseModel):
    name: str = Field(examples=["purchases"])
    properties: dict[str, str] = Field(
        description="Dotted property path -> inferred type: string, num, bool, datetime, list "
        "or null.",
        examples=[{"item.price": "num", "keen.timestamp": "datetime", "user": "string"}],
    )
    url: str = Field(examples=["/3.0/projects/4fea721933da5b4e8e000002/events/purchases"])


class EventsDeleted(BaseModel):
    deleted: int = Field(description="Events deleted by this call.", examples=[42])
