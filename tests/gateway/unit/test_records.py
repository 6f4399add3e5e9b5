"""Record rewriting: every codec, the refused formats, corruption and size bounds."""

from __future__ import annotations

import gzip
import struct
import zlib

import cramjam
import pytest
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from aiokafka.record.legacy_records import LegacyRecordBatchBuilder
from aiokafka.record.util import calc_crc32c

from app.gateway.records import (
    DEFAULT_MAX_DECOMPRESSED,
    BatchRefused,
    decompress,
    split_batches,
    stamp_records,
)

# Kafka's codec ids and error codes, written out.
NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4
CORRUPT_MESSAGE = 2
UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
UNSUPPORTED_COMPRESSION_TYPE = 76


def _batch(
    values: list[bytes],
    codec: int = NONE,
    headers: list | None = None,
    *,
    producer: tuple[int, int, int] = (-1, -1, -1),
    transactional: bool = False,
) -> bytes:
    builder = DefaultRecordBatchBuilder(2, codec, int(transactional), *producer, 1 << 31)
    for i, v in enumerate(values):
        builder.append(i * 2, 1_700_000_000_000 + i, b"k%d" % i, v, headers or [])
    return bytes(builder.build())


def _records(data: bytes) -> list:
    return list(DefaultRecordBatch(data))


def _refused(data: bytes, **kw: int) -> BatchRefused:
    with pytest.raises(BatchRefused) as info:
        stamp_records(data, "key-1", **kw)
    return info.value


@pytest.mark.parametrize("codec", [NONE, GZIP, SNAPPY, LZ4, ZSTD])
def test_every_codec_is_stamped_and_kept(codec: int) -> None:
    data = _batch([b"v0", b"v1", b"v2"], codec, [("custom", b"x")], producer=(77, 3, 10))
    out = stamp_records(data, "key-1")
    batch = DefaultRecordBatch(out)
    assert batch.validate_crc()
    assert batch.compression_type == codec
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (77, 3, 10)
    records = _records(out)
    assert [r.value for r in records] == [b"v0", b"v1", b"v2"]
    assert [r.key for r in records] == [b"k0", b"k1", b"k2"]
    assert [r.offset for r in records] == [0, 2, 4]
    assert [r.timestamp for r in records] == [1_700_000_000_000 + i for i in range(3)]
    for r in records:
        assert list(r.headers) == [("custom", b"x"), ("inbound.key_id", b"key-1")]


def test_clients_cannot_set_inbound_headers_in_any_case() -> None:
    headers = [("inbound.key_id", b"forged"), ("INBOUND.error.code", b"x"), ("inboundx", b"ok")]
    [record] = _records(stamp_records(_batch([b"v"], headers=headers), "key-1"))
    assert list(record.headers) == [("inboundx", b"ok"), ("inbound.key_id", b"key-1")]


def test_several_batches_are_each_stamped() -> None:
    data = _batch([b"a"]) + _batch([b"b"], GZIP)
    out = stamp_records(data, "key-1")
    assert [len(_records(bytes(b))) for b in split_batches(out)] == [1, 1]


@pytest.mark.parametrize("magic", [0, 1])
def test_old_message_formats_are_refused(magic: int) -> None:
    builder = LegacyRecordBatchBuilder(magic, 0, 1 << 20)
    builder.append(0, 1_700_000_000_000 if magic else None, None, b"old")
    refusal = _refused(bytes(builder.build()))
    assert refusal.code == UNSUPPORTED_FOR_MESSAGE_FORMAT


def test_transactional_batches_are_refused() -> None:
    data = _batch([b"v"], producer=(5, 0, 0), transactional=True)
    assert _refused(data).code == TRANSACTIONAL_ID_AUTHORIZATION_FAILED


