"""The policy table: what the edge advertises, who answers each API, what needs a login."""

from __future__ import annotations

import inspect

import pytest

from app.gateway.policy import APIS, Route, advertised
from app.gateway.wire import MESSAGES

# The contract toward clients, in Kafka's API key numbers: (min, max) served. Passthrough
# ranges are further narrowed by the backend.
SERVED = {
    0: (0, 12),  # Produce
    1: (4, 12),  # Fetch
    2: (1, 9),  # ListOffsets
    3: (0, 12),  # Metadata
    8: (2, 9),  # OffsetCommit
    9: (1, 9),  # OffsetFetch
    10: (0, 6),  # FindCoordinator
    11: (0, 9),  # JoinGroup
    12: (0, 4),  # Heartbeat
    13: (0, 5),  # LeaveGroup
    14: (0, 5),  # SyncGroup
    17: (0, 1),  # SaslHandshake
    18: (0, 4),  # ApiVersions
    19: (2, 7),  # CreateTopics
    20: (1, 6),  # DeleteTopics
    22: (0, 5),  # InitProducerId
    24: (0, 3),  # AddPartitionsToTxn
    25: (0, 4),  # AddOffsetsToTxn
    26: (0, 4),  # EndTxn
    28: (0, 4),  # TxnOffsetCommit
    36: (0, 2),  # SaslAuthenticate
    37: (0, 3),  # CreatePartitions
}
PASSTHROUGH = {1, 2, 8, 9, 11, 12, 13, 14}
REFUSED = {19, 20, 24, 25, 26, 28, 37}


def test_the_table_serves_exactly_the_contracted_versions() -> None:
    assert {int(k): api.versions for k, api in APIS.items()} == SERVED


def test_routes() -> None:
    assert {int(k) for k, a in APIS.items() if a.route is Route.PASSTHROUGH} == PASSTHROUGH
    assert {int(k) for k, a in APIS.items() if a.route is Route.REFUSED} == REFUSED
    local = set(SERVED) - PASSTHROUGH - REFUSED
    assert {int(k) for k, a in APIS.items() if a.route is Route.LOCAL} == local


def test_only_sasl_and_api_versions_before_authentication() -> None:
    # SaslHandshake 17, ApiVersions 18, SaslAuthenticate 36.
    assert {int(k) for k, a in APIS.items() if a.pre_auth} == {17, 18, 36}


def test_every_row_has_a_handler_of_its_kind() -> None:
    homes = {
        Route.REFUSED: {"app.gateway.refusals"},
        Route.PASSTHROUGH: {"app.gateway.consume"},
        Route.LOCAL: {"app.gateway.cluster", "app.gateway.produce", "app.gateway.session"},
    }
    for key, api in APIS.items():
        assert inspect.iscoroutinefunction(api.handler), key
        assert api.handler.__module__ in homes[api.route], (key, api.handler)
        if api.route is Route.REFUSED:
            assert api.handler.__name__.startswith("refuse_"), key
        # What is usable before a login is answered by the session itself.
        assert api.pre_auth == (api.handler.__module__ == "app.gateway.session"), key


def test_every_row_is_decodable_at_every_version_it_serves() -> None:
    for key, api in APIS.items():
        request, response = MESSAGES[key]
        low, high = api.versions
        assert request.API_KEY == response.API_KEY == key
        assert request.max_version >= high and response.max_version >= high, key
        for version in range(low, high + 1):
            request().encode(version=version)
            response().encode(version=version)


def test_no_codec_without_a_row() -> None:
    # The backend side speaks only APIs the edge serves too, so every codec has a row.
    assert set(MESSAGES) == set(APIS)


def test_advertised_narrows_passthrough_to_the_backend() -> None:
    backend = {1: (0, 11), 2: (2, 5), 8: (0, 9), 9: (0, 9), 11: (0, 9), 12: (0, 4), 14: (0, 5)}
    table = advertised(backend)
    assert table[1] == (4, 11)
    assert table[2] == (2, 5)
    # Not served by the backend: not advertised.
    assert 13 not in table
    # Local and refused APIs do not depend on the backend.
    for key in set(SERVED) - PASSTHROUGH:
        assert table[key] == SERVED[key]


def test_advertised_drops_a_passthrough_range_the_backend_cannot_meet() -> None:
    table = advertised({1: (0, 3)})
    assert 1 not in table
    assert advertised({})[0] == (0, 12)


@pytest.mark.parametrize("key", sorted(PASSTHROUGH))
def test_a_wide_backend_does_not_widen_the_table(key: int) -> None:
    assert advertised({key: (0, 99)})[key] == SERVED[key]
