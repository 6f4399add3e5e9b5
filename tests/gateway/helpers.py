"""aiokafka clients configured against a test gateway."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.helpers import create_ssl_context

from tests.gateway.conftest import Edge


def client_options(edge: Edge, user: str, password: str) -> dict[str, Any]:
    return {
        "bootstrap_servers": edge.tls_bootstrap,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": user,
        "sasl_plain_password": password,
        "ssl_context": create_ssl_context(cafile=edge.certs["ca_cert"]),
        "request_timeout_ms": 15000,
    }


def producer_for(edge: Edge, user: str, password: str, **kw: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(**{**client_options(edge, user, password), **kw})


def consumer_for(edge: Edge, user: str, password: str, *topics: str, **kw: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(*topics, **{**client_options(edge, user, password), **kw})
