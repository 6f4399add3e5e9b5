"""One connection attempt to the backend Kafka at start-up, so a wrong password, CA or
mechanism is one clear error naming the setting, not a client retrying forever in a loop.

Each bootstrap server is tried once (TLS handshake, SASL, an ApiVersions round trip) with
aiokafka's own connection; the first that answers is enough.
"""

from __future__ import annotations

import asyncio
import ssl

from aiokafka import errors as kafka_errors
from aiokafka.conn import create_conn

from app.kafka.client_options import KafkaClientOptions


class BackendUnavailable(RuntimeError):
    """The backend Kafka cannot be used now; the message says what to fix. ``permanent``:
    the settings themselves are wrong (TLS trust, SASL credentials or mechanism), so retrying
    cannot help; otherwise the brokers may just not be up yet."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def _is_tls_alert(exc: BaseException) -> bool:
    """A TLS listener answers a plaintext request with an alert record (0x15 0x03 ...), which
    a Kafka client reads as a frame of some 350 MB; a connection merely cut short expects a
    frame of ordinary size."""
    return isinstance(exc, asyncio.IncompleteReadError) and (exc.expected or 0) >= 0x15000000


def is_permanent(exc: BaseException) -> bool:
    """Whether a connection failure comes from the settings rather than the network."""
    return (
        isinstance(exc, ssl.SSLError)
        or _is_tls_alert(exc)
        or (isinstance(exc, kafka_errors.KafkaError) and "sasl" in type(exc).__name__.lower())
    )


def _explain(options: KafkaClientOptions, host: str, port: int, exc: BaseException) -> str:
    where = f"backend Kafka {host}:{port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"{where}: its TLS certificate is not trusted ({exc.verify_message}); set "
            "INBOUND_KAFKA_SSL_CAFILE to the CA that signed the brokers' certificates"
            + (
                " (or INBOUND_KAFKA_SSL_CHECK_HOSTNAME=false if it does not name this host)"
                if "hostname" in (exc.verify_message or "").lower()
                or "IP address" in (exc.verify_message or "")
                else ""
            )
        )
    if isinstance(exc, ssl.SSLError):
        return (
            f"{where}: the TLS handshake failed ({exc.reason or exc}); check that the listener "
            f"speaks {options.security_protocol} and the INBOUND_KAFKA_SSL_* files"
        )
    if isinstance(exc, kafka_errors.UnsupportedSaslMechanismError):
        return (
            f"{where}: the broker does not enable SASL mechanism {options.sasl_mechanism} on "
            "this listener; set INBOUND_KAFKA_SASL_MECHANISM to one it enables"
        )
    if isinstance(exc, kafka_errors.KafkaError) and "sasl" in type(exc).__name__.lower():
        return (
            f"{where}: SASL authentication as {options.username!r} "
            f"({options.sasl_mechanism}) failed; check INBOUND_KAFKA_SASL_USERNAME, "
            "INBOUND_KAFKA_SASL_PASSWORD and INBOUND_KAFKA_SASL_MECHANISM"
        )
    if _is_tls_alert(exc):
        return (
            f"{where} answered in another protocol than {options.security_protocol} (a TLS "
            "listener reached without TLS, or the reverse); check "
            "INBOUND_KAFKA_SECURITY_PROTOCOL and INBOUND_KAFKA_BOOTSTRAP"
        )
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return (
            f"{where} did not answer in time over {options.security_protocol}; check "
            "INBOUND_KAFKA_BOOTSTRAP and INBOUND_KAFKA_SECURITY_PROTOCOL (a TLS listener "
            "reached in PLAINTEXT, or the reverse, stays silent)"
        )
    if isinstance(exc, ConnectionError | OSError):
        return f"cannot reach {where}: {exc}; check INBOUND_KAFKA_BOOTSTRAP"
    return f"{where}: {type(exc).__name__}: {exc}"


async def check_backend(options: KafkaClientOptions, timeout: float = 10.0) -> None:
    """Returns when one bootstrap server accepts these settings; BackendUnavailable (with
    every server's reason) when none does."""
    reasons = []
    permanent = False
    kwargs = options.aiokafka()
    kwargs.pop("bootstrap_servers")
    for host, port in options.hosts:
        try:
            conn = await asyncio.wait_for(
                create_conn(
                    host,
                    port,
                    client_id="inbound-check",
                    request_timeout_ms=int(timeout * 1000),
                    **kwargs,
                ),
                timeout,
            )
        except BaseException as exc:  # noqa: BLE001 - every failure is reported, by kind
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
                raise
            root = _root(exc)
            permanent = permanent or is_permanent(root)
            reasons.append(_explain(options, host, port, root))
            continue
        conn.close()
        return
    raise BackendUnavailable("; ".join(reasons), permanent=permanent)


def _root(exc: BaseException) -> BaseException:
    """aiokafka wraps a TLS or socket error in KafkaConnectionError: the cause says more."""
    seen = 0
    while isinstance(exc, kafka_errors.KafkaConnectionError) and exc.__cause__ and seen < 5:
        exc = exc.__cause__
        seen += 1
    return exc


def check_backend_sync(options: KafkaClientOptions, timeout: float = 10.0) -> None:
    asyncio.run(check_backend(options, timeout))
