"""Rewriting a produced record batch so every record says which key wrote it.

A v2 record batch is checksummed as a whole, so adding a header means rebuilding it. The
rebuilt batch keeps what idempotence and ordering rely on: producer id, epoch and base
sequence, the number of records and their offset deltas, timestamps and the compression
codec. Customer headers starting with ``inbound.`` (in any letter case) are dropped: only
Inbound sets those.

A compressed batch is decompressed here with a bound on its output, checked while
decompressing: a few kilobytes that inflate to gigabytes (a "bomb") are refused after at
most ``max_decompressed`` bytes, never held in memory whole.

The common batch (canonical varints, no record attributes, the first record at the batch's
base timestamp) is rewritten by walking the record bytes: everything up to a record's header
count is copied as it is and the key-id header is appended as precomputed bytes, which gives
the same bytes aiokafka's builder would, without a Python object per record. Anything else
is rebuilt record by record with the builder, as before.
"""

from __future__ import annotations

import struct
import threading
import zlib

import cramjam
from aiokafka.codec import gzip_encode, lz4_encode, snappy_encode, zstd_encode
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from aiokafka.record.util import calc_crc32c

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


def _check_batch(batch: memoryview) -> int:
    """The batch's attributes, once it is a v2, non-transactional batch with a valid CRC."""
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
    (crc,) = struct.unpack_from(">I", batch, _CRC_OFFSET)
    if calc_crc32c(batch[_ATTRIBUTES_OFFSET:]) != crc:
        raise BatchRefused(errors.CORRUPT_MESSAGE, "record batch CRC mismatch")
    return attributes


def stamp_batch(
    batch: memoryview,
    key_id_header: tuple[str, bytes],
    max_decompressed: int = DEFAULT_MAX_DECOMPRESSED,
) -> bytes:
    """One batch rebuilt with the key-id header on every record."""
    attributes = _check_batch(batch)
    codec = attributes & _CODEC_MASK
    if codec:
        # Decompressed here, bounded, and never by the reader (which would inflate it whole).
        plain = memoryview(_uncompressed(batch, codec, max_decompressed))
    else:
        plain = batch
    if not attributes & ~_CODEC_MASK:
        try:
            return _restamp(plain, codec, header_bytes(*key_id_header))
        except _Unusual:
            pass
    return _rebuild(plain, codec, key_id_header)


def _rebuild(plain: memoryview, codec: int, key_id_header: tuple[str, bytes]) -> bytes:
    """The batch (records uncompressed) rebuilt record by record with aiokafka's builder."""
    reader = DefaultRecordBatch(bytes(plain))
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
    try:
        for record in reader:
            headers = [h for h in record.headers if not is_trusted(h[0])]
            headers.append(key_id_header)
            builder.append(
                record.offset - base, record.timestamp, record.key, record.value, headers
            )
    except Exception as exc:  # the reader's errors for a malformed batch
        raise BatchRefused(
            errors.CORRUPT_MESSAGE, f"corrupt record batch: {type(exc).__name__}"
        ) from None
    return bytes(builder.build())


# ---- the fast path: rewriting the record bytes -------------------------------------------


class _Unusual(Exception):
    """Not the common shape (or malformed): left to ``_rebuild``, which decides."""


_HEAD = struct.Struct(">qiibIhiqqqhii")  # a v2 batch header, 61 bytes
_CRC_OFFSET = 17
_NO_PARTITION_LEADER_EPOCH = -1
_ENCODERS = {_GZIP: gzip_encode, _SNAPPY: snappy_encode, _LZ4: lz4_encode, _ZSTD: zstd_encode}


def zigzag(value: int) -> bytes:
    """``value`` as a Kafka (zigzag, base-128) varint."""
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# Record lengths and header counts are small: their encodings are looked up, not computed.
_SMALL = [zigzag(i) for i in range(1 << 14)]


def header_bytes(name: str, value: bytes) -> bytes:
    """One record header as it is written in a record."""
    raw = name.encode()
    return zigzag(len(raw)) + raw + zigzag(len(value)) + value


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    # A varint of two or more bytes (the one-byte case is decoded inline by the caller).
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if not byte:
                raise _Unusual  # padded: the builder would write it shorter
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift >= 64:
            raise _Unusual