def test_control_batches_are_refused() -> None:
    data = bytearray(_batch([b"v"]))
    (attributes,) = struct.unpack_from(">h", data, 21)
    struct.pack_into(">h", data, 21, attributes | 0x20)
    assert _refused(bytes(data)).code == TRANSACTIONAL_ID_AUTHORIZATION_FAILED


def test_a_crc_mismatch_is_refused() -> None:
    data = bytearray(_batch([b"value"]))
    data[-1] ^= 0xFF
    assert _refused(bytes(data)).code == CORRUPT_MESSAGE


@pytest.mark.parametrize("cut", [1, 10, 30])
def test_truncated_batches_are_refused(cut: int) -> None:
    data = _batch([b"value" * 10])
    assert _refused(data[:-cut]).code == CORRUPT_MESSAGE


def _with_codec_bits(data: bytes, codec: int) -> bytes:
    # Rewrite the attributes and the CRC (over everything from the attributes on).
    out = bytearray(data)
    (attributes,) = struct.unpack_from(">h", out, 21)
    struct.pack_into(">h", out, 21, (attributes & ~0x07) | codec)
    struct.pack_into(">I", out, 17, calc_crc32c(bytes(out[21:])))
    return bytes(out)


def test_an_unknown_codec_is_refused() -> None:
    data = _with_codec_bits(_batch([b"v"]), 5)
    assert _refused(data).code == UNSUPPORTED_COMPRESSION_TYPE


def test_corrupt_compressed_data_is_refused() -> None:
    data = _with_codec_bits(_batch([b"v"]), ZSTD)
    assert _refused(data).code == CORRUPT_MESSAGE


def test_size_limits() -> None:
    from app.gateway.server import MESSAGE_MAX_BYTES
    from app.gateway.session import EdgeLimits

    # Kafka's default message.max.bytes for one batch, and a request frame's room above it.
    assert MESSAGE_MAX_BYTES == 1048588
    assert EdgeLimits().max_request_bytes == 1048588 + 65536
    assert EdgeLimits().max_preauth_bytes == 524288
    assert DEFAULT_MAX_DECOMPRESSED == EdgeLimits().max_decompressed_bytes == 4194304


@pytest.mark.parametrize("codec", [GZIP, SNAPPY, LZ4, ZSTD])
def test_a_decompression_bomb_is_refused_past_the_bound(codec: int) -> None:
    data = _batch([b"\x00" * 200_000], codec)
    assert len(data) < 20_000
    assert _refused(data, max_decompressed=100_000).code == CORRUPT_MESSAGE
    assert len(_records(stamp_records(data, "k", max_decompressed=300_000))) == 1


@pytest.mark.parametrize(
    ("codec", "compress"),
    [
        (GZIP, gzip.compress),
        (SNAPPY, lambda b: bytes(cramjam.snappy.compress_raw(b))),
        (LZ4, lambda b: bytes(cramjam.lz4.compress(b))),
        (ZSTD, lambda b: bytes(cramjam.zstd.compress(b))),
    ],
)
def test_decompress_allows_exactly_the_limit(codec: int, compress) -> None:  # noqa: ANN001
    data = compress(b"a" * 1000)
    assert decompress(codec, data, 1000) == b"a" * 1000
    with pytest.raises(BatchRefused) as info:
        decompress(codec, data, 999)
    assert info.value.code == CORRUPT_MESSAGE


def test_concatenated_gzip_members_and_xerial_snappy() -> None:
    assert decompress(GZIP, gzip.compress(b"ab") + gzip.compress(b"cd"), 10) == b"abcd"
    block = bytes(cramjam.snappy.compress_raw(b"hello"))
    xerial = b"\x82SNAPPY\x00" + b"\x00" * 8 + struct.pack(">i", len(block)) + block
    assert decompress(SNAPPY, xerial + b"", 10) == b"hello"
    truncated = zlib.compress(b"x" * 100)[:5]
    with pytest.raises(BatchRefused):
        decompress(GZIP, truncated, 1000)
