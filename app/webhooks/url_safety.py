"""Refusing webhook destinations on private, loopback or link-local networks (SSRF).

Checked twice: when a URL is registered (a clear 400 for the customer) and again on every
connection, against the very address connected to, so a DNS name that later re-points
at 127.0.0.1 or the cloud metadata address gets nowhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing
from collections.abc import Callable
from urllib.parse import urlsplit

import httpcore
import httpx

MAX_URL_LENGTH = 2000

# Host and port -> the addresses it resolves to (blocking). The system's resolver unless one
# is injected (tests stand in a DNS that changes its answers between checks).
Resolver = Callable[[str, int], list[str]]


class UnsafeDestination(ValueError):
    """The URL is malformed or its host resolves to an address webhooks may not reach."""


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    # 6to4 / IPv4-mapped forms can smuggle a private IPv4 address inside an IPv6 one.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10"))
    )


def check_url_shape(url: str) -> tuple[str, int]:
    """The host and port of an http(s) URL, or UnsafeDestination saying what is wrong."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeDestination(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise UnsafeDestination("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UnsafeDestination(f"the URL cannot be parsed: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeDestination("the URL must start with https:// or http://")
    if not parts.hostname:
        raise UnsafeDestination("the URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeDestination("the URL has an invalid port") from exc
    return parts.hostname, port


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise UnsafeDestination(f"the host {host!r} does not resolve") from exc
    return sorted({info[4][0] for info in infos})


def check_destination(url: str, allow_private: bool, resolver: Resolver = resolve) -> None:
    """Raise UnsafeDestination unless every address the URL's host resolves to is public."""
    host, port = check_url_shape(url)
    if allow_private:
        return
    for address in resolver(host, port):
        if not is_public_address(address):
            raise UnsafeDestination(
                f"the host {host!r} resolves to {address}, a private, loopback or link-local "
                "address (set INBOUND_WEBHOOK_ALLOW_PRIVATE=true to allow it)"
            )


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself and connects only to a vetted address.

    TLS still uses the URL's host name (httpcore passes it to start_tls separately), so
    certificates are checked as usual.
    """

    def __init__(
        self, inner: httpcore.AsyncNetworkBackend, resolver: Resolver | None = None
    ) -> None:
        self._inner = inner
        self._resolver = resolver

    async def _addresses(self, host: str, port: int) -> list[str]:
        if self._resolver is not None:
            return await asyncio.to_thread(self._resolver, host, port)
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return [info[4][0] for info in infos]

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            # Resolved again for every connection: what the name pointed at when it was
            # registered proves nothing now. (UnsafeDestination is a ValueError.)
            addresses = await asyncio.wait_for(self._addresses(host, port), timeout)
        except (socket.gaierror, UnicodeError, ValueError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}") from exc
        allowed = [a for a in addresses if is_public_address(a)]
        if not allowed:
            raise httpcore.ConnectError(
                f"refused: {host} resolves only to private, loopback or link-local addresses"
            )
        return await self._inner.connect_tcp(
            allowed[0],
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks never use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def delivery_transport(
    allow_private: bool, resolver: Resolver | None = None
) -> httpx.AsyncHTTPTransport:
    """An httpx transport with no proxies from the environment and, unless private
    destinations are allowed, the connect-time address guard (resolving with ``resolver``,
    the system's by default)."""
    transport = httpx.AsyncHTTPTransport(trust_env=False, retries=0)
    if not allow_private:
        # httpx has no public hook for the network backend; its pool is rebuilt with the
        # same public httpcore API httpx itself uses, plus our guarded backend.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(httpcore.AnyIOBackend(), resolver),
        )
    return transport
