"""Many-row inserts straight to the driver, skipping SQLAlchemy's per-row type processing.

The worker writes thousands of rows a second; SQLAlchemy's bind processors (two DateTime and
one JSON conversion per event) cost more than the insert itself, so the few hot tables are
written with pre-formatted values through `exec_driver_sql`. Values are formatted exactly as
SQLAlchemy's own types store them, so ORM reads and queries see identical data.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import orjson
from sqlalchemy import Connection


class RawInsert:
    """A prepared `INSERT ... ON CONFLICT DO NOTHING` for one table on one dialect."""

    def __init__(
        self,
        dialect: str,
        table: str,
        columns: Sequence[str],
        *,
        json_columns: Sequence[str] = (),
        datetime_columns: Sequence[str] = (),
        conflict: Sequence[str] = (),
    ) -> None:
        self.postgres = dialect == "postgresql"
        self._json = [columns.index(c) for c in json_columns]
        self._datetimes = [columns.index(c) for c in datetime_columns]
        self._memo: dict[datetime, str | None] = {}
        cols = ", ".join(columns)
        if self.postgres:
            marks = ", ".join("%s::jsonb" if c in json_columns else "%s" for c in columns)
            tail = f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING" if conflict else ""
            self.sql = f"INSERT INTO {table} ({cols}) VALUES ({marks}){tail}"
        else:
            verb = "INSERT OR IGNORE" if conflict else "INSERT"
            self.sql = f"{verb} INTO {table} ({cols}) VALUES ({', '.join('?' * len(columns))})"

    def row(self, values: list) -> tuple:
        for i in self._json:
            values[i] = orjson.dumps(values[i]).decode()
        if not self.postgres:
            memo = self._memo
            for i in self._datetimes:
                moment = values[i]
                text = memo.get(moment)
                if text is None:
                    if len(memo) > 10_000:
                        memo.clear()
                    # Most rows of a batch share created_at and many share a timestamp.
                    text = memo[moment] = sqlite_datetime(moment)
                values[i] = text
        return tuple(values)

    def execute(self, conn: Connection, rows: list[tuple]) -> int:
        """Insert; returns how many rows were new (conflicting ones are skipped)."""
        if not rows:
            return 0
        return conn.exec_driver_sql(self.sql, rows).rowcount


def sqlite_datetime(value: datetime | None) -> str | None:
    # SQLAlchemy's SQLite DateTime stores naive 'YYYY-MM-DD HH:MM:SS.ffffff' text.
    if value is None:
        return None
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")
