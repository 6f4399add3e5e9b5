"""Time buckets as a VALUES list, so one scan can count rows into every bucket at once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import CTE, DateTime, Integer, column, values


def bounds_cte(edges: Sequence[tuple[datetime, datetime]]) -> CTE:
    """A CTE ``buckets(idx, b_start, b_end)``: a row is in bucket idx when b_start <= t < b_end."""
    return (
        values(
            column("idx", Integer),
            column("b_start", DateTime(timezone=True)),
            column("b_end", DateTime(timezone=True)),
            name="buckets",
        )
        .data([(i, start, end) for i, (start, end) in enumerate(edges)])
        .cte("buckets")
    )
