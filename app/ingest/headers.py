"""Record header names Inbound reads and writes (the DLQ ones are a DESIGN.md contract)."""

# Set by the edge gateway and the HTTP API on every record they produce: which key wrote it.
KEY_ID = "inbound.key_id"
# Set by a replay: the original record's coordinates "topic/partition/offset", so the replayed
# event keeps the original's deterministic keen.id.
REPLAY_SOURCE = "inbound.replay.source"
REPLAY_COUNT = "inbound.replay.count"

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

# Customers may not set these themselves: the edge and the API strip them from incoming records.
TRUSTED_PREFIX = "inbound."
