"""`inbound kafka status` for a configured backend (INBOUND_KAFKA_BOOTSTRAP): connect with the
backend security settings and describe the cluster, or say why it cannot be used."""

from __future__ import annotations

import asyncio
from typing import Any

from app.kafka.client_options import KafkaClientOptions
from app.kafka.connect_check import BackendUnavailable, check_backend


async def _describe(kafka: KafkaClientOptions, timeout: float) -> dict[str, Any]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(request_timeout_ms=int(timeout * 1000), **kafka.aiokafka())
    await admin.start()
    try:
        info = await admin.describe_cluster()
    finally:
        await admin.close()
    return info


def backend_status(kafka: KafkaClientOptions, timeout: float = 10.0) -> dict[str, Any]:
    """``running`` true with the cluster's brokers, or false with ``error`` saying what to fix."""
    base: dict[str, Any] = {
        "bootstrap": kafka.bootstrap,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.uses_sasl:
        base |= {"sasl_mechanism": kafka.sasl_mechanism, "sasl_username": kafka.username}
    try:
        asyncio.run(check_backend(kafka, timeout))
        info = asyncio.run(asyncio.wait_for(_describe(kafka, timeout), timeout * 2))
    except BackendUnavailable as exc:
        return {**base, "running": False, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - reported to the user as it is
        return {**base, "running": False, "error": f"{type(exc).__name__}: {exc}"}
    brokers = [
        {"node_id": b.get("node_id"), "host": b.get("host"), "port": b.get("port")}
        for b in info.get("brokers", [])
    ]
    return {
        **base,
        "running": True,
        "cluster_id": info.get("cluster_id"),
        "controller_id": info.get("controller_id"),
        "brokers": brokers,
    }
