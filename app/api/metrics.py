"""Prometheus metrics of the API process (served at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "inbound_api_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "inbound_api_request_seconds",
    "HTTP request latency by route template.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS_PRODUCED = Counter(
    "inbound_api_events_produced_total", "Events the stream API produced to Kafka."
)
EVENTS_REFUSED = Counter(
    "inbound_api_events_refused_total",
    "Events the stream API refused up front, by error code.",
    ["code"],
)
REPLAYED = Counter(
    "inbound_api_replayed_total", "Rejected events re-produced by a replay.", ["outcome"]
)
