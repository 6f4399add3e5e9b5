"""The gateway's policy: one row per Kafka API it answers, and everything derived from it.

Each row says how the API is served, which versions, by which handler, and whether it may
be used before SASL completes. The ApiVersions answer, request dispatch and the pre-auth
rule are all read from this table, so they cannot disagree. An API without a row is not
advertised, which standard clients report as unsupported: refused just the same.

How an API is served decides how its version range is bounded:

- ``LOCAL``: the gateway decodes the request and builds the reply itself (possibly after
  asking the backend at a version of its own choosing), so the client's version is
  independent of the backend's;
- ``PASSTHROUGH``: the request is renamed and forwarded at the client's own version, so the
  range advertised is narrowed to what the backend supports;
- ``REFUSED``: answered with Kafka's authorization errors and never forwarded; advertised
  so clients get those errors instead of "unsupported version".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from kafka.protocol.api_key import ApiKey

from app.gateway import cluster, consume, produce, refusals
from app.gateway.session import Handler, Session
from app.gateway.wire import MESSAGES


class Route(Enum):
    LOCAL = "local"
    PASSTHROUGH = "passthrough"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Api:
    key: ApiKey
    route: Route
    versions: tuple[int, int]
    handler: Handler
    # Usable before authentication (as on a broker's SASL listener); such an API needs no
    # key, so it is also not re-checked against key revocation.
    pre_auth: bool = False


def _table(*apis: Api) -> dict[int, Api]:
    return {api.key: api for api in apis}


L, P, R = Route.LOCAL, Route.PASSTHROUGH, Route.REFUSED

# Produce v13 and Fetch v13 address topics by id, OffsetCommit/OffsetFetch v10 too: the
# gateway renames topics by name, so it stops just below those.
APIS: Mapping[int, Api] = _table(
    Api(ApiKey.ApiVersions, L, (0, 4), Session.api_versions, pre_auth=True),
    Api(ApiKey.SaslHandshake, L, (0, 1), Session.sasl_handshake, pre_auth=True),
    Api(ApiKey.SaslAuthenticate, L, (0, 2), Session.sasl_authenticate, pre_auth=True),
    Api(ApiKey.Metadata, L, (0, 12), cluster.handle_metadata),
    # From v0 because older librdkafka only enables its modern message format when Produce is
    # advertised from 0; requests carrying the old formats are refused per partition.
    Api(ApiKey.Produce, L, (0, 12), produce.handle_produce),
    Api(ApiKey.InitProducerId, L, (0, 5), cluster.handle_init_producer_id),
    Api(ApiKey.FindCoordinator, L, (0, 6), cluster.handle_find_coordinator),
    Api(ApiKey.Fetch, P, (4, 12), consume.handle_fetch),
    Api(ApiKey.ListOffsets, P, (1, 9), consume.handle_list_offsets),
    Api(ApiKey.OffsetCommit, P, (2, 9), consume.handle_offset_commit),
    Api(ApiKey.OffsetFetch, P, (1, 9), consume.handle_offset_fetch),
    Api(ApiKey.JoinGroup, P, (0, 9), consume.handle_join_group),
    Api(ApiKey.SyncGroup, P, (0, 5), consume.handle_sync_group),
    Api(ApiKey.Heartbeat, P, (0, 4), consume.handle_heartbeat),
    Api(ApiKey.LeaveGroup, P, (0, 5), consume.handle_leave_group),
    # Admin APIs: topics are created by the first produce to a valid name, never by a client.
    Api(ApiKey.CreateTopics, R, (2, 7), refusals.refuse_create_topics),
    Api(ApiKey.DeleteTopics, R, (1, 6), refusals.refuse_delete_topics),
    Api(ApiKey.CreatePartitions, R, (0, 3), refusals.refuse_create_partitions),
    # Transactions: refused; idempotent (non-transactional) producers are served.
    Api(ApiKey.AddPartitionsToTxn, R, (0, 3), refusals.refuse_add_partitions_to_txn),
    Api(ApiKey.AddOffsetsToTxn, R, (0, 4), refusals.refuse_add_offsets_to_txn),
    Api(ApiKey.EndTxn, R, (0, 4), refusals.refuse_end_txn),
    Api(ApiKey.TxnOffsetCommit, R, (0, 4), refusals.refuse_txn_offset_commit),
)


def _check(apis: Mapping[int, Api]) -> None:
    # A row the codecs cannot decode would only fail when a client first used it.
    for key, api in apis.items():
        pair = MESSAGES.get(key)
        if pair is None:
            raise RuntimeError(f"API {key} is in the policy table but has no codec")
        low, high = api.versions
        if not 0 <= low <= high <= min(cls.max_version for cls in pair):
            raise RuntimeError(f"API {key} v{low}-{high} is beyond its codec's versions")


_check(APIS)


def advertised(
    backend: dict[int, tuple[int, int]], apis: Mapping[int, Api] = APIS
) -> dict[int, tuple[int, int]]:
    """The versions to advertise: the table's, passthrough ranges narrowed to ``backend``'s
    (and left out when the backend serves none of them)."""
    table: dict[int, tuple[int, int]] = {}
    for key, api in apis.items():
        low, high = api.versions
        if api.route is Route.PASSTHROUGH:
            if key not in backend:
                continue
            b_low, b_high = backend[key]
            low, high = max(low, b_low), min(high, b_high)
            if low > high:
                continue
        table[key] = (low, high)
    return table
