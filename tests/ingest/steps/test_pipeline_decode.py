"""Size and decode steps: bytes to a JSON object, and every way that can fail."""

from __future__ import annotations

import orjson

from app.ingest.steps.size import MAX_EVENT_BYTES
from tests.ingest.steps.pipeline_support import accept, reject


def test_a_plain_object_is_accepted() -> None:
    body = accept({"item": "book", "price": 12.5, "tags": ["x"], "gift": None}).body
    assert body["item"] == "book"
    assert body["gift"] is None


def test_event_at_the_limit_is_accepted_one_byte_more_is_not() -> None:
    pad = MAX_EVENT_BYTES - len(b'{"p":""}')
    exact = b'{"p":"' + b"x" * pad + b'"}'
    assert len(exact) == MAX_EVENT_BYTES
    accept(exact)
    over = b'{"p":"' + b"x" * (pad + 1) + b'"}'
    rejection = reject(over, "event_too_large")
    assert rejection.stage == "decode"
    assert rejection.detail == {"bytes": MAX_EVENT_BYTES + 1, "limit": MAX_EVENT_BYTES}
    assert "900 KB" in rejection.message


def test_ten_megabytes_is_too_large() -> None:
    reject(b'{"p":"' + b"x" * 10_000_000 + b'"}', "event_too_large")


def test_empty_and_missing_values_are_empty_value() -> None:
    assert reject(None, "empty_value").stage == "decode"
    assert reject(b"", "empty_value").detail == {"bytes": 0, "null": False}


def test_invalid_utf8_is_told_apart_from_invalid_json() -> None:
    rejection = reject(b'{"name": "caf\xe9"}', "invalid_utf8")
    assert rejection.detail["byte_offset"] == 13
    reject(b"\xff\xfe{}", "invalid_utf8")
    # An encoded surrogate (CESU-style) is not UTF-8 either.
    reject(b'{"a": "\xed\xa0\x80"}', "invalid_utf8")


def test_lone_surrogate_escapes_are_refused_as_invalid_utf8() -> None:
    rejection = reject(b'{"a": "\\ud800"}', "invalid_utf8")
    assert rejection.detail["reason"] == "lone surrogate escape"
    reject(b'{"a": "\\udc00x"}', "invalid_utf8")
    # A correct pair is an ordinary character.
    assert accept(b'{"a": "\\ud83d\\ude00"}').body["a"] == "\U0001f600"


def test_syntax_errors_are_invalid_json() -> None:
    for raw in (b"{", b'{"a":}', b"{'a': 1}", b'{"a": 1,}', b"hello", b"\xef\xbb\xbf{}"):
        assert reject(raw, "invalid_json").stage == "decode"


def test_nan_and_infinity_are_not_json() -> None:
    reject(b'{"a": NaN}', "invalid_json")
    reject(b'{"a": Infinity}', "invalid_json")
    reject(b'{"a": -Infinity}', "invalid_json")
    reject(b'{"a": 1e999}', "invalid_json")


def test_non_objects_are_refused() -> None:
    for raw, kind in (
        (b"[]", "an array"),
        (b'"text"', "a string"),
        (b"12", "a number"),
        (b"true", "a boolean"),
        (b"null", "null"),
    ):
        rejection = reject(raw, "not_an_object")
        assert rejection.detail == {"type": kind}


def test_duplicate_keys_keep_the_last_value() -> None:
    assert accept(b'{"a": 1, "a": 2}').body["a"] == 2


def test_hundred_thousand_deep_nesting_is_too_deeply_nested() -> None:
    reject(b"[" * 100_000, "too_deeply_nested")
    reject(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "too_deeply_nested")
    reject(b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "too_deeply_nested")


def test_big_numbers_stay_serialisable() -> None:
    body = accept(b'{"n": 123456789012345678901234567890}').body
    orjson.dumps(body)
