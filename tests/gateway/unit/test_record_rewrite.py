"""The rewritten batch as bytes: literal bytes for small batches, and the same bytes as
aiokafka's builder gives for the same records with the key-id header added (every codec, keys
and values present or null, customer headers kept or dropped, records with and without
headers in one batch); the re-used decompression buffer never leaks one batch into the next."""

from __future__ import annotations

import gzip
import random
import struct

import cramjam
import pytest
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from aiokafka.record.util import calc_crc32c

from app.gateway.records import decompress, stamp_records

NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4
TS = 1_700_000_000_000


def _build(rows: list[tuple], codec: int = NONE, producer: tuple = (-1, -1, -1)) -> bytes:
    # rows: (offset delta, timestamp, key, value, headers)
    builder = DefaultRecordBatchBuilder(2, codec, 0, *producer, 1 << 31)
    for offset, ts, key, value, headers in rows:
        builder.append(offset, ts, key, value, headers)
    return bytes(builder.build())


def _expected(rows: list[tuple], codec: int, producer: tuple, key_id: str) -> bytes:
    # What the edge must send: the same records, customer "inbound.*" headers dropped, the
    # key id last, built by aiokafka's builder.
    stamped = [
        (o, t, k, v, [h for h in hs if not h[0].lower().startswith("inbound.")])
        for o, t, k, v, hs in rows
    ]
    for row in stamped:
        row[4].append(("inbound.key_id", key_id.encode()))
    return _build(stamped, codec, producer)


def _same(out: bytes, expected: bytes) -> None:
    # gzip writes the time into its header: for gzip the records are compared uncompressed.
    if out[21:23] != b"\x00\x01":
        assert out == expected
        return
    assert DefaultRecordBatch(out).validate_crc()
    assert out[:17] == expected[:17] and out[21:61] == expected[21:61]
    assert gzip.decompress(out[61:]) == gzip.decompress(expected[61:])


def test_one_record_literal_bytes() -> None:
    data = _build([(0, TS, b"k", b"v", [])])
    out = stamp_records(data, "key-1")
    record = (
        b"\x3a"  # length 29
        b"\x00\x00\x00"  # attributes, timestamp delta, offset delta
        b"\x02k\x02v"  # key, value
        b"\x02\x1cinbound.key_id\x0akey-1"  # one header
    )
    body = (
        b"\x00\x00"  # attributes: uncompressed
        + b"\x00\x00\x00\x00"  # last offset delta
        + struct.pack(">qq", TS, TS)  # first and max timestamp
        + b"\xff" * 8  # producer id -1
        + b"\xff\xff"  # producer epoch -1
        + b"\xff\xff\xff\xff"  # base sequence -1
        + b"\x00\x00\x00\x01"  # one record
        + record
    )
    head = b"\x00" * 8 + struct.pack(">i", 9 + len(body)) + b"\xff\xff\xff\xff" + b"\x02"
    assert out == head + struct.pack(">I", calc_crc32c(body)) + body
    assert len(out) == 61 + 30


def test_dropped_and_kept_headers_literal_bytes() -> None:
    headers = [("a", b"1"), ("Inbound.key_id", b"forged"), ("b", None)]
    out = stamp_records(_build([(0, TS, None, b"v", headers)]), "k9")
    record = (
        b"\x00\x00\x00"
        b"\x01\x02v"  # null key, value
        b"\x06"  # three headers: a, b, the key id
        b"\x02a\x021"
        b"\x02b\x01"
        b"\x1cinbound.key_id\x04k9"
    )
    assert out[61:] == bytes([2 * len(record)]) + record


ROW_SHAPES = [
    [(0, TS, b"k", b"v", [])],
    [(i, TS + i, None, b"x" * 300, []) for i in range(50)],
    [(i * 3, TS + (i % 5) - 2, b"key", None, []) for i in range(20)],  # deltas below 0
    [(i, TS, b"k" * 70, b"v" * 9000, [("h", b"x" * 200)]) for i in range(5)],
    [(0, TS, b"", b"", [("inbound.error.code", b"x"), ("c", b""), ("INBOUND.X", None)])],
    [(i, TS, b"k", b"v", [(f"h{j}", b"y" * j) for j in range(70)]) for i in range(3)],
    [(i, TS + 10 * i, b"k%d" % i, b"\x00" * 2000, [("\u00e9t\u00e9", b"1")]) for i in range(40)],
]


