"""The gateway's name mapping and record stamping, pinned from docs/design.md ("Topics", the
edge gateway) without a broker: edges written for mutation testing (tools/mutation.py)."""

from __future__ import annotations

import gzip
import struct

import cramjam
import pytest
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from app.gateway import records
from app.gateway.naming import Kind, Mapped, ProjectNames, collection_error

PROJECT = "0123456789abcdef01234567"
OTHER = "fedcba9876543210fedcba98"

# Kafka's error codes (the protocol's table), as a client sees them.
CORRUPT_MESSAGE = 2
UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
UNSUPPORTED_COMPRESSION_TYPE = 76

# --- naming --------------------------------------------------------------------------------


def test_collections_map_to_inbound_topics() -> None:
    names = ProjectNames(PROJECT)
    assert names.topic("purchases") == Mapped(Kind.INBOUND, "purchases", f"in.{PROJECT}.purchases")
    assert names.topic("bad name") == Mapped(Kind.INVALID, "bad name", None)
    assert names.topic("") == Mapped(Kind.INVALID, "", None)


def test_dlq_names_map_to_the_projects_dlq_topics() -> None:
    names = ProjectNames(PROJECT)
    assert names.topic("purchases-DLQ") == Mapped(
        Kind.DLQ, "purchases-DLQ", f"dlq.{PROJECT}.purchases"
    )
    # The fallback DLQ is readable as _invalid-DLQ (docs/design.md).
    assert names.topic("_invalid-DLQ") == Mapped(
        Kind.DLQ, "_invalid-DLQ", f"dlq.{PROJECT}._invalid"
    )
    assert names.topic("bad name-DLQ") == Mapped(Kind.INVALID, "bad name-DLQ", None)
    assert names.topic("-DLQ") == Mapped(Kind.INVALID, "-DLQ", None)
    assert names.topic("x-DLQ-DLQ") == Mapped(Kind.INVALID, "x-DLQ-DLQ", None)


def test_customer_topic_reverses_only_this_projects_topics() -> None:
    names = ProjectNames(PROJECT)
    assert names.customer_topic(f"in.{PROJECT}.purchases") == "purchases"
    assert names.customer_topic(f"dlq.{PROJECT}.purchases") == "purchases-DLQ"
    assert names.customer_topic(f"dlq.{PROJECT}._invalid") == "_invalid-DLQ"
    assert names.customer_topic(f"in.{OTHER}.purchases") is None
    assert names.customer_topic(f"dlq.{OTHER}.purchases") is None
    assert names.customer_topic("__consumer_offsets") is None
    assert names.customer_topic(f"in.{PROJECT}") is None


def test_groups_are_prefixed_with_the_project() -> None:
    names = ProjectNames(PROJECT)
    assert names.group("my-group") == f"{PROJECT}.my-group"
    assert names.customer_group(f"{PROJECT}.my-group") == "my-group"
    assert names.customer_group(f"{OTHER}.my-group") == f"{OTHER}.my-group"
    assert names.project_id == PROJECT


def test_collection_error_is_the_rules_message() -> None:
    assert collection_error("ok") is None
    assert collection_error("x" * 65) == "The collection name has 65 characters; use at most 64."


def test_kinds() -> None:
    assert [k.value for k in Kind] == ["inbound", "dlq", "invalid"]


# --- records: stamping a batch with the key id -----------------------------------------------


def _batch(
    values: list[bytes],
    *,
    codec: int = 0,
    headers: list[tuple[str, bytes]] | None = None,
    base_offset: int = 0,
    producer: tuple[int, int, int] = (7, 3, 11),
) -> bytes:
    builder = DefaultRecordBatchBuilder(2, codec, 0, *producer, 1 << 20)
    for i, value in enumerate(values):
        builder.append(i, 1_700_000_000_000 + i, f"k{i}".encode(), value, headers or [])
    data = bytearray(builder.build())
    struct.pack_into(">q", data, 0, base_offset)
    return bytes(data)


def _read(batch: bytes) -> DefaultRecordBatch:
    reader = DefaultRecordBatch(batch)
    assert reader.validate_crc()
    return reader


@pytest.mark.parametrize("codec", [0, 1, 2, 3, 4])
def test_stamped_batch_keeps_records_and_adds_the_key_header(codec: int) -> None:
    given = _batch(
        [b'{"a":1}', b'{"b":2}'],
        codec=codec,
        headers=[("trace", b"t"), ("Inbound.Key_Id", b"forged"), ("inbound.x", b"y")],
        base_offset=100,
    )
    out = records.stamp_records(given, "key-1")
    reader = _read(out)
    assert reader.compression_type == codec
    assert (reader.producer_id, reader.producer_epoch, reader.base_sequence) == (7, 3, 11)
    got = list(reader)
    assert [r.value for r in got] == [b'{"a":1}', b'{"b":2}']
    assert [r.key for r in got] == [b"k0", b"k1"]
    assert [r.offset for r in got] == [0, 1]
    assert [r.timestamp for r in got] == [1_700_000_000_000, 1_700_000_000_001]
    for r in got:
        assert list(r.headers) == [("trace", b"t"), ("inbound.key_id", b"key-1")]


def test_several_batches_are_each_stamped() -> None:
    given = _batch([b"1"]) + _batch([b"2", b"3"])
    out = records.stamp_records(given, "k")
    parts = records.split_batches(out)
    assert len(parts) == 2
    assert [[r.value for r in _read(bytes(p))] for p in parts] == [[b"1"], [b"2", b"3"]]


