"""Signatures verify with the standardwebhooks package and with a verifier written from the spec."""

from __future__ import annotations

import time

import pytest
from standardwebhooks.webhooks import Webhook as StandardVerifier
from standardwebhooks.webhooks import WebhookVerificationError

from app.webhooks.signing import generate_secret, secret_key, sign, webhook_headers
from tests.webhooks.helpers import verify_from_spec


def test_secret_format() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(secret_key(secret)) == 32
    assert generate_secret() != secret


def test_signature_verifies_with_independent_implementations() -> None:
    secret = generate_secret()
    body = '{"type":"ingest.failed","data":{"π":1}}'.encode()
    headers = webhook_headers([secret], "msg_abc", int(time.time()), body)
    assert StandardVerifier(secret).verify(body, headers) == {
        "type": "ingest.failed",
        "data": {"π": 1},
    }
    assert verify_from_spec(secret, headers, body)


def test_tampering_and_wrong_secret_fail() -> None:
    secret = generate_secret()
    body = b'{"a":1}'
    headers = webhook_headers([secret], "msg_1", int(time.time()), body)
    with pytest.raises(WebhookVerificationError):
        StandardVerifier(secret).verify(b'{"a":2}', headers)
    with pytest.raises(WebhookVerificationError):
        StandardVerifier(generate_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        StandardVerifier(secret).verify(body, {**headers, "webhook-id": "msg_2"})
    assert not verify_from_spec(secret, {**headers, "webhook-timestamp": "1"}, body)


def test_two_secrets_during_rotation() -> None:
    old, new = generate_secret(), generate_secret()
    body = b"{}"
    headers = webhook_headers([new, old], "msg_r", int(time.time()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    StandardVerifier(old).verify(body, headers)
    StandardVerifier(new).verify(body, headers)


def test_known_vector() -> None:
    # Worked by hand from the spec: key = 32 zero bytes.
    import base64
    import hashlib
    import hmac

    secret = "whsec_" + base64.b64encode(bytes(32)).decode()
    expected = base64.b64encode(
        hmac.new(bytes(32), b"msg_x.1700000000.hello", hashlib.sha256).digest()
    ).decode()
    assert sign(secret, "msg_x", 1700000000, b"hello") == f"v1,{expected}"
