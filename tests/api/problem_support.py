"""Problems made the real way for API tests: dead letters built by the worker's
``dead_letter`` and stored by its ``BatchWriter``, which counts them into problems in the same
transaction, exactly as a running worker does."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from app.contract.errors import Rejection
from app.ingest.dlq import dead_letter
from app.ingest.persist import BatchOutcome, BatchWriter
from app.ingest.records import RawRecord
from app.store.db import engine_for

DOLLAR = "starts with '$'"
# Record offsets unique across the test session: error ids derive from the coordinates.
_offsets = itertools.count(1000)


def dollar_name(name: str = "$price", index: int = 3, parent: str = "items") -> Rejection:
    """An invalid property name under ``parent[index]`` (one problem per parent and name)."""
    detail = {"path": f"{parent}[{index}].{name}", "reason": DOLLAR, "count": 1}
    return Rejection("invalid_property_name", "validate", f"The property {name!r} ...", detail)


def bad_json(offset: int = 1) -> Rejection:
    detail = {"char_offset": offset, "reason": f"unexpected character (char {offset})"}
    return Rejection("invalid_json", "decode", "The value is not JSON.", detail)


def bad_timestamp(value: str = "yesterday") -> Rejection:
    detail = {"path": "keen.timestamp", "value": value}
    return Rejection("invalid_timestamp", "validate", "keen.timestamp is not ISO-8601.", detail)


class Rejector:
    """Writes rejections of one project through the worker's BatchWriter."""

    def __init__(self, url: str, project_id: str, payload_cap: int = 65536) -> None:
        self.project_id = project_id
        self._writer = BatchWriter(engine_for(url), payload_cap=payload_cap)

    def reject(
        self,
        rejection: Rejection,
        *,
        times: int = 1,
        collection: str = "purchases",
        key_id: str | None = None,
        at: datetime | None = None,
        value: bytes = b'{"items": [{"$price": 1}]}',
        dlq: bool = True,
    ) -> list[str]:
        """``times`` records refused with ``rejection``, in one batch; their error ids.

        ``dlq``: the batch's dead letters were written to the DLQ (partition 0, offset =
        the record's), as the worker records before it stores the batch.
        """
        at = at or datetime.now(UTC)
        headers = (("inbound.key_id", key_id.encode()),) if key_id else ()
        letters = []
        for _ in range(times):
            offset = next(_offsets)
            record = RawRecord(
                topic=f"in.{self.project_id}.{collection}",
                partition=0,
                offset=offset,
                timestamp_ms=int(at.timestamp() * 1000),
                key=b"k",
                value=value,
                headers=headers,
            )
            letters.append(dead_letter(record, rejection, at))
        coordinates = {d.error_id: (0, d.source_offset or 0) for d in letters} if dlq else {}
        self._writer.write(BatchOutcome(rejected=letters, dlq_coordinates=coordinates))
        return [d.error_id for d in letters]
