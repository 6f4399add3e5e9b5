"""The ceiling the ingest worker is measured against: bare aiokafka + orjson + one batched INSERT.

    .venv/bin/python -m bench.baseline_consumer --bootstrap HOST:PORT --database-url URL \
        --group GROUP --topics in.<project>.<collection>[,bench.<project>.<collection>...]

Topics are named ``<prefix>.<project_id>.<collection>``; the rows get that project and
collection. Per batch (``getmany``, up to 2,000 records): ``orjson.loads`` each value; skip it
when it is not JSON, not an object, or has a top-level property name that is empty, contains
``.`` or starts with ``$`` (no nested checks, keys, add-ons, DLQ or error rows: invalid events
are only counted); add a ``keen`` object (id, timestamp, created_at); insert the rows into
``events`` with one ``executemany`` on a raw driver connection in a writer thread; commit the
offsets. Runs until SIGTERM or SIGINT. It is what the Python stack can do at best, not a
product: the worker does much more per event.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaConsumer

from app.store.db import make_engine
from bench.backend_kafka import aiokafka_options

BATCH = 2000
# The largest record the broker accepts, per partition and fetch (as the worker).
MAX_PARTITION_FETCH = 2 * 1024 * 1024

Row = tuple[str, str, str, object, object, str]


def _iso_ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _Stamps:
    """Formats millisecond timestamps; strftime once per second (it costs ~8 us a call)."""

    def __init__(self, postgres: bool) -> None:
        self._postgres = postgres
        self._second = -1
        self._iso = self._db = ""

    def __call__(self, ms: int) -> tuple[str, object]:
        """(ISO-8601 with ms and Z, the value for the keen_timestamp column)."""
        second, milli = divmod(ms, 1000)
        if second != self._second:
            moment = datetime.fromtimestamp(second, UTC)
            self._second = second
            self._iso = moment.strftime("%Y-%m-%dT%H:%M:%S.")
            self._db = moment.strftime("%Y-%m-%d %H:%M:%S.")
        iso = f"{self._iso}{milli:03d}Z"
        if self._postgres:
            return iso, datetime.fromtimestamp(ms / 1000, UTC)
        return iso, f"{self._db}{milli:03d}000"


def _names_ok(body: dict) -> bool:
    for name in body:
        if not name or "." in name or name[0] == "$":
            return False
    return True


class RowWriter:
    """Owns one raw driver connection, used only from the single writer thread."""

    def __init__(self, database_url: str) -> None:
        self._engine = make_engine(database_url)
        self.postgres = self._engine.dialect.name == "postgresql"
        self._conn = None
        mark = "%s" if self.postgres else "?"
        body = "CAST(%s AS jsonb)" if self.postgres else "?"
        self._sql = (
            "INSERT INTO events (project_id, collection, keen_id, keen_timestamp, created_at, body) "
            f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark}, {body}) "
            "ON CONFLICT (keen_id) DO NOTHING"
        )

    def db_time(self, moment: datetime) -> object:
        # SQLAlchemy's SQLite DateTime storage format, so the worker's models read these rows.
        return moment if self.postgres else moment.strftime("%Y-%m-%d %H:%M:%S.%f")

    def write(self, rows: list[Row]) -> None:
        if self._conn is None:
            self._conn = self._engine.raw_connection()
        cur = self._conn.cursor()
        try:
            cur.executemany(self._sql, rows)
        finally:
            cur.close()
        self._conn.commit()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._engine.dispose()


def build_rows(writer: RowWriter, fetched: dict) -> tuple[list[Row], int]:
    """Rows for the valid records of one batch, and how many were skipped as invalid."""
    now = datetime.now(UTC)
    created_iso, created_db = _iso_ms(now), writer.db_time(now)
    stamps = _Stamps(writer.postgres)
    rows: list[Row] = []
    skipped = 0
    for tp, messages in fetched.items():
        _, project_id, collection = tp.topic.split(".", 2)
        prefix = f"{tp.topic}/{tp.partition}/"
        for m in messages:
            try:
                body = orjson.loads(m.value)
            except orjson.JSONDecodeError:
                skipped += 1
                continue
            if type(body) is not dict or not _names_ok(body):
                skipped += 1
                continue
            keen_id = hashlib.sha1(f"{prefix}{m.offset}".encode()).hexdigest()
            stamp_iso, stamp_db = stamps(m.timestamp)
            body["keen"] = {"id": keen_id, "timestamp": stamp_iso, "created_at": created_iso}
            rows.append(
                (
                    project_id,
                    collection,
                    keen_id,
                    stamp_db,
                    created_db,
                    orjson.dumps(body).decode(),
                )
            )
    return rows, skipped


async def consume(bootstrap: str, database_url: str, group: str, topics: list[str]) -> None:
    """Consume, insert and commit until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    writer = RowWriter(database_url)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="baseline-writer")
    consumer = AIOKafkaConsumer(
        *topics,
        **aiokafka_options(bootstrap),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=MAX_PARTITION_FETCH,
        fetch_max_bytes=64 * 1024 * 1024,
        fetch_max_wait_ms=100,
        max_poll_records=BATCH,
    )
    await consumer.start()
    try:
        while not stopping.is_set():
            fetched = await consumer.getmany(timeout_ms=100, max_records=BATCH)
            if not fetched:
                continue
            rows, _skipped = build_rows(writer, fetched)
            if rows:
                await loop.run_in_executor(executor, writer.write, rows)
            await consumer.commit()
    finally:
        await consumer.stop()
        await loop.run_in_executor(executor, writer.close)
        executor.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--topics", required=True, help="comma-separated topic names")
    args = parser.parse_args(argv)
    topics = [t for t in args.topics.split(",") if t]
    asyncio.run(consume(args.bootstrap, args.database_url, args.group, topics))


if __name__ == "__main__":
    main()