def _restamp(plain: memoryview, codec: int, key_header: bytes) -> bytes:
    """The uncompressed batch ``plain`` rewritten with ``key_header`` on every record, as the
    builder writes it (``_Unusual`` if it is not a batch this path copies faithfully)."""
    (_, _, _, _, _, _, _, first_ts, _, producer_id, epoch, sequence, count) = _HEAD.unpack_from(
        plain, 0
    )
    if count <= 0:
        raise _Unusual
    out = bytearray(_RECORDS_OFFSET)
    small = _SMALL
    tail = b"\x02" + key_header  # header count 1, then the key id
    tail_len = len(tail)
    src = plain
    end = len(src)
    pos = _RECORDS_OFFSET
    max_ts = 0
    offset = 0
    left = count
    try:
        while left:
            b = src[pos]
            if b < 0x80:
                length = (b >> 1) ^ -(b & 1)
                pos += 1
            else:
                length, pos = _varint(src, pos)
            start = pos
            rec_end = pos + length
            if length <= 0 or rec_end > end or src[pos]:
                raise _Unusual  # record attributes are always 0 from the builder
            pos += 1
            b = src[pos]
            if b < 0x80:
                ts = (b >> 1) ^ -(b & 1)
                pos += 1
            else:
                ts, pos = _varint(src, pos)
            if ts > max_ts:
                max_ts = ts
                if left == count:
                    raise _Unusual  # the builder would move the base timestamp to this record
            elif ts < 0 and left == count:
                raise _Unusual
            b = src[pos]
            if b < 0x80:
                offset = (b >> 1) ^ -(b & 1)
                pos += 1
            else:
                offset, pos = _varint(src, pos)
            for _ in (0, 1):  # key, value
                b = src[pos]
                if b < 0x80:
                    size = (b >> 1) ^ -(b & 1)
                    pos += 1
                else:
                    size, pos = _varint(src, pos)
                if size >= 0:
                    pos += size
                elif size != -1:
                    raise _Unusual
            if src[pos] == 0 and pos + 1 == rec_end:
                # No headers: the record as it is, with a header count of 1 and the key id.
                body = pos - start
                new_len = body + tail_len
                out += small[new_len] if new_len < 16384 else zigzag(new_len)
                out += src[start:pos]
                out += tail
                pos = rec_end
            else:
                pos = _with_headers(src, start, pos, rec_end, key_header, out)
            left -= 1
        if pos != end:
            raise _Unusual
    except (IndexError, ValueError):
        raise _Unusual from None
    if codec:
        # Compressed even when that does not make it smaller, as aiokafka's (C) builder does.
        out = bytearray(_RECORDS_OFFSET) + _ENCODERS[codec](
            bytes(memoryview(out)[_RECORDS_OFFSET:])
        )
    try:
        _HEAD.pack_into(
            out,
            0,
            0,
            len(out) - _BATCH_OVERHEAD,
            _NO_PARTITION_LEADER_EPOCH,
            2,
            0,
            codec,
            offset,
            first_ts,
            first_ts + max_ts,
            producer_id,
            epoch,
            sequence,
            count,
        )
    except struct.error:
        raise _Unusual from None  # a field out of range: the builder raises its own error
    struct.pack_into(">I", out, _CRC_OFFSET, calc_crc32c(memoryview(out)[_ATTRIBUTES_OFFSET:]))
    return bytes(out)


def _with_headers(
    src: memoryview, start: int, pos: int, rec_end: int, key_header: bytes, out: bytearray
) -> int:
    """Appends the record at ``start`` (headers at ``pos``) to ``out`` without ``inbound.``
    headers and with ``key_header`` last; the position after the record."""
    hc_pos = pos
    b = src[pos]
    if b < 0x80:
        count = (b >> 1) ^ -(b & 1)
        pos += 1
    else:
        count, pos = _varint(src, pos)
    if count < 0:
        raise _Unusual
    kept: list[memoryview] = []
    for _ in range(count):
        first = pos
        b = src[pos]
        if b < 0x80:
            size = (b >> 1) ^ -(b & 1)
            pos += 1
        else:
            size, pos = _varint(src, pos)
        if size < 0:
            raise _Unusual
        name = bytes(src[pos : pos + size]).decode("utf-8")
        pos += size
        b = src[pos]
        if b < 0x80:
            size = (b >> 1) ^ -(b & 1)
            pos += 1
        else:
            size, pos = _varint(src, pos)
        if size >= 0:
            pos += size
        elif size != -1:
            raise _Unusual
        if not is_trusted(name):
            kept.append(src[first:pos])
    if pos != rec_end:
        raise _Unusual
    new_count = zigzag(len(kept) + 1)
    new_len = hc_pos - start + len(new_count) + sum(len(h) for h in kept) + len(key_header)
    out += zigzag(new_len)
    out += src[start:hc_pos]
    out += new_count
    for h in kept:
        out += h
    out += key_header
    return pos


def stamp_records(
    records: bytes, key_id: str, max_decompressed: int = DEFAULT_MAX_DECOMPRESSED
) -> bytes:
    """A partition's produce data with every batch stamped with ``key_id``."""
    header = (KEY_ID, key_id.encode())
    batches = split_batches(records)
    if len(batches) == 1:
        return stamp_batch(batches[0], header, max_decompressed)
    return b"".join(stamp_batch(b, header, max_decompressed) for b in batches)
