from __future__ import annotations

import pytest

from app.webhooks.url_safety import UnsafeDestination, check_destination, is_public_address


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert is_public_address(address)


def test_destination_checks() -> None:
    with pytest.raises(UnsafeDestination):
        check_destination("http://127.0.0.1:8080/x", allow_private=False)
    with pytest.raises(UnsafeDestination):
        check_destination("http://localhost/x", allow_private=False)
    with pytest.raises(UnsafeDestination):
        check_destination("gopher://example.com/", allow_private=True)
    with pytest.raises(UnsafeDestination):
        check_destination("http:///nohost", allow_private=True)
    check_destination("http://127.0.0.1:8080/x", allow_private=True)
