"""Webhook retry schedule and Standard Webhooks signing, pinned from the README and the spec
(edges written for mutation testing: tools/mutation.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from datetime import UTC, datetime, timedelta

import pytest

from app.webhooks import schedule, signing

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


class _Fixed(random.Random):
    """An rng whose random() is a given value: the jitter is then exact."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def test_schedule_constants_are_the_readme_ones() -> None:
    # README: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, 10 h; 11 attempts; 10%
    # jitter; Retry-After capped at 24 h.
    assert schedule.RETRY_SCHEDULE == (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 36000)
    assert schedule.MAX_ATTEMPTS == 11
    assert schedule.JITTER == pytest.approx(0.10)
    assert schedule.MAX_RETRY_AFTER == 86400


def test_retry_delay_is_base_plus_exact_jitter() -> None:
    assert schedule.retry_delay(1, _Fixed(0.0)) == 5
    assert schedule.retry_delay(1, _Fixed(1.0)) == pytest.approx(5.5)
    assert schedule.retry_delay(4, _Fixed(0.5)) == pytest.approx(630.0)
    assert schedule.retry_delay(10, _Fixed(0.0)) == 36000
    assert schedule.retry_delay(11, _Fixed(0.0)) is None
    assert schedule.retry_delay(0, _Fixed(0.0)) is None
    assert schedule.retry_delay(-1, _Fixed(0.0)) is None


def test_retry_delay_without_an_rng_uses_the_module_random() -> None:
    random.seed(1)
    first = schedule.retry_delay(2)
    random.seed(1)
    assert schedule.retry_delay(2) == first
    assert first is not None and 30 <= first <= 33


def test_retry_after_delta_seconds() -> None:
    assert schedule.parse_retry_after("120", NOW) == 120.0
    assert schedule.parse_retry_after("  7 ", NOW) == 7.0
    assert schedule.parse_retry_after("86400", NOW) == 86400
    assert schedule.parse_retry_after("86401", NOW) == 86400
    assert schedule.parse_retry_after("0", NOW) is None
    assert schedule.parse_retry_after("", NOW) is None
    assert schedule.parse_retry_after(None, NOW) is None
    assert schedule.parse_retry_after("soon", NOW) is None
    assert schedule.parse_retry_after("-5", NOW) is None


def test_retry_after_http_date() -> None:
    later = "Thu, 01 Jan 2026 12:01:30 GMT"
    assert schedule.parse_retry_after(later, NOW) == 90.0
    assert schedule.parse_retry_after("Thu, 01 Jan 2026 11:59:00 GMT", NOW) is None
    assert schedule.parse_retry_after("Thu, 01 Jan 2026 12:00:00 GMT", NOW) is None
    far = (NOW + timedelta(days=3)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert schedule.parse_retry_after(far, NOW) == 86400
    # A date without a zone (-0000) is taken as UTC.
    assert schedule.parse_retry_after("Thu, 01 Jan 2026 12:00:10 -0000", NOW) == 10.0


# --- signing (Standard Webhooks) -----------------------------------------------------------

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def _expected(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def test_generated_secret_is_whsec_and_32_random_bytes() -> None:
    secret = signing.generate_secret()
    assert secret.startswith("whsec_")
    raw = base64.b64decode(secret[len("whsec_") :], validate=True)
    assert len(raw) == 32
    assert signing.secret_key(secret) == raw


def test_secret_key_refuses_other_prefixes() -> None:
    assert signing.secret_key(SECRET) == bytes(range(32))
    with pytest.raises(ValueError, match="a webhook secret starts with whsec_"):
        signing.secret_key("xwhsec_" + SECRET[6:])


def test_sign_is_the_spec_hmac() -> None:
    body = b'{"a":1}'
    assert signing.sign(SECRET, "msg_1", 1700000000, body) == _expected(
        SECRET, "msg_1", 1700000000, body
    )


def test_headers_carry_one_signature_per_secret() -> None:
    other = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = b"{}"
    out = signing.webhook_headers([SECRET, other], "msg_2", 1700000001, body)
    assert out == {
        "webhook-id": "msg_2",
        "webhook-timestamp": "1700000001",
        "webhook-signature": _expected(SECRET, "msg_2", 1700000001, body)
        + " "
        + _expected(other, "msg_2", 1700000001, body),
    }
