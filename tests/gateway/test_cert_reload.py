"""A running gateway picks up renewed TLS files without a restart (`inbound certs --renew`):
new connections get the new certificate, clients configured before keep working, and files
that do not load (half-written, a key that is not the certificate's) leave the old one in use."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

import app.gateway.server as gateway_server
from app.contract.topics import inbound_topic
from app.tls.dev_certs import ensure_dev_certs, fingerprint
from tests.gateway.conftest import backend_records, kcat, kcat_sasl, make_edge
from tests.gateway.helpers import producer_for
from tests.support.cli import inbound, inbound_env
from tests.support.ports import free_port
from tests.support.worker import wait_until

pytestmark = pytest.mark.kafka


def served(port: int, ca_cert: str) -> str:
    """The SHA-256 fingerprint of the certificate a new TLS connection to ``port`` is shown,
    by a client that trusts only ``ca_cert`` and checks the name 127.0.0.1."""
    ctx = ssl.create_default_context(cafile=ca_cert)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def certs_cli(out: Path, *args: str) -> dict:
    done = inbound("certs", "--out", str(out), *args, env=inbound_env())
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def produce(edge, project: dict, topic: str, lines: bytes) -> None:  # noqa: ANN001
    result = kcat(*kcat_sasl(edge, project["project_id"], project["write_key"]), "-P", "-t",
                  topic, input=lines)  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-2000:]


@pytest.fixture
def fast_reload(monkeypatch: pytest.MonkeyPatch) -> None:
    # The gateway looks at its files every 2 s; the tests need not wait that long per step.
    monkeypatch.setattr(gateway_server, "TLS_RELOAD_SECONDS", 0.2)


def test_renew_reaches_the_running_gateway_and_configured_clients_keep_working(
    fast_reload: None, make_settings, sqlite_url: str, kafka_bootstrap: str, new_project,  # noqa: ANN001
    tmp_path: Path,
) -> None:  # fmt: skip
    certs_dir = tmp_path / "certs"
    info = certs_cli(certs_dir)  # the client settings a user copies after `make up`
    thread, edge = make_edge(make_settings, sqlite_url, kafka_bootstrap, info)
    loop = asyncio.new_event_loop()
    try:
        gateway = thread.gateway
        listener = gateway._servers[0]
        first = fingerprint(info["server_cert"])
        assert served(edge.tls_port, info["ca_cert"]) == first
        p = new_project()
        produce(edge, p, "purchases", b'{"n": 1}\n')

        # A connection opened before the renewal.
        async def opened():  # noqa: ANN202 - aiokafka wants its loop running when made
            producer = producer_for(edge, p["project_id"], p["write_key"])
            await producer.start()
            return producer

        producer = loop.run_until_complete(opened())

        # `inbound certs` again, as the README and `inbound up` suggest: nothing changes.
        assert certs_cli(certs_dir) == info
        assert fingerprint(info["server_cert"]) == first
        produce(edge, p, "purchases", b'{"n": 2}\n')

        assert certs_cli(certs_dir, "--renew") == info
        renewed = fingerprint(info["server_cert"])
        assert renewed != first
        wait_until(
            lambda: served(edge.tls_port, info["ca_cert"]) == renewed,
            30,
            lambda: f"the gateway still serves {served(edge.tls_port, info['ca_cert'])}",
        )
        # The same gateway and listener throughout: it was never restarted.
        assert thread.gateway is gateway and gateway._servers[0] is listener
        assert gateway.tls_port == edge.tls_port
        # A client configured with the first call's ca.pem connects anew (kcat: librdkafka),
        # and the connection opened before the renewal still produces.
        produce(edge, p, "purchases", b'{"n": 3}\n')
        loop.run_until_complete(producer.send_and_wait("purchases", b'{"n": 4}'))
        loop.run_until_complete(producer.stop())
        records = backend_records(edge.backend, inbound_topic(p["project_id"], "purchases"), 4)
        assert sorted(r.value for r in records) == [b'{"n": %d}' % n for n in (1, 2, 3, 4)]
    finally:
        loop.close()
        thread.stop()


def test_files_that_do_not_load_leave_the_old_certificate_serving(
    fast_reload: None, make_settings, sqlite_url: str, kafka_bootstrap: str,  # noqa: ANN001
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger="inbound.gateway")
    info, _ = ensure_dev_certs(tmp_path / "certs")
    other, _ = ensure_dev_certs(tmp_path / "other")  # a valid pair of another CA
    thread, edge = make_edge(make_settings, sqlite_url, kafka_bootstrap, info)
    cert = Path(info["server_cert"])
    good_cert = cert.read_bytes()
    first = fingerprint(cert)

    def failures() -> int:
        return sum("not reloaded" in r.getMessage() for r in caplog.records)

    try:
        assert served(edge.tls_port, info["ca_cert"]) == first
        # A half-written certificate (written in place, not renamed over).
        cert.write_bytes(good_cert[: len(good_cert) // 3])
        wait_until(lambda: failures() >= 1, 30, "no failed reload was logged")
        assert served(edge.tls_port, info["ca_cert"]) == first
        # A whole certificate whose key is not the one beside it.
        cert.write_bytes(Path(other["server_cert"]).read_bytes())
        wait_until(lambda: failures() >= 2, 30, "no failed reload was logged")
        assert served(edge.tls_port, info["ca_cert"]) == first
        errors = [r for r in caplog.records if "not reloaded" in r.getMessage()]
        assert all(r.levelno == logging.ERROR for r in errors)
        assert "keeping the current certificate" in errors[-1].getMessage()
        # Put right by a renewal, which the gateway then loads.
        ensure_dev_certs(tmp_path / "certs", renew=True)
        renewed = fingerprint(cert)
        wait_until(lambda: served(edge.tls_port, info["ca_cert"]) == renewed, 30,
                   lambda: f"the gateway still serves {served(edge.tls_port, info['ca_cert'])}")  # fmt: skip
    finally:
        thread.stop()


def test_sighup_reloads_at_once_in_the_gateway_process(
    kafka_bootstrap: str, sqlite_url: str, tmp_path: Path
) -> None:
    """`inbound gateway` with its own dev certificates (made on first start, as under `inbound
    up`), the file watcher slowed to an hour: only SIGHUP can make it load the renewed pair."""
    data_dir = tmp_path / "data"
    port = free_port()
    env = inbound_env(
        INBOUND_DATA_DIR=str(data_dir),
        INBOUND_DATABASE_URL=sqlite_url,
        INBOUND_KAFKA_BOOTSTRAP=kafka_bootstrap,
        INBOUND_GATEWAY_PORT=str(port),
    )
    code = (
        "import app.gateway.server as s; s.TLS_RELOAD_SECONDS = 3600.0; "
        "from app.settings import get_settings; s.run_gateway(get_settings())"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        ca = data_dir / "certs" / "ca.pem"

        def first_served() -> str | None:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            try:
                return served(port, str(ca))
            except (OSError, ssl.SSLError):
                return None

        first = wait_until(first_served, 90, "the gateway did not come up")
        info = certs_cli(data_dir / "certs")  # the gateway's own files: printed, kept
        assert fingerprint(info["server_cert"]) == first
        certs_cli(data_dir / "certs", "--renew")
        renewed = fingerprint(info["server_cert"])
        assert renewed != first
        assert served(port, str(ca)) == first  # no reload yet: the watcher sleeps an hour
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: served(port, str(ca)) == renewed, 30, "SIGHUP did not reload")
        assert proc.poll() is None
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
