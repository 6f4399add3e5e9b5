"""Rewriting a produced record batch so every record says which key wrote it.

A v2 record batch is checksummed as a whole, so adding a header means rebuilding it. The
rebuilt batch keeps what idempotence and ordering rely on: producer id, epoch and base
sequence, the number of records and their offset deltas, timestamps and the compression
codec. Customer headers starting with ``inbound.`` (in any letter case) are dropped: only
Inbound sets those.

A compressed batch is decompressed here with a bound on its output, checked while
decompressing: a few kilobytes that inflate to gigabytes (a "bomb") are refused after at
most ``max_decompressed`` bytes, never held in memory whole.
"""

from __future__ import annotations

import struct
import threading
import zlib

import cramjam
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from app.contract.headers import KEY_ID, is_trusted
from app.gateway import errors

# Offsets of fields in a v2 batch header (Kafka's DefaultRecordBatch layout).
_LENGTH_OFFSET = 8
_MAGIC_OFFSET = 16
_ATTRIBUTES_OFFSET = 21
_BATCH_OVERHEAD = 12  # base offset (8) + length (4), not counted in the length field
_TRANSACTIONAL = 0x10
_CONTROL = 0x20
_MAX_BUILD = 1 << 31
_RECORDS_OFFSET = 61  # the v2 batch header's size: records (or their compressed form) follow
_CODEC_MASK = 0x07
_GZIP, _SNAPPY, _LZ4, _ZSTD = 1, 2, 3, 4
_XERIAL_MAGIC = b"\x82SNAPPY\x00"
# What one batch may decompress to by default (INBOUND_GATEWAY_MAX_DECOMPRESSED_BYTES).
DEFAULT_MAX_DECOMPRESSED = 4 * 1024 * 1024


class BatchRefused(Exception):
    """The batch cannot be accepted; ``code`` is the Kafka error to answer with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class _TooLarge(Exception):
    pass


def _gunzip(data: bytes, limit: int) -> bytes:
    out = bytearray()
    rest = data
    while rest:
        d = zlib.decompressobj(wbits=31)  # gzip; members are concatenated
        buf = rest
        while not d.eof:
            chunk = d.decompress(buf, limit + 1 - len(out))
            out += chunk
            if len(out) > limit:
                raise _TooLarge
            buf = d.unconsumed_tail
            if not chunk and not buf:
                raise ValueError("truncated gzip data")
        rest = d.unused_data
    return bytes(out)


def _snappy_raw(block: bytes | memoryview, budget: int) -> bytes:
    # A raw snappy block starts with its uncompressed length (a varint): checked first.
    size = shift = pos = 0
    while True:
        byte = block[pos]
        pos += 1
        size |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift > 35:
            raise ValueError("bad snappy length")
    if size > budget:
        raise _TooLarge
    return bytes(cramjam.snappy.decompress_raw(bytes(block)))


def _unsnappy(data: bytes, limit: int) -> bytes:
    if not data.startswith(_XERIAL_MAGIC):
        return _snappy_raw(data, limit)
    # Java clients (snappy-java) write xerial framing: a 16-byte header, then sized blocks.
    out = bytearray()
    view = memoryview(data)
    pos = 16
    while pos < len(view):
        (size,) = struct.unpack_from(">i", view, pos)
        pos += 4
        if size < 0 or pos + size > len(view):
            raise ValueError("truncated snappy block")
        out += _snappy_raw(view[pos : pos + size], limit - len(out))
        pos += size
    return bytes(out)


_scratch = threading.local()


def _scratch_buffer(size: int) -> memoryview:
    # One output buffer per thread, re-used: allocating (and trimming) a fresh ``limit + 1``
    # bytes for every batch cost more than decompressing it.
    buf = getattr(_scratch, "buf", None)
    if buf is None or len(buf) < size:
        buf = _scratch.buf = bytearray(size)
    return memoryview(buf)[:size]


def _into(decompress_into, data: bytes, limit: int) -> bytes:  # noqa: ANN001
    # The output buffer is the bound: one byte more than allowed tells "too large".
    out = _scratch_buffer(limit + 1)
    try:
        n = decompress_into(data, out)
    except cramjam.DecompressionError as exc:
        text = str(exc)
        if "whole buffer" in text or "too small" in text or "smaller than" in text:
            raise _TooLarge from None
        raise
    if n > limit:
        raise _TooLarge
    return bytes(out[:n])


def decompress(codec: int, data: bytes, limit: int) -> bytes:
    """``data`` decompressed with Kafka codec ``codec``, never producing more than ``limit``
    bytes (BatchRefused past it, or for a corrupt or unknown codec)."""
    try:
        if codec == _GZIP:
            return _gunzip(data, limit)
        if codec == _SNAPPY:
            return _unsnappy(data, limit)
        if codec == _LZ4:
            return _into(cramjam.lz4.decompress_into, data, limit)
        if codec == _ZSTD:
            return _into(cramjam.zstd.decompress_into, data, limit)
    except _TooLarge:
        raise BatchRefused(
            errors.CORRUPT_MESSAGE,
            f"the record batch decompresses to more than {limit} bytes "
            "(INBOUND_GATEWAY_MAX_DECOMPRESSED_BYTES)",
        ) from None
    except (ValueError, IndexError, struct.error, zlib.error, cramjam.DecompressionError):
        raise BatchRefused(errors.CORRUPT_MESSAGE, "corrupt compressed record batch") from None
    raise BatchRefused(errors.UNSUPPORTED_COMPRESSION_TYPE, f"unknown compression codec {codec}")


def _uncompressed(batch: memoryview, codec: int, limit: int) -> bytes:
    """The batch with its records decompressed (same header, codec bits cleared)."""
    records = decompress(codec, bytes(batch[_RECORDS_OFFSET:]), limit)
    head = bytearray(batch[:_RECORDS_OFFSET])
    struct.pack_into(">i", head, _LENGTH_OFFSET, _RECORDS_OFFSET - _BATCH_OVERHEAD + len(records))
    (attributes,) = struct.unpack_from(">h", head, _ATTRIBUTES_OFFSET)
    struct.pack_into(">h", head, _ATTRIBUTES_OFFSET, attributes & ~_CODEC_MASK)
    return bytes(head) + records


def split_batches(records: bytes) -> list[memoryview]:
    """The consecutive record batches in a partition's produce data."""
    view = memoryview(records)
    out: list[memoryview] = []
    pos = 0
    while pos < len(view):
        if len(view) - pos < _BATCH_OVERHEAD + 5:
            raise BatchRefused(errors.CORRUPT_MESSAGE, "truncated record batch")
        (length,) = struct.unpack_from(">i", view, pos + _LENGTH_OFFSET)
        end = pos + _BATCH_OVERHEAD + length
        if length <= 0 or end > len(view):
            raise BatchRefused(errors.CORRUPT_MESSAGE, "truncated record batch")
        out.append(view[pos:end])
        pos = end
    return out


