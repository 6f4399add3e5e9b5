"""End to end through the gateway with two more standard clients: confluent-kafka, kafka-python."""

from __future__ import annotations

import asyncio
import json

import pytest

from app.contract.topics import dlq_topic, inbound_topic
from tests.gateway.conftest import Edge, backend_records
from tests.gateway.helpers import key_id_of, put_in_backend

pytestmark = pytest.mark.kafka


def _values(n: int, client: str) -> list[bytes]:
    return [json.dumps({"client": client, "n": i}).encode() for i in range(n)]


def test_confluent_kafka_producer_acks_all_idempotent(
    edge: Edge, new_project, sqlite_url: str
) -> None:
    confluent_kafka = pytest.importorskip("confluent_kafka")
    p = new_project()
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": edge.tls_bootstrap,
            "security.protocol": "SASL_SSL",
            "sasl.mechanisms": "PLAIN",
            "sasl.username": p["project_id"],
            "sasl.password": p["write_key"],
            "ssl.ca.location": edge.certs["ca_cert"],
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": 30000,
        }
    )
    values = _values(5, "confluent")
    reports: list = []

    def on_delivery(err, msg) -> None:  # noqa: ANN001 - librdkafka callback
        reports.append((err, msg.offset() if err is None else None))

    for v in values:
        producer.produce("purchases", v, on_delivery=on_delivery)
    left = producer.flush(45)
    assert left == 0, f"{left} records undelivered; reports: {reports}"
    assert len(reports) == len(values)
    assert all(err is None and offset >= 0 for err, offset in reports), reports

    records = backend_records(edge.backend, inbound_topic(p["project_id"], "purchases"), 5)
    assert sorted(r.value for r in records) == sorted(values)
    want = key_id_of(sqlite_url, p["write_key"]).encode()
    assert all(("inbound.key_id", want) in r.headers for r in records)


def test_kafka_python_producer_over_sasl_ssl(edge: Edge, new_project, sqlite_url: str) -> None:
    from kafka import KafkaProducer

    p = new_project()
    producer = KafkaProducer(
        bootstrap_servers=edge.tls_bootstrap,
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_plain_username=p["project_id"],
        sasl_plain_password=p["write_key"],
        ssl_cafile=edge.certs["ca_cert"],
        acks="all",
        request_timeout_ms=15000,
    )
    values = _values(5, "kafka-python")
    try:
        futures = [producer.send("purchases", v) for v in values]
        producer.flush(30)
        metas = [f.get(timeout=30) for f in futures]
        assert all(m.offset >= 0 and m.topic == "purchases" for m in metas)
    finally:
        producer.close(10)

    records = backend_records(edge.backend, inbound_topic(p["project_id"], "purchases"), 5)
    assert sorted(r.value for r in records) == sorted(values)
    want = key_id_of(sqlite_url, p["write_key"]).encode()
    assert all(("inbound.key_id", want) in r.headers for r in records)


def test_kafka_python_consumer_group_reads_own_dlq(edge: Edge, new_project) -> None:
    from kafka import KafkaConsumer

    p = new_project()
    asyncio.run(
        put_in_backend(edge.backend, dlq_topic(p["project_id"], "purchases"), [b"bad-1", b"bad-2"])
    )
    consumer = KafkaConsumer(
        "purchases-DLQ",
        bootstrap_servers=edge.tls_bootstrap,
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_plain_username=p["project_id"],
        sasl_plain_password=p["write_key"],
        ssl_cafile=edge.certs["ca_cert"],
        group_id="fixers",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        request_timeout_ms=30000,
    )
    try:
        got: list = []
        for _ in range(30):
            for records in consumer.poll(timeout_ms=1000).values():
                got.extend(records)
            if len(got) >= 2:
                break
        assert sorted(r.value for r in got) == [b"bad-1", b"bad-2"]
        assert all(r.topic == "purchases-DLQ" for r in got)
        assert all(("inbound.error.code", b"invalid_json") in r.headers for r in got)
        consumer.commit()
        from kafka import TopicPartition

        committed = consumer.committed(TopicPartition("purchases-DLQ", got[0].partition))
        assert committed is not None and committed >= 1
    finally:
        consumer.close()