@pytest.mark.parametrize("codec", [NONE, GZIP, SNAPPY, LZ4, ZSTD])
@pytest.mark.parametrize("shape", range(len(ROW_SHAPES)))
def test_same_bytes_as_the_builder(codec: int, shape: int) -> None:
    rows = ROW_SHAPES[shape]
    producer = (4242, 7, 100)
    data = _build(rows, codec, producer)
    _same(stamp_records(data, "key-abc"), _expected(rows, codec, producer, "key-abc"))


@pytest.mark.parametrize(("codec", "compress"), [(LZ4, cramjam.lz4), (ZSTD, cramjam.zstd)])
def test_the_reused_buffer_holds_only_the_current_batch(codec: int, compress) -> None:  # noqa: ANN001
    big = bytes(compress.compress(b"A" * 50_000))
    small = bytes(compress.compress(b"bc"))
    assert decompress(codec, big, 100_000) == b"A" * 50_000
    assert decompress(codec, small, 100_000) == b"bc"
    assert decompress(codec, big, 100_000) == b"A" * 50_000


def _patched(data: bytes, pos: int, value: bytes) -> bytes:
    # An uncompressed batch with bytes replaced at ``pos`` and its CRC made valid again.
    out = bytearray(data)
    out[pos : pos + len(value)] = value
    struct.pack_into(">I", out, 17, calc_crc32c(bytes(out[21:])))
    return bytes(out)


def test_a_first_record_off_the_base_timestamp_is_rebased_like_the_builder() -> None:
    data = _build([(0, TS, b"k", b"v", []), (1, TS + 5, b"k", b"v", [])])
    # Base timestamp 3 ms earlier: the first record's delta is then 3, the second's 8.
    moved = bytearray(data)
    struct.pack_into(">q", moved, 27, TS - 3)
    moved[61 + 2] = 6  # first record's timestamp delta: zigzag(3)
    second = 61 + 1 + data[61] // 2
    moved[second + 2] = 16  # zigzag(8)
    struct.pack_into(">I", moved, 17, calc_crc32c(bytes(moved[21:])))
    out = stamp_records(bytes(moved), "key-1")
    expected = _expected(
        [(0, TS, b"k", b"v", []), (1, TS + 5, b"k", b"v", [])], NONE, (-1, -1, -1), "key-1"
    )
    assert out == expected


def test_record_attributes_and_padded_varints_are_written_as_the_builder_does() -> None:
    data = _build([(0, TS, b"k", b"v", [])])
    with_attributes = _patched(data, 62, b"\x04")  # record attributes 4: unused bits set
    assert DefaultRecordBatch(with_attributes).validate_crc()
    expected = _expected([(0, TS, b"k", b"v", [])], NONE, (-1, -1, -1), "key-1")
    assert stamp_records(with_attributes, "key-1") == expected


def test_random_batches_match_the_builder() -> None:
    rng = random.Random(15)
    for _ in range(60):
        rows = []
        offset = 0
        for _ in range(rng.randint(1, 30)):
            headers = [
                (rng.choice(["a", "inbound.key_id", "Inbound.Z", "x" * 80, "inboundx"]),
                 rng.choice([None, b"", b"v" * rng.randint(0, 300)]))
                for _ in range(rng.choice([0, 0, 1, 3]))
            ]  # fmt: skip
            rows.append(
                (
                    offset,
                    TS + rng.randint(-100, 10_000_000),
                    rng.choice([None, b"", b"k" * rng.randint(1, 200)]),
                    rng.choice([None, b"", b"v" * rng.randint(1, 20_000)]),
                    headers,
                )
            )
            offset += rng.randint(1, 3)
        codec = rng.choice([NONE, GZIP, SNAPPY, LZ4, ZSTD])
        producer = rng.choice([(-1, -1, -1), (9, 0, rng.randint(0, 1 << 30))])
        data = _build(rows, codec, producer)
        _same(stamp_records(data, "key-r"), _expected(rows, codec, producer, "key-r"))
