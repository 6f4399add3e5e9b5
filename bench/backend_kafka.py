"""The benchmarks' connection to the backend Kafka: the broker they start is PLAINTEXT; one
named with ``--bootstrap`` is reached with the backend security settings of the environment
(INBOUND_KAFKA_SECURITY_PROTOCOL, _SASL_*, _SSL_*), as the worker and the API reach it."""

from __future__ import annotations

from typing import Any

from app.kafka.client_options import KafkaClientOptions, kafka_options
from app.settings import Settings


def backend(bootstrap: str) -> KafkaClientOptions:
    options = kafka_options(Settings(), bootstrap)
    assert options is not None
    return options


def aiokafka_options(bootstrap: str) -> dict[str, Any]:
    """Keyword arguments for an aiokafka client of the backend at ``bootstrap``."""
    return backend(bootstrap).aiokafka()


def kcat_options(bootstrap: str) -> list[str]:
    """kcat's ``-b`` and ``-X`` arguments for the backend at ``bootstrap``."""
    args = ["-b", bootstrap]
    for name, value in backend(bootstrap).librdkafka().items():
        if name != "bootstrap.servers":
            args += ["-X", f"{name}={value}"]
    return args
