"""Which API versions the gateway advertises, and why each range is what it is.

Two kinds of API:

- *local*: the gateway decodes the request and builds the reply itself (possibly after
  asking the backend at a version of its own choosing), so the client's version is
  independent of the backend's;
- *passthrough*: the request is renamed and forwarded at the client's own version, so the
  range must also lie within what the backend supports.
"""

from __future__ import annotations

from kafka.protocol.api_key import ApiKey

# Produce v13 and Fetch v13 address topics by id, OffsetCommit/OffsetFetch v10 too: the
# gateway renames topics by name, so it stops just below those.
LOCAL: dict[int, tuple[int, int]] = {
    ApiKey.ApiVersions: (0, 4),
    ApiKey.SaslHandshake: (0, 1),
    ApiKey.SaslAuthenticate: (0, 2),
    ApiKey.Metadata: (0, 12),
    # From v0 because older librdkafka only enables its modern message format when Produce is
    # advertised from 0; requests carrying the old formats are refused per partition.
    ApiKey.Produce: (0, 12),
    ApiKey.InitProducerId: (0, 5),
    ApiKey.FindCoordinator: (0, 6),
    # Refused, but advertised so clients get Kafka's authorization errors instead of
    # "unsupported version". Other admin APIs (configs, ACLs, ...) are not advertised at all,
    # which standard clients report as unsupported: refused just the same.
    ApiKey.CreateTopics: (2, 7),
    ApiKey.DeleteTopics: (1, 6),
    ApiKey.CreatePartitions: (0, 3),
    ApiKey.AddPartitionsToTxn: (0, 3),
    ApiKey.AddOffsetsToTxn: (0, 4),
    ApiKey.EndTxn: (0, 4),
    ApiKey.TxnOffsetCommit: (0, 4),
}

PASSTHROUGH: dict[int, tuple[int, int]] = {
    ApiKey.Fetch: (4, 12),
    ApiKey.ListOffsets: (1, 9),
    ApiKey.OffsetCommit: (2, 9),
    ApiKey.OffsetFetch: (1, 9),
    ApiKey.JoinGroup: (0, 9),
    ApiKey.SyncGroup: (0, 5),
    ApiKey.Heartbeat: (0, 4),
    ApiKey.LeaveGroup: (0, 5),
}

# Before SASL completes only these may be used (as on a broker's SASL listener).
PRE_AUTH = frozenset({ApiKey.ApiVersions, ApiKey.SaslHandshake, ApiKey.SaslAuthenticate})


def advertised(backend: dict[int, tuple[int, int]]) -> dict[int, tuple[int, int]]:
    """The gateway's table, passthrough ranges narrowed to what ``backend`` supports."""
    table = dict(LOCAL)
    for key, (low, high) in PASSTHROUGH.items():
        if key not in backend:
            continue
        b_low, b_high = backend[key]
        low, high = max(low, b_low), min(high, b_high)
        if low <= high:
            table[key] = (low, high)
    return table


def backend_version(
    backend: dict[int, tuple[int, int]], api_key: int, preferred: int, floor: int = 0
) -> int:
    """The version to speak to the backend for a local API: ``preferred`` clamped to its range."""
    low, high = backend.get(api_key, (floor, preferred))
    return max(low, floor, min(preferred, high))
