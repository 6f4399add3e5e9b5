"""Logging in to a backend broker: SaslHandshake, then SaslAuthenticate rounds for PLAIN or
SCRAM-SHA-256/512 (RFC 5802 / RFC 7677, as Kafka speaks them: no channel binding).

Runs on a fresh connection before anything else is sent on it. A refusal raises
``LoginRefused`` whose message names the INBOUND_KAFKA_* setting to fix; the password never
appears in a message.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable

from kafka.protocol.api_message import ApiMessage
from kafka.protocol.sasl import SaslAuthenticateRequest, SaslHandshakeRequest

from app.kafka.client_options import KafkaClientOptions

# Both versions are in every broker since Kafka 1.0 and not flexible (plain headers).
HANDSHAKE_VERSION = 1
AUTHENTICATE_VERSION = 1
# Kafka error codes seen during a login.
_UNSUPPORTED_SASL_MECHANISM = 33
_ILLEGAL_SASL_STATE = 34
_SASL_AUTHENTICATION_FAILED = 58

Exchange = Callable[[ApiMessage, int], Awaitable[ApiMessage]]


class LoginRefused(Exception):
    """The broker did not accept the login; the message says which setting to look at."""


class ScramError(ValueError):
    """The server's SCRAM messages are malformed or do not prove it knows the password."""


_HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}


@functools.lru_cache(maxsize=16)
def _salted_password(hash_name: str, password: str, salt: bytes, iterations: int) -> bytes:
    # Thousands of HMAC rounds: every backend connection of a session logs in with the same
    # salt and count, so the result is computed once, not once per connection.
    return hashlib.pbkdf2_hmac(hash_name, password.encode(), salt, iterations)


def _attributes(message: str) -> dict[str, str]:
    out = {}
    for part in message.split(","):
        key, sep, value = part.partition("=")
        if not sep or len(key) != 1:
            raise ScramError(f"malformed SCRAM attribute {part[:20]!r}")
        out[key] = value
    return out


class ScramClient:
    """The client side of one SCRAM exchange: first message, final message, server check."""

    def __init__(
        self, mechanism: str, username: str, password: str, nonce: str | None = None
    ) -> None:
        self._hash = _HASHES[mechanism]
        self._password = password
        # saslname: "=" and "," are escaped (RFC 5802 section 5.1).
        name = username.replace("=", "=3D").replace(",", "=2C")
        self._nonce = nonce or secrets.token_urlsafe(24)  # ``nonce``: for test vectors
        self._first_bare = f"n={name},r={self._nonce}"
        self._auth_message = b""
        self._salted = b""

    def first(self) -> bytes:
        return f"n,,{self._first_bare}".encode()

    def final(self, server_first: bytes) -> bytes:
        text = server_first.decode()
        attrs = _attributes(text)
        if "m" in attrs:
            raise ScramError("server asks for a SCRAM extension this client does not know")
        nonce, salt, iterations = attrs.get("r", ""), attrs.get("s"), attrs.get("i", "")
        if not nonce.startswith(self._nonce) or nonce == self._nonce:
            raise ScramError("server nonce does not extend the client's")
        if salt is None or not iterations.isdigit() or int(iterations) < 1:
            raise ScramError("server-first-message lacks a salt or iteration count")
        self._salted = _salted_password(
            self._hash, self._password, base64.b64decode(salt), int(iterations)
        )
        without_proof = f"c=biws,r={nonce}"  # biws: base64 of "n,,", no channel binding
        self._auth_message = f"{self._first_bare},{text},{without_proof}".encode()
        client_key = self._hmac(self._salted, b"Client Key")
        stored_key = hashlib.new(self._hash, client_key).digest()
        signature = self._hmac(stored_key, self._auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> None:
        attrs = _attributes(server_final.decode())
        if "e" in attrs:
            raise ScramError(f"server refused: {attrs['e']}")
        server_key = self._hmac(self._salted, b"Server Key")
        expected = self._hmac(server_key, self._auth_message)
        if not hmac.compare_digest(base64.b64decode(attrs.get("v", "")), expected):
            raise ScramError("server signature does not match: it does not know the password")

    def _hmac(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, self._hash).digest()


def _settings_hint(options: KafkaClientOptions) -> str:
    return (
        f"SASL authentication as {options.username!r} ({options.sasl_mechanism}) failed; "
        "check INBOUND_KAFKA_SASL_USERNAME, INBOUND_KAFKA_SASL_PASSWORD and "
        "INBOUND_KAFKA_SASL_MECHANISM"
    )


async def _authenticate(
    exchange: Exchange, auth_bytes: bytes, options: KafkaClientOptions
) -> bytes:
    resp = await exchange(SaslAuthenticateRequest(auth_bytes=auth_bytes), AUTHENTICATE_VERSION)
    if resp.error_code == _SASL_AUTHENTICATION_FAILED:
        raise LoginRefused(_settings_hint(options))
    if resp.error_code:
        raise LoginRefused(
            f"SASL authentication failed with error {resp.error_code} "
            f"({resp.error_message}); check INBOUND_KAFKA_SASL_MECHANISM"
        )
    return bytes(resp.auth_bytes or b"")


async def login(exchange: Exchange, options: KafkaClientOptions) -> None:
    """Log in with ``options``' mechanism and credentials; ``exchange`` sends one request and
    returns its answer."""
    mechanism = options.sasl_mechanism
    assert options.username is not None and options.password is not None
    shake = await exchange(SaslHandshakeRequest(mechanism=mechanism), HANDSHAKE_VERSION)
    if shake.error_code == _UNSUPPORTED_SASL_MECHANISM:
        raise LoginRefused(
            f"the broker does not enable SASL mechanism {mechanism} on this listener (it "
            f"enables {', '.join(shake.mechanisms) or 'none'}); set INBOUND_KAFKA_SASL_MECHANISM"
        )
    if shake.error_code == _ILLEGAL_SASL_STATE:
        raise LoginRefused(
            "the listener does not expect a SASL login; check INBOUND_KAFKA_SECURITY_PROTOCOL"
        )
    if shake.error_code:
        raise LoginRefused(f"SaslHandshake failed with error {shake.error_code}")
    if mechanism == "PLAIN":
        await _authenticate(exchange, f"\0{options.username}\0{options.password}".encode(), options)
        return
    scram = ScramClient(mechanism, options.username, options.password)
    try:
        server_first = await _authenticate(exchange, scram.first(), options)
        server_final = await _authenticate(exchange, scram.final(server_first), options)
        scram.verify(server_final)
    except ValueError as exc:  # ScramError, or server messages that are not UTF-8 / base64
        raise LoginRefused(f"{_settings_hint(options)} ({exc})") from None