def test_split_batches_refuses_truncated_data() -> None:
    one = _batch([b"x"])
    assert [bytes(p) for p in records.split_batches(one + one)] == [one, one]
    assert records.split_batches(b"") == []
    for bad in (one[:-1], one + one[:16], one[:17]):
        with pytest.raises(records.BatchRefused) as info:
            records.split_batches(bad)
        assert info.value.code == CORRUPT_MESSAGE
        assert str(info.value) == "truncated record batch"
    # The smallest header that can hold a length: 12 + 5 bytes.
    zero_length = bytes(8) + struct.pack(">i", 0) + bytes(5)
    with pytest.raises(records.BatchRefused):
        records.split_batches(zero_length)
    with pytest.raises(records.BatchRefused):
        records.split_batches(bytes(16))


def test_old_magic_transactions_and_crc_are_refused() -> None:
    good = bytearray(_batch([b"x"]))
    old = bytearray(good)
    old[16] = 1
    with pytest.raises(records.BatchRefused) as info:
        records.stamp_records(bytes(old), "k")
    assert info.value.code == UNSUPPORTED_FOR_MESSAGE_FORMAT
    assert str(info.value) == "record batch magic 1 is not supported; use magic 2"

    for flag in (0x10, 0x20):
        txn = bytearray(good)
        (attributes,) = struct.unpack_from(">h", txn, 21)
        struct.pack_into(">h", txn, 21, attributes | flag)
        with pytest.raises(records.BatchRefused) as info:
            records.stamp_records(bytes(txn), "k")
        assert info.value.code == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        assert str(info.value) == "transactions are not allowed on this cluster"

    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0xFF
    with pytest.raises(records.BatchRefused) as info:
        records.stamp_records(bytes(bad_crc), "k")
    assert info.value.code == CORRUPT_MESSAGE
    assert str(info.value) == "record batch CRC mismatch"


def test_a_batch_shorter_than_its_header_is_refused() -> None:
    good = _batch([b"x"])
    short = bytearray(good[:60])
    struct.pack_into(">i", short, 8, 60 - 12)
    with pytest.raises(records.BatchRefused) as info:
        records.stamp_batch(memoryview(bytes(short)), ("inbound.key_id", b"k"))
    assert (info.value.code, str(info.value)) == (CORRUPT_MESSAGE, "truncated record batch")


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_decompression_is_bounded(codec: int) -> None:
    big = _batch([b"a" * 5000], codec=codec)
    assert records.stamp_records(big, "k", max_decompressed=100_000)
    with pytest.raises(records.BatchRefused) as info:
        records.stamp_records(big, "k", max_decompressed=1000)
    assert info.value.code == CORRUPT_MESSAGE
    assert str(info.value) == (
        "the record batch decompresses to more than 1000 bytes "
        "(INBOUND_GATEWAY_MAX_DECOMPRESSED_BYTES)"
    )


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_limit_is_inclusive(codec: int) -> None:
    data = b"z" * 300
    packed = {
        1: gzip.compress(data),
        2: bytes(cramjam.snappy.compress_raw(data)),
        3: bytes(cramjam.lz4.compress(data)),
        4: bytes(cramjam.zstd.compress(data)),
    }[codec]
    assert records.decompress(codec, packed, 300) == data
    with pytest.raises(records.BatchRefused):
        records.decompress(codec, packed, 299)


def test_gzip_members_are_concatenated_and_truncation_is_corrupt() -> None:
    two = gzip.compress(b"ab") + gzip.compress(b"cd")
    assert records.decompress(1, two, 4) == b"abcd"
    with pytest.raises(records.BatchRefused):
        records.decompress(1, two, 3)
    with pytest.raises(records.BatchRefused) as info:
        records.decompress(1, gzip.compress(b"abcdef" * 100)[:-12], 10_000)
    assert str(info.value) == "corrupt compressed record batch"


def test_xerial_snappy_framing() -> None:
    blocks = [b"hello " * 10, b"world" * 7]
    framed = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
    for block in blocks:
        raw = bytes(cramjam.snappy.compress_raw(block))
        framed += struct.pack(">i", len(raw)) + raw
    assert records.decompress(2, framed, 10_000) == b"".join(blocks)
    assert records.decompress(2, framed, len(b"".join(blocks))) == b"".join(blocks)
    with pytest.raises(records.BatchRefused):
        records.decompress(2, framed, len(b"".join(blocks)) - 1)
    with pytest.raises(records.BatchRefused) as info:
        records.decompress(2, framed[:-3], 10_000)
    assert str(info.value) == "corrupt compressed record batch"
    negative = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1) + struct.pack(">i", -1)
    with pytest.raises(records.BatchRefused):
        records.decompress(2, negative, 10_000)


def test_snappy_length_varint() -> None:
    data = b"q" * 200  # a two-byte varint length (200 >= 128)
    raw = bytes(cramjam.snappy.compress_raw(data))
    assert raw[0] & 0x80
    assert records.decompress(2, raw, 200) == data
    with pytest.raises(records.BatchRefused) as info:
        records.decompress(2, raw, 199)
    assert "decompresses to more than 199 bytes" in str(info.value)
    with pytest.raises(records.BatchRefused) as info:
        records.decompress(2, b"\xff\xff\xff\xff\xff\xff\x01", 10_000)
    assert str(info.value) == "corrupt compressed record batch"


def test_unknown_codec() -> None:
    with pytest.raises(records.BatchRefused) as info:
        records.decompress(5, b"x", 10)
    assert info.value.code == UNSUPPORTED_COMPRESSION_TYPE
    assert str(info.value) == "unknown compression codec 5"


def test_default_bound_is_four_mebibytes() -> None:
    # README: INBOUND_GATEWAY_MAX_DECOMPRESSED_BYTES defaults to 4 MiB.
    assert records.DEFAULT_MAX_DECOMPRESSED == 4 * 1024 * 1024
