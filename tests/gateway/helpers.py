"""aiokafka clients configured against a test gateway."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.helpers import create_ssl_context

from app.store.db import engine_for, session_scope
from app.store.keys import hash_key
from app.store.models import ApiKey
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


def key_id_of(sqlite_url: str, secret: str) -> str:
    """The id of the API key whose secret is ``secret`` (what ``inbound.key_id`` carries)."""
    with session_scope(engine_for(sqlite_url)) as session:
        return session.query(ApiKey).filter_by(key_hash=hash_key(secret)).one().id


async def put_in_backend(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """Write records straight to a backend topic (not through the gateway), as a DLQ writer."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(
                topic, v, headers=[("inbound.error.code", b"invalid_json")]
            )
    finally:
        await producer.stop()
