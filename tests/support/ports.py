"""Free loopback ports for servers the tests start."""

from __future__ import annotations

import random
import socket


def is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_kafka_base(nodes: int = 1) -> int:
    """A base port whose brokers (base + 100*i) and controllers (+1000) are all free."""
    for _ in range(200):
        base = random.randrange(20000, 40000)
        ports = [base + 100 * i + off for i in range(nodes) for off in (0, 1000)]
        if all(is_free(p) for p in ports):
            return base
    raise RuntimeError("no free port range for a local Kafka")
