"""How every backend Kafka client connects: bootstrap servers plus the security settings
(``INBOUND_KAFKA_SECURITY_PROTOCOL``, ``_SASL_*``, ``_SSL_*``), read once from Settings.

The worker's consumer, the DLQ writer, the API's producer, replay's DLQ reads, control
commands, the gateway's backend connections, the CLI and the benchmarks all take their
options from here, so a secured cluster is configured in one place.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from app.settings import Settings

SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})


class KafkaConfigError(ValueError):
    """The backend Kafka settings cannot work together; the message names the setting."""


@dataclass(frozen=True)
class KafkaClientOptions:
    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    check_hostname: bool = True

    def __post_init__(self) -> None:
        if self.uses_sasl and (not self.username or self.password is None):
            raise KafkaConfigError(
                f"INBOUND_KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs "
                "INBOUND_KAFKA_SASL_USERNAME and INBOUND_KAFKA_SASL_PASSWORD"
            )
        if (self.certfile is None) != (self.keyfile is None):
            raise KafkaConfigError(
                "mutual TLS needs both INBOUND_KAFKA_SSL_CERTFILE and INBOUND_KAFKA_SSL_KEYFILE"
            )
        if not self.uses_tls and (self.cafile or self.certfile):
            raise KafkaConfigError(
                "INBOUND_KAFKA_SSL_* files are set but INBOUND_KAFKA_SECURITY_PROTOCOL="
                f"{self.security_protocol} does not use TLS: use SSL or SASL_SSL"
            )
        for name, path in (
            ("INBOUND_KAFKA_SSL_CAFILE", self.cafile),
            ("INBOUND_KAFKA_SSL_CERTFILE", self.certfile),
            ("INBOUND_KAFKA_SSL_KEYFILE", self.keyfile),
        ):
            if path is not None and not path.is_file():
                raise KafkaConfigError(f"{name}={path} is not a readable file")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in SASL_PROTOCOLS

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in TLS_PROTOCOLS

    @property
    def hosts(self) -> list[tuple[str, int]]:
        out = []
        for item in self.bootstrap.split(","):
            host, _, port = item.strip().rpartition(":")
            out.append((host.strip("[]"), int(port)))
        return out

    @cached_property
    def ssl_context(self) -> ssl.SSLContext | None:
        """One context per options object (TLS protocols only); KafkaConfigError for a CA
        file or key pair that cannot be loaded."""
        if not self.uses_tls:
            return None
        try:
            context = ssl.create_default_context(cafile=str(self.cafile) if self.cafile else None)
            if self.certfile and self.keyfile:
                context.load_cert_chain(str(self.certfile), str(self.keyfile))
        except (ssl.SSLError, OSError) as exc:
            raise KafkaConfigError(f"cannot load the backend Kafka TLS files: {exc}") from None
        context.check_hostname = self.check_hostname
        return context

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context
        if self.uses_sasl:
            options.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password,
            )
        return options

    def librdkafka(self) -> dict[str, str]:
        """The same connection as librdkafka properties (confluent-kafka, kcat ``-X``)."""
        conf = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol.lower(),
        }
        if self.uses_sasl:
            conf |= {
                "sasl.mechanisms": self.sasl_mechanism,
                "sasl.username": self.username or "",
                "sasl.password": self.password or "",
            }
        if self.uses_tls:
            if self.cafile:
                conf["ssl.ca.location"] = str(self.cafile)
            if self.certfile and self.keyfile:
                conf["ssl.certificate.location"] = str(self.certfile)
                conf["ssl.key.location"] = str(self.keyfile)
            conf["ssl.endpoint.identification.algorithm"] = (
                "https" if self.check_hostname else "none"
            )
        return conf

    def faust_credentials(self) -> Any:
        """faust's ``broker_credentials`` (None for PLAINTEXT)."""
        import faust

        if self.uses_sasl:
            return faust.SASLCredentials(
                username=self.username,
                password=self.password,
                ssl_context=self.ssl_context,
                mechanism=self.sasl_mechanism,
            )
        if self.uses_tls:
            return faust.SSLCredentials(self.ssl_context)
        return None

    def describe(self) -> str:
        """What a log line may say about the connection (never the password)."""
        who = f" as {self.username} ({self.sasl_mechanism})" if self.uses_sasl else ""
        return f"{self.bootstrap} over {self.security_protocol}{who}"


def kafka_options(settings: Settings, bootstrap: str | None = None) -> KafkaClientOptions | None:
    """The backend options of ``settings`` (``bootstrap`` overrides the address, as the
    local runner's); None when no bootstrap is known. KafkaConfigError for settings that
    cannot work together."""
    address = bootstrap or settings.kafka_bootstrap
    if not address:
        return None
    return KafkaClientOptions(
        bootstrap=address,
        security_protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password,
        cafile=settings.kafka_ssl_cafile,
        certfile=settings.kafka_ssl_certfile,
        keyfile=settings.kafka_ssl_keyfile,
        check_hostname=settings.kafka_ssl_check_hostname,
    )


def plaintext(bootstrap: str) -> KafkaClientOptions:
    """Options for a PLAINTEXT cluster, as the local runner starts by default."""
    return KafkaClientOptions(bootstrap=bootstrap)
