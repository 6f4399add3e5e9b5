"""Record header names Inbound reads and writes (docs/design.md, "A dead letter")."""

from __future__ import annotations

from collections.abc import Iterable

# Set by the edge gateway and the HTTP API on every record they produce: which key wrote it.
KEY_ID = "inbound.key_id"
# Set by a replay: the original record's coordinates "topic/partition/offset", so the replayed
# event keeps the original's deterministic keen.id.
REPLAY_SOURCE = "inbound.replay.source"
REPLAY_COUNT = "inbound.replay.count"
# Set by a replay: the error row whose replay_outcome this record's result belongs to (in a
# chain of failed replays each row is replayed under the first record's source).
REPLAY_ERROR_ID = "inbound.replay.error_id"
# Set by the replay of a fix (app/api/fixes): the fix whose patched payload this record carries.
FIX_ID = "inbound.fix.id"

ERROR_CODE = "inbound.error.code"
ERROR_STAGE = "inbound.error.stage"
ERROR_MESSAGE = "inbound.error.message"
ERROR_DETAIL = "inbound.error.detail"
ERROR_ID = "inbound.error.id"
ORIGINAL_TOPIC = "inbound.original.topic"
ORIGINAL_PARTITION = "inbound.original.partition"
ORIGINAL_OFFSET = "inbound.original.offset"
ORIGINAL_TIMESTAMP = "inbound.original.timestamp"
FAILED_AT = "inbound.failed_at"
# A dead letter whose value could not be kept as it was (too large for the DLQ topic, or
# none at all): why, and the original's size and sha256 so it can still be identified.
VALUE_OMITTED = "inbound.value.omitted"
VALUE_SIZE = "inbound.value.size"
VALUE_SHA256 = "inbound.value.sha256"
# Original headers dropped from a dead letter because together they were too large.
HEADERS_OMITTED = "inbound.headers.omitted"

# Customers may not set these themselves: the edge and the API strip them from incoming
# records, in any letter case (Kafka header names are case-sensitive, but a consumer that
# folds case must not be able to read a forged ``Inbound.Key_Id`` as ours).
TRUSTED_PREFIX = "inbound."

Headers = Iterable[tuple[str, bytes | None]]


def is_trusted(name: str) -> bool:
    """True for a name in Inbound's reserved ``inbound.`` namespace, whatever its case."""
    return name[: len(TRUSTED_PREFIX)].lower() == TRUSTED_PREFIX


def strip_trusted(headers: Headers) -> list[tuple[str, bytes | None]]:
    """The headers a client may set: everything outside the ``inbound.`` namespace."""
    return [(k, v) for k, v in headers if not is_trusted(k)]


def last_header(headers: Headers, name: str) -> bytes | None:
    """The value of the last header called ``name`` that has one (Kafka allows repeats; the
    last one set wins, as in most clients' header maps)."""
    found = None
    for k, v in headers:
        if k == name and v is not None:
            found = v
    return found


def last_header_text(headers: Headers, name: str) -> str | None:
    value = last_header(headers, name)
    return None if value is None else value.decode(errors="replace")