def stamp_batch(
    batch: memoryview,
    key_id_header: tuple[str, bytes],
    max_decompressed: int = DEFAULT_MAX_DECOMPRESSED,
) -> bytes:
    """One batch rebuilt with the key-id header on every record."""
    magic = batch[_MAGIC_OFFSET]
    if magic != 2:
        # Message formats v0/v1 predate headers; Kafka 4 brokers no longer accept them either.
        raise BatchRefused(
            errors.UNSUPPORTED_FOR_MESSAGE_FORMAT,
            f"record batch magic {magic} is not supported; use magic 2",
        )
    (attributes,) = struct.unpack_from(">h", batch, _ATTRIBUTES_OFFSET)
    if attributes & (_TRANSACTIONAL | _CONTROL):
        raise BatchRefused(
            errors.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            "transactions are not allowed on this cluster",
        )
    if len(batch) < _RECORDS_OFFSET:
        raise BatchRefused(errors.CORRUPT_MESSAGE, "truncated record batch")
    reader = DefaultRecordBatch(bytes(batch))
    if not reader.validate_crc():
        raise BatchRefused(errors.CORRUPT_MESSAGE, "record batch CRC mismatch")
    codec = attributes & _CODEC_MASK
    if codec:
        # Decompressed here, bounded, and never by the reader (which would inflate it whole).
        reader = DefaultRecordBatch(_uncompressed(batch, codec, max_decompressed))
    builder = DefaultRecordBatchBuilder(
        2,
        codec,
        0,
        reader.producer_id,
        reader.producer_epoch,
        reader.base_sequence,
        _MAX_BUILD,
    )
    base = reader.base_offset
    # Most records carry no headers: they share one list (the builder copies what it reads).
    only_key = [key_id_header]
    append = builder.append
    try:
        for record in reader:
            hs = record.headers
            if hs:
                headers = [h for h in hs if not is_trusted(h[0])]
                headers.append(key_id_header)
            else:
                headers = only_key
            append(record.offset - base, record.timestamp, record.key, record.value, headers)
    except Exception as exc:  # the reader's errors for a malformed batch
        raise BatchRefused(
            errors.CORRUPT_MESSAGE, f"corrupt record batch: {type(exc).__name__}"
        ) from None
    return bytes(builder.build())


def stamp_records(
    records: bytes, key_id: str, max_decompressed: int = DEFAULT_MAX_DECOMPRESSED
) -> bytes:
    """A partition's produce data with every batch stamped with ``key_id``."""
    header = (KEY_ID, key_id.encode())
    batches = split_batches(records)
    if len(batches) == 1:
        return stamp_batch(batches[0], header, max_decompressed)
    return b"".join(stamp_batch(b, header, max_decompressed) for b in batches)
