"""The secured local broker is real: its SASL_SSL listener takes each SCRAM user and the PLAIN
user with their passwords, refuses a wrong password, and the start-up check explains each
wrong setting by the setting's name."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from app.kafka.client_options import KafkaClientOptions
from app.kafka.connect_check import BackendUnavailable, check_backend
from app.kafka.secured_local import SecuredKafka
from app.tls.dev_certs import make_dev_certs
from tests.support.secured_kafka import read_records

MECHANISMS = ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]


async def _round_trip(options: KafkaClientOptions, topic: str, value: bytes) -> list[bytes]:
    producer = AIOKafkaProducer(**options.aiokafka(), request_timeout_ms=15000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()
    return [r.value for r in await read_records(options, topic, 1)]


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_each_mechanism_produces_and_consumes_over_sasl_ssl(
    secured_kafka: SecuredKafka, mechanism: str
) -> None:
    options = secured_kafka.options(mechanism)
    assert options.security_protocol == "SASL_SSL"
    topic = f"secured-{mechanism.lower()}-{uuid.uuid4().hex[:6]}"
    value = f"hello over {mechanism}".encode()

    assert asyncio.run(_round_trip(options, topic, value)) == [value]


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_a_wrong_password_is_refused(secured_kafka: SecuredKafka, mechanism: str) -> None:
    async def start(password: str | None) -> None:
        producer = AIOKafkaProducer(
            **secured_kafka.options(mechanism, password=password).aiokafka(),
            request_timeout_ms=10000,
        )
        try:
            await producer.start()
        finally:
            await producer.stop()

    asyncio.run(start(None))  # the right password: the same client gets in
    with pytest.raises(KafkaConnectionError):
        asyncio.run(start("not-the-password"))


def test_the_users_have_their_own_passwords(secured_kafka: SecuredKafka) -> None:
    # SCRAM-SHA-512's user with SCRAM-SHA-256's password is a wrong password, not a login.
    wrong = secured_kafka.passwords["SCRAM-SHA-256"]
    with pytest.raises(BackendUnavailable):
        asyncio.run(check_backend(secured_kafka.options("SCRAM-SHA-512", password=wrong)))


def test_check_names_the_password_settings_for_a_wrong_password(
    secured_kafka: SecuredKafka,
) -> None:
    asyncio.run(check_backend(secured_kafka.options("SCRAM-SHA-512")))
    with pytest.raises(BackendUnavailable) as caught:
        asyncio.run(check_backend(secured_kafka.options("SCRAM-SHA-512", password="wrong")))
    message = str(caught.value)
    assert "INBOUND_KAFKA_SASL_PASSWORD" in message
    assert "inbound512" in message
    assert secured_kafka.passwords["SCRAM-SHA-512"] not in message


def test_check_names_the_ca_setting_for_an_untrusted_certificate(
    secured_kafka: SecuredKafka, tmp_path: Path
) -> None:
    other_ca = Path(make_dev_certs(tmp_path / "other")["ca_cert"])
    with pytest.raises(BackendUnavailable) as caught:
        asyncio.run(check_backend(secured_kafka.options(cafile=other_ca)))
    assert "INBOUND_KAFKA_SSL_CAFILE" in str(caught.value)
    assert "not trusted" in str(caught.value)


def test_check_names_the_protocol_setting_for_plaintext_on_the_tls_port(
    secured_kafka: SecuredKafka,
) -> None:
    plaintext = KafkaClientOptions(bootstrap=secured_kafka.bootstrap)
    with pytest.raises(BackendUnavailable) as caught:
        asyncio.run(check_backend(plaintext, timeout=5.0))
    assert "INBOUND_KAFKA_SECURITY_PROTOCOL" in str(caught.value)
    assert caught.value.permanent


def test_the_plaintext_listener_stays_for_admin(secured_kafka: SecuredKafka) -> None:
    topic = f"secured-admin-{uuid.uuid4().hex[:6]}"
    plain = KafkaClientOptions(bootstrap=secured_kafka.plain_bootstrap)
    assert asyncio.run(_round_trip(plain, topic, b"admin")) == [b"admin"]
