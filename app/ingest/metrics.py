"""Prometheus metrics of the ingest worker."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ACCEPTED = Counter("inbound_events_accepted_total", "Events stored.")
REJECTED = Counter(
    "inbound_events_rejected_total", "Events dead-lettered, by error code.", ["code"]
)
BATCH_SECONDS = Histogram(
    "inbound_batch_seconds",
    "Time to process, persist and commit one batch.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "inbound_batch_records", "Records per batch.", buckets=(1, 10, 100, 500, 1000, 2000, 5000)
)
CONSUMER_LAG = Gauge(
    "inbound_consumer_lag",
    "Records behind the end of the inbound topics (log end - committed offsets).",
)
STALLED_PARTITIONS = Gauge(
    "inbound_stalled_partitions",
    "Partitions with lag whose committed offset has not moved for INBOUND_WORKER_STALL_SECONDS.",
)
PAUSED_PARTITIONS = Gauge(
    "inbound_paused_partitions", "Partitions paused by the DLQ circuit breaker."
)
HEALTHY = Gauge("inbound_worker_healthy", "1 when the worker reaches the database and Kafka.")
INFRA_RETRIES = Counter(
    "inbound_infrastructure_retries_total",
    "Batches retried after a database or broker failure.",
    ["cause"],
)
