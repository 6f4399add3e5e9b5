"""Rewriting a produced record batch so every record says which key wrote it.

A v2 record batch is checksummed as a whole, so adding a header means rebuilding it. The
rebuilt batch keeps what idempotence and ordering rely on: producer id, epoch and base
sequence, the number of records and their offset deltas, timestamps and the compression
codec. Customer headers starting with ``inbound.`` are dropped: only Inbound sets those.
"""

from __future__ import annotations

import struct

from aiokafka.errors import UnsupportedCodecError
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from app.contract.headers import KEY_ID, TRUSTED_PREFIX

# Offsets of fields in a v2 batch header (Kafka's DefaultRecordBatch layout).
_LENGTH_OFFSET = 8
_MAGIC_OFFSET = 16
_ATTRIBUTES_OFFSET = 21
_BATCH_OVERHEAD = 12  # base offset (8) + length (4), not counted in the length field
_TRANSACTIONAL = 0x10
_CONTROL = 0x20
_MAX_BUILD = 1 << 31


class BatchRefused(Exception):
    """The batch cannot be accepted; ``code`` is the Kafka error to answer with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def split_batches(records: bytes) -> list[memoryview]:
    """The consecutive record batches in a partition's produce data."""
    view = memoryview(records)
    out: list[memoryview] = []
    pos = 0
    while pos < len(view):
        if len(view) - pos < _BATCH_OVERHEAD + 5:
            raise BatchRefused(2, "truncated record batch")
        (length,) = struct.unpack_from(">i", view, pos + _LENGTH_OFFSET)
        end = pos + _BATCH_OVERHEAD + length
        if length <= 0 or end > len(view):
            raise BatchRefused(2, "truncated record batch")
        out.append(view[pos:end])
        pos = end
    return out


def stamp_batch(batch: memoryview, key_id_header: tuple[str, bytes]) -> bytes:
    """One batch rebuilt with the key-id header on every record."""
    magic = batch[_MAGIC_OFFSET]
    if magic != 2:
        # Message formats v0/v1 predate headers; Kafka 4 brokers no longer accept them either.
        raise BatchRefused(43, f"record batch magic {magic} is not supported; use magic 2")
    (attributes,) = struct.unpack_from(">h", batch, _ATTRIBUTES_OFFSET)
    if attributes & (_TRANSACTIONAL | _CONTROL):
        raise BatchRefused(53, "transactions are not allowed on this cluster")
    reader = DefaultRecordBatch(bytes(batch))
    if not reader.validate_crc():
        raise BatchRefused(2, "record batch CRC mismatch")
    builder = DefaultRecordBatchBuilder(
        2,
        reader.compression_type,
        0,
        reader.producer_id,
        reader.producer_epoch,
        reader.base_sequence,
        _MAX_BUILD,
    )
    base = reader.base_offset
    try:
        for record in reader:
            headers = [h for h in record.headers if not h[0].startswith(TRUSTED_PREFIX)]
            headers.append(key_id_header)
            builder.append(
                record.offset - base, record.timestamp, record.key, record.value, headers
            )
        return bytes(builder.build())
    except UnsupportedCodecError as exc:
        raise BatchRefused(76, str(exc)) from exc


def stamp_records(records: bytes, key_id: str) -> bytes:
    """A partition's produce data with every batch stamped with ``key_id``."""
    header = (KEY_ID, key_id.encode())
    batches = split_batches(records)
    if len(batches) == 1:
        return stamp_batch(batches[0], header)
    return b"".join(stamp_batch(b, header) for b in batches)
