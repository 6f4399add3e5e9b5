"""Inbound: Kafka inbound ingest for event analytics with a real dead-letter queue."""

__version__ = "0.1.0"
