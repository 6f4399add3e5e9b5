"""The policy table's own checks and the advertised ranges at their edges (app/gateway/policy.py).

``_check`` runs once at import, so a row the codecs cannot decode fails at start-up instead of
when a client first uses it; it is called here on tables made for the purpose.
"""

from __future__ import annotations

import pytest
from kafka.protocol.api_key import ApiKey

from app.gateway import policy
from app.gateway.policy import APIS, Api, Route, advertised
from app.gateway.wire import MESSAGES


async def _handler(*_args: object) -> None:
    return None


def row(key: ApiKey, versions: tuple[int, int], route: Route = Route.LOCAL) -> Api:
    return Api(key, route, versions, _handler)  # type: ignore[arg-type]


def table(*apis: Api) -> dict[int, Api]:
    return {api.key: api for api in apis}


def top(key: ApiKey) -> int:
    return min(cls.max_version for cls in MESSAGES[key])


def test_the_real_table_passes_its_check() -> None:
    policy._check(APIS)


def test_a_row_without_a_codec_is_refused() -> None:
    assert ApiKey.DescribeGroups not in MESSAGES
    with pytest.raises(RuntimeError) as exc:
        policy._check(table(row(ApiKey.Produce, (0, 1)), row(ApiKey.DescribeGroups, (0, 1))))
    assert str(exc.value) == f"API {ApiKey.DescribeGroups} is in the policy table but has no codec"


@pytest.mark.parametrize("key", [ApiKey.Produce, ApiKey.ApiVersions, ApiKey.Fetch])
def test_version_ranges_within_the_codec_pass(key: ApiKey) -> None:
    high = top(key)
    for versions in ((0, 0), (0, high), (high, high), (1, high), (0, high - 1)):
        policy._check(table(row(key, versions)))


@pytest.mark.parametrize("key", [ApiKey.Produce, ApiKey.ApiVersions])
def test_version_ranges_beyond_the_codec_are_refused(key: ApiKey) -> None:
    high = top(key)
    for low, hi in ((-1, 0), (0, high + 1), (2, 1), (high + 1, high + 1), (-2, -1)):
        with pytest.raises(RuntimeError) as exc:
            policy._check(table(row(ApiKey.Metadata, (0, 1)), row(key, (low, hi))))
        assert str(exc.value) == f"API {key} v{low}-{hi} is beyond its codec's versions"


def test_the_codec_bound_is_the_lower_of_request_and_response() -> None:
    # A made-up pair whose response stops one version before its request.
    class Req:
        max_version = 5

    class Resp:
        max_version = 4

    saved = MESSAGES.get(ApiKey.Produce)
    MESSAGES[ApiKey.Produce] = (Req, Resp)  # type: ignore[index]
    try:
        policy._check(table(row(ApiKey.Produce, (0, 4))))
        with pytest.raises(RuntimeError, match="beyond its codec"):
            policy._check(table(row(ApiKey.Produce, (0, 5))))
    finally:
        MESSAGES[ApiKey.Produce] = saved  # type: ignore[index]


def test_advertised_keeps_a_single_common_version() -> None:
    apis = table(
        row(ApiKey.Fetch, (4, 12), Route.PASSTHROUGH),
        row(ApiKey.ListOffsets, (1, 9), Route.PASSTHROUGH),
        row(ApiKey.Metadata, (0, 12)),
    )
    assert advertised({1: (0, 4), 2: (9, 20)}, apis) == {1: (4, 4), 2: (9, 9), 3: (0, 12)}


def test_advertised_goes_on_after_a_passthrough_it_drops() -> None:
    apis = table(
        row(ApiKey.Fetch, (4, 12), Route.PASSTHROUGH),
        row(ApiKey.ListOffsets, (1, 9), Route.PASSTHROUGH),
        row(ApiKey.CreateTopics, (2, 7), Route.REFUSED),
        row(ApiKey.Metadata, (0, 12)),
    )
    # Fetch: the backend's 0-3 misses 4-12; ListOffsets: not served by the backend.
    assert advertised({1: (0, 3), 3: (0, 1)}, apis) == {19: (2, 7), 3: (0, 12)}
    assert advertised({2: (0, 3)}, apis) == {2: (1, 3), 19: (2, 7), 3: (0, 12)}
    # Local and refused rows ignore the backend, even when it names them.
    assert advertised({19: (0, 0), 3: (5, 5)}, apis) == {19: (2, 7), 3: (0, 12)}
