"""Loopback ports for servers the tests start.

Ports come from below the kernel's ephemeral range: a port the kernel hands out for an
outgoing connection (or a bind to port 0) can never collide with one given here between
the check and the server's bind. Within one test process a port is never handed out twice,
so two servers asked for in a row cannot race for the same number.
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

# Servers (HTTP, PostgreSQL, the edge) draw from one band, local Kafka bases from another,
# both below the ephemeral range.
_SERVER_BAND = (10000, 19999)
_KAFKA_BAND = (20000, 30000)
_handed_out: set[int] = set()


def ephemeral_low() -> int:
    """The lowest port the kernel may pick for an outgoing connection."""
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _claim(candidates: list[int]) -> bool:
    if any(p in _handed_out for p in candidates) or not all(is_free(p) for p in candidates):
        return False
    _handed_out.update(candidates)
    return True


def free_port() -> int:
    low, high = _SERVER_BAND
    high = min(high, ephemeral_low() - 1)
    # Parallel test processes start at different points of the band.
    start = random.Random(os.getpid()).randrange(low, high)
    span = high - low + 1
    for step in range(span):
        port = low + (start - low + step) % span
        if _claim([port]):
            return port
    raise RuntimeError(f"no free loopback port in {low}-{high}")


def free_kafka_base(nodes: int = 1) -> int:
    """A base port whose brokers (base + 100*i) and controllers (+1000) are all free."""
    low, high = _KAFKA_BAND
    high = min(high, ephemeral_low() - 1) - 1000 - 100 * nodes
    for _ in range(200):
        base = random.randrange(low, high)
        ports = [base + 100 * i + off for i in range(nodes) for off in (0, 1000)]
        if _claim(ports):
            return base
    raise RuntimeError("no free port range for a local Kafka")
