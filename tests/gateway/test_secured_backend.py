"""The gateway against a backend that takes only SASL_SSL: a customer's records reach the
backend topic through TLS and a SCRAM (or PLAIN) login, and a wrong password, CA or protocol
stops the gateway at start-up with one error naming the INBOUND_KAFKA_* setting to fix."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.contract.topics import inbound_topic
from app.gateway.backend import BackendSettingsError
from app.kafka.secured_local import SecuredKafka
from app.tls.dev_certs import make_dev_certs
from tests.gateway.conftest import make_edge
from tests.gateway.helpers import producer_for
from tests.support.cli import inbound, inbound_env
from tests.support.secured_kafka import read_records_sync

pytestmark = pytest.mark.kafka


def _start_edge(make_settings, sqlite_url, secured: SecuredKafka, dev_certs, mechanism, **wrong):  # noqa: ANN001, ANN202
    backend = secured.settings(mechanism, **wrong)
    bootstrap = backend.pop("kafka_bootstrap")
    return make_edge(make_settings, sqlite_url, bootstrap, dev_certs, **backend)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_records_reach_the_secured_backend(
    make_settings, sqlite_url, secured_kafka: SecuredKafka, dev_certs, new_project, mechanism
) -> None:  # noqa: ANN001
    thread, edge = _start_edge(make_settings, sqlite_url, secured_kafka, dev_certs, mechanism)
    try:
        p = new_project()

        async def produce() -> None:
            producer = producer_for(edge, p["project_id"], p["write_key"])
            await producer.start()
            try:
                for i in range(3):
                    await producer.send_and_wait("purchases", f'{{"n": {i}}}'.encode())
            finally:
                await producer.stop()

        asyncio.run(produce())
    finally:
        thread.stop()
    topic = inbound_topic(p["project_id"], "purchases")
    records = read_records_sync(secured_kafka.options(mechanism), topic, 3)
    assert sorted(r.value for r in records) == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']


def test_a_wrong_password_stops_start_up_naming_the_setting(
    make_settings, sqlite_url, secured_kafka: SecuredKafka, dev_certs
) -> None:  # noqa: ANN001
    with pytest.raises(BackendSettingsError) as caught:
        _start_edge(
            make_settings,
            sqlite_url,
            secured_kafka,
            dev_certs,
            "SCRAM-SHA-512",
            kafka_sasl_password="not-the-password",
        )
    message = str(caught.value)
    assert "INBOUND_KAFKA_SASL_PASSWORD" in message
    assert "inbound512" in message
    assert "not-the-password" not in message


def test_an_untrusted_certificate_stops_start_up_naming_the_setting(
    make_settings, sqlite_url, secured_kafka: SecuredKafka, dev_certs, tmp_path: Path
) -> None:  # noqa: ANN001
    other_ca = Path(make_dev_certs(tmp_path / "other-ca")["ca_cert"])
    with pytest.raises(BackendSettingsError) as caught:
        _start_edge(
            make_settings,
            sqlite_url,
            secured_kafka,
            dev_certs,
            "SCRAM-SHA-512",
            kafka_ssl_cafile=other_ca,
        )
    assert "INBOUND_KAFKA_SSL_CAFILE" in str(caught.value)
    assert "not trusted" in str(caught.value)


def test_plaintext_to_the_tls_listener_stops_start_up_naming_the_setting(
    make_settings, sqlite_url, secured_kafka: SecuredKafka, dev_certs
) -> None:  # noqa: ANN001
    with pytest.raises(BackendSettingsError) as caught:
        make_edge(make_settings, sqlite_url, secured_kafka.bootstrap, dev_certs)
    assert "INBOUND_KAFKA_SECURITY_PROTOCOL" in str(caught.value)


def test_tls_to_the_plaintext_listener_stops_start_up_naming_the_setting(
    make_settings, sqlite_url, secured_kafka: SecuredKafka, dev_certs
) -> None:  # noqa: ANN001
    with pytest.raises(BackendSettingsError) as caught:
        _start_edge(
            make_settings,
            sqlite_url,
            secured_kafka,
            dev_certs,
            "SCRAM-SHA-512",
            kafka_bootstrap=secured_kafka.plain_bootstrap,
        )
    assert "INBOUND_KAFKA_SECURITY_PROTOCOL" in str(caught.value)


def test_inbound_gateway_exits_once_on_a_wrong_password(
    secured_kafka: SecuredKafka, sqlite_url: str, dev_certs, tmp_path: Path
) -> None:  # noqa: ANN001
    env = inbound_env(
        **{
            **secured_kafka.env("SCRAM-SHA-256"),
            "INBOUND_KAFKA_SASL_PASSWORD": "not-the-password",
        },
        INBOUND_DATA_DIR=str(tmp_path / "data"),
        INBOUND_DATABASE_URL=sqlite_url,
        INBOUND_GATEWAY_PORT="0",
        INBOUND_GATEWAY_TLS_CERT=dev_certs["server_cert"],
        INBOUND_GATEWAY_TLS_KEY=dev_certs["server_key"],
    )
    result = inbound("gateway", env=env, timeout=60)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert output.count("INBOUND_KAFKA_SASL_PASSWORD") == 1, output[-3000:]
    assert "not-the-password" not in output
