"""Hostile and random input: process() always answers with Accepted or Rejection."""

from __future__ import annotations

import random

import orjson

from app.contract.errors import ERROR_CODES, Rejection
from app.contract.headers import KEY_ID, REPLAY_SOURCE
from app.ingest.pipeline import Accepted, RawRecord
from app.ingest.steps.properties import check_properties
from tests.ingest.steps.pipeline_support import PROJECT, TOPIC, record, run

SEED_EVENT = {
    "user": {"id": 12, "ip": "81.2.69.160", "ua": "Mozilla/5.0 (X11; Linux x86_64)"},
    "items": [{"sku": "b-1", "qty": 2}, {"sku": "c-2", "qty": 1}],
    "keen": {
        "timestamp": "2026-11-24T19:07:46Z",
        "addons": [
            {"name": "keen:ip_to_geo", "input": {"ip": "user.ip"}, "output": "geo"},
            {"name": "keen:ua_parser", "input": {"ua_string": "user.ua"}, "output": "ua"},
        ],
    },
}
NAMES = ["a", "", "$x", "a.b", "n\x00", "k" * 300, "keen", "ü", "\ud800", "timestamp"]


def _check(raw: RawRecord) -> None:
    result = run(raw)
    assert isinstance(result, (Accepted, Rejection))
    if isinstance(result, Rejection):
        assert result.code in ERROR_CODES
        assert len(orjson.dumps(result.detail)) < 2048
    else:
        orjson.dumps(result.body)
        assert check_properties(result.body) is None


def _random_value(rng: random.Random, depth: int) -> object:
    roll = rng.random()
    if depth > 40 or roll < 0.4:
        return rng.choice([None, True, 0, -1.5, 2**70, "s", "\u0000", "81.2.69.160", ""])
    if roll < 0.7:
        return {rng.choice(NAMES): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]


def test_random_bytes() -> None:
    rng = random.Random(1234)
    for _ in range(2000):
        _check(record(rng.randbytes(rng.randint(0, 200))))


def test_mutated_valid_events() -> None:
    rng = random.Random(99)
    base = bytearray(orjson.dumps(SEED_EVENT))
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            action = rng.random()
            position = rng.randrange(len(data))
            if action < 0.4:
                data[position] = rng.randrange(256)
            elif action < 0.7:
                del data[position : position + rng.randint(1, 8)]
            else:
                data[position:position] = rng.choice([b"[", b"{", b'"$', b".", b"\\ud800", b"\xff"])
        _check(record(bytes(data)))


def test_random_structures() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        value = _random_value(rng, 0)
        event = value if isinstance(value, dict) else {"v": value}
        if rng.random() < 0.3:
            event["keen"] = _random_value(rng, 1)
        try:
            raw = orjson.dumps(event)
        except TypeError:  # a lone surrogate key orjson will not encode
            raw = repr(event).encode("utf-8", "surrogatepass")
        _check(record(raw))


def test_random_headers_and_coordinates() -> None:
    rng = random.Random(5)
    raw = orjson.dumps({"a": 1})
    for _ in range(500):
        headers = tuple(
            (rng.choice([KEY_ID, REPLAY_SOURCE, "x"]), rng.randbytes(rng.randint(0, 40)))
            for _ in range(rng.randint(0, 3))
        )
        topic = rng.choice([TOPIC, f"in.{PROJECT}.", f"in.{PROJECT}.a/b", "in..x", "", "in."])
        _check(
            RawRecord(
                topic,
                rng.randint(0, 100),
                rng.randint(0, 2**63),
                rng.choice([None, -1, 0, 2**62]),
                None,
                raw,
                headers,
            )
        )


def test_huge_strings_and_keys() -> None:
    _check(record(b'{"' + b"k" * 900_000 + b'": 1}'))
    _check(record(b'{"a": "' + b"\\u0041" * 150_000 + b'"}'))
    _check(record(b'{"a": ' + b"9" * 900_000 + b"}"))
