"""Kafka edge under hostile clients: the gateway's memory idle and after each hostile load.

    .venv/bin/python -m bench.gateway_hostile_bench                  # starts a local broker
    .venv/bin/python -m bench.gateway_hostile_bench --bootstrap 127.0.0.1:9092 --connections 90

Starts a local Kafka broker (unless ``--bootstrap``), a fresh SQLite database with one project
and ``inbound gateway`` as a subprocess with its default limits (plus a plaintext listener the
loads use), then reads the gateway's VmRSS (and VmHWM, its peak) from /proc/<pid>/status:

1. idle;
2. pre-auth big frames: ``--connections`` connections each announce a 100 MB frame and send
   64 KB of it;
3. partial frames: ``--connections`` connections each announce a 500 KB frame (under the
   pre-auth limit), send 400 KB of it and stall (measured while they are open);
4. decompression bombs: one zstd and one gzip batch of 100 MB of zeros each (a few KB on the
   wire), produced by an authenticated client, five times each;
5. ``--logins`` failed logins from ``--threads`` threads (most are throttled).

Goal: under 150 MB after every load.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.gateway_support import running_gateway
from tests.gateway.rawclient import Raw, batch

_GZIP, _ZSTD = 1, 4


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def _settle() -> None:
    time.sleep(1.0)  # let the gateway notice closed connections and free their buffers


def _big_prefix(port: int, n: int) -> str:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            s.sendall(struct.pack(">i", 100 * 1024 * 1024) + b"\x00" * 65536)
        except OSError:
            pass  # closed by the gateway while sending: what it should do
        socks.append(s)
    closed = 0
    for s in socks:
        s.settimeout(5)
        try:
            closed += s.recv(1) == b""
        except OSError:
            closed += 1
        s.close()
    return f"{closed}/{n} closed by the gateway"


def _partial(port: int, n: int, pid: int) -> tuple[str, dict[str, int]]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(struct.pack(">i", 500 * 1024) + b"\x00" * (400 * 1024))
        socks.append(s)
    time.sleep(1.0)
    held = _status(pid)
    for s in socks:
        s.close()
    return f"{n} connections held open, 400 KB sent each", held


def _bombs(port: int, user: str, password: str) -> str:
    zstd = batch([b"\x00" * (100 * 1024 * 1024)], _ZSTD)
    gzip = batch([b"\x00" * (100 * 1024 * 1024)], _GZIP)
    raw = Raw(port)
    codes = []
    try:
        assert raw.sasl(user, password).error_code == 0
        for _ in range(5):
            codes.append(raw.produce("bombs", zstd).error_code)
            codes.append(raw.produce("bombs", gzip).error_code)
    finally:
        raw.close()
    return (
        f"zstd {len(zstd):,} B, gzip {len(gzip):,} B on the wire; error codes {sorted(set(codes))}"
    )


def _failed_logins(port: int, user: str, n: int, threads: int) -> str:
    def one(i: int) -> str:
        try:
            raw = Raw(port, timeout=30)
        except OSError:
            return "refused"
        try:
            answer = raw.sasl(user, f"{i:064d}")
            return "throttled" if "too many" in (answer.error_message or "") else "failed"
        except (OSError, ConnectionError):
            return "closed"
        finally:
            raw.close()

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(one, range(n)))
    took = time.monotonic() - started
    counts = {k: results.count(k) for k in sorted(set(results))}
    return f"{counts} in {took:.1f} s ({n / took:.0f}/s)"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap")
    parser.add_argument("--connections", type=int, default=90)
    parser.add_argument("--logins", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=20)
    ns = parser.parse_args()

    with running_gateway(ns.bootstrap, "hostile", plain=True, log_level="ERROR") as edge:
        user, secret, plain = edge.project_id, edge.secret, edge.plain_port
        assert plain is not None
        gw = edge.process.pid

        rows: list[tuple[str, dict[str, int], str]] = []
        time.sleep(1.0)
        rows.append(("idle", _status(gw), ""))
        note = _big_prefix(plain, ns.connections)
        _settle()
        rows.append((f"pre-auth 100 MB prefix x{ns.connections}", _status(gw), note))
        note, held = _partial(plain, ns.connections, gw)
        rows.append((f"partial frames x{ns.connections} (open)", held, note))
        _settle()
        rows.append(("  after they close", _status(gw), ""))
        note = _bombs(plain, user, secret)
        _settle()
        rows.append(("decompression bombs 100 MB x10", _status(gw), note))
        note = _failed_logins(plain, user, ns.logins, ns.threads)
        _settle()
        rows.append((f"{ns.logins} failed logins", _status(gw), note))

        print()
        print(f"{'load':40}{'VmRSS MB':>10}{'VmHWM MB':>10}  notes")
        for name, st, note in rows:
            print(f"{name:40}{st['VmRSS'] / 1024:>10.1f}{st['VmHWM'] / 1024:>10.1f}  {note}")
        worst = max(st["VmHWM"] for _, st, _ in rows) / 1024
        print()
        print(f"peak RSS {worst:.1f} MB (goal < 150 MB)")
        return 0


if __name__ == "__main__":
    sys.exit(main())
