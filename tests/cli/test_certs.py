"""`inbound certs` (README: "a development CA and server certificate for the gateway, and the
client settings"; made under <data_dir>/certs, `ca.pem` for librdkafka clients and the PKCS12
`truststore.p12` with password `inbound-dev` for Java clients, who connect to 127.0.0.1)."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from tests.support.cli import inbound, inbound_env


def _mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _handshake(server_cert: str, server_key: str, ca_cert: str) -> x509.Certificate:
    """A real TLS handshake on loopback: a server with ``server_cert``/``server_key``, a client
    that trusts only ``ca_cert`` and checks the name 127.0.0.1; the certificate it was shown.
    Raises ssl.SSLCertVerificationError when the client does not trust it."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(server_cert, server_key)
    client_ctx = ssl.create_default_context(cafile=ca_cert)
    assert client_ctx.check_hostname and client_ctx.verify_mode == ssl.CERT_REQUIRED
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            try:
                conn, _ = listener.accept()
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"ok")
            except (OSError, ssl.SSLError):
                pass  # the client's side says what went wrong

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                assert tls.recv(2) == b"ok"
                return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
        finally:
            thread.join(10)


@pytest.fixture
def made(tmp_path: Path) -> tuple[Path, dict]:
    data_dir = tmp_path / "data"
    old = os.umask(0o022)  # a usual umask: without care new files are 0644
    try:
        done = inbound("certs", env=inbound_env(INBOUND_DATA_DIR=str(data_dir)))
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stdout + done.stderr
    return data_dir / "certs", json.loads(done.stdout)


def test_certs_writes_the_files_under_the_data_dir(made: tuple[Path, dict]) -> None:
    certs, info = made
    assert Path(info["ca_cert"]) == certs / "ca.pem"
    assert Path(info["truststore"]) == certs / "truststore.p12"
    for name in ("ca_cert", "ca_key", "server_cert", "server_key", "truststore"):
        path = Path(info[name])
        assert path.is_file() and path.stat().st_size > 0, name
        assert path.parent == certs, name
    # Private keys are readable by their owner only.
    for name in ("ca_key", "server_key"):
        assert _mode(info[name]) & 0o077 == 0, f"{name} is {oct(_mode(info[name]))}"
    # The gateway settings that use them.
    assert info["gateway_env"] == {
        "INBOUND_GATEWAY_TLS_CERT": info["server_cert"],
        "INBOUND_GATEWAY_TLS_KEY": info["server_key"],
    }


def test_certs_prints_the_readme_client_settings(made: tuple[Path, dict]) -> None:
    certs, info = made
    rdkafka = info["librdkafka_settings"]
    assert rdkafka["security.protocol"] == "SASL_SSL"
    assert rdkafka["sasl.mechanisms"] == "PLAIN"
    assert rdkafka["ssl.ca.location"] == str(certs / "ca.pem")
    java = info["java_client_properties"]
    assert java["security.protocol"] == "SASL_SSL"
    assert java["sasl.mechanism"] == "PLAIN"
    assert "PlainLoginModule required" in java["sasl.jaas.config"]
    assert java["ssl.truststore.location"] == str(certs / "truststore.p12")
    assert java["ssl.truststore.type"] == "PKCS12"
    assert java["ssl.truststore.password"] == "inbound-dev"


def test_server_certificate_is_signed_by_the_ca_and_names_127_0_0_1(
    made: tuple[Path, dict],
) -> None:
    _, info = made
    server = x509.load_pem_x509_certificates(Path(info["server_cert"]).read_bytes())[0]
    ca = x509.load_pem_x509_certificate(Path(info["ca_cert"]).read_bytes())
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert server.issuer == ca.subject
    server.verify_directly_issued_by(ca)

    # A real TLS handshake on loopback: the server loads the chain and key, a client that
    # trusts only ca.pem verifies it for 127.0.0.1 (the README's bootstrap address).
    assert _handshake(info["server_cert"], info["server_key"], info["ca_cert"]) == server


def test_truststore_holds_the_ca_under_the_readme_password(made: tuple[Path, dict]) -> None:
    keytool = shutil.which("keytool")
    if keytool is None:
        pytest.skip("keytool (the JDK, which Kafka needs anyway) is not installed")
    _, info = made
    listed = subprocess.run(
        [keytool, "-list", "-v", "-keystore", info["truststore"], "-storetype", "PKCS12",
         "-storepass", "inbound-dev"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "trustedCertEntry" in listed.stdout
    ca = x509.load_pem_x509_certificate(Path(info["ca_cert"]).read_bytes())
    digest = hashlib.sha256(ca.public_bytes(Encoding.DER)).hexdigest().upper()
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
    assert fingerprint in listed.stdout


def test_certs_out_option_writes_elsewhere(tmp_path: Path) -> None:
    out = tmp_path / "elsewhere"
    env = inbound_env(INBOUND_DATA_DIR=str(tmp_path / "data"))
    done = inbound("certs", "--out", str(out), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    info = json.loads(done.stdout)
    assert Path(info["ca_cert"]) == out / "ca.pem" and (out / "ca.pem").is_file()
    assert not (tmp_path / "data" / "certs").exists()


def _files(certs: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(certs.iterdir()) if p.is_file()}


def _certs(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return inbound("certs", *args, env=inbound_env(INBOUND_DATA_DIR=str(data_dir)))


def test_certs_again_keeps_the_files_so_configured_clients_keep_working(
    made: tuple[Path, dict],
) -> None:
    """The first-run bug: a second `inbound certs` made a new CA, and every client configured
    from the first one failed with `certificate verify failed`."""
    certs, first = made
    before = _files(certs)
    assert {"ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "truststore.p12"} <= set(before)
    # The client keeps what the first call gave it, as a user copying ca.pem away would.
    client_ca = certs.parent / "client-ca.pem"
    client_ca.write_bytes(Path(first["ca_cert"]).read_bytes())

    again = _certs(certs.parent)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout) == first  # same output: the same paths and settings
    assert _files(certs) == before  # not one byte rewritten
    assert "existing" in again.stderr
    # The gateway's pair after the second call is still trusted by the first call's CA.
    shown = _handshake(first["server_cert"], first["server_key"], str(client_ca))
    assert shown == x509.load_pem_x509_certificates(before["server.pem"])[0]


def test_renew_reissues_the_server_certificate_with_the_same_ca(made: tuple[Path, dict]) -> None:
    certs, first = made
    before = _files(certs)
    client_ca = certs.parent / "client-ca.pem"
    client_ca.write_bytes(before["ca.pem"])

    renewed = _certs(certs.parent, "--renew")
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    assert json.loads(renewed.stdout) == first
    after = _files(certs)
    old_server = x509.load_pem_x509_certificates(before["server.pem"])[0]
    new_server = x509.load_pem_x509_certificates(after["server.pem"])[0]
    assert new_server.fingerprint(hashes.SHA256()) != old_server.fingerprint(hashes.SHA256())
    assert after["server-key.pem"] != before["server-key.pem"]
    # The CA and truststore clients hold are unchanged, and trust the new certificate.
    for name in ("ca.pem", "ca-key.pem", "truststore.p12"):
        assert after[name] == before[name], name
    assert _handshake(first["server_cert"], first["server_key"], str(client_ca)) == new_server
    assert _mode(first["server_key"]) & 0o077 == 0
    assert new_server.fingerprint(hashes.SHA256()).hex().upper()[:8] in renewed.stderr.replace(
        ":", ""
    )


def test_renew_ca_makes_a_new_ca_that_old_clients_do_not_trust(made: tuple[Path, dict]) -> None:
    certs, first = made
    before = _files(certs)
    client_ca = certs.parent / "client-ca.pem"
    client_ca.write_bytes(before["ca.pem"])

    renewed = _certs(certs.parent, "--renew-ca")
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    assert json.loads(renewed.stdout) == first
    after = _files(certs)
    for name in ("ca.pem", "ca-key.pem", "server.pem", "server-key.pem"):
        assert after[name] != before[name], name
    if shutil.which("keytool"):
        assert after["truststore.p12"] != before["truststore.p12"]
    new_server = x509.load_pem_x509_certificates(after["server.pem"])[0]
    new_server.verify_directly_issued_by(x509.load_pem_x509_certificate(after["ca.pem"]))
    assert _handshake(first["server_cert"], first["server_key"], first["ca_cert"]) == new_server
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(first["server_cert"], first["server_key"], str(client_ca))


def test_without_the_ca_key_certs_still_prints_and_renew_says_what_to_do(
    made: tuple[Path, dict],
) -> None:
    certs, first = made
    Path(first["ca_key"]).unlink()  # a careful user keeps the CA key elsewhere
    before = _files(certs)
    shown = _certs(certs.parent)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert json.loads(shown.stdout) == first
    assert _files(certs) == before

    refused = _certs(certs.parent, "--renew")
    assert refused.returncode == 1
    assert "ca-key.pem" in refused.stderr and "--renew-ca" in refused.stderr
    assert _files(certs) == before


def test_missing_server_files_are_issued_by_the_existing_ca(made: tuple[Path, dict]) -> None:
    certs, first = made
    ca_before = Path(first["ca_cert"]).read_bytes()
    Path(first["server_cert"]).unlink()
    done = _certs(certs.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert Path(first["ca_cert"]).read_bytes() == ca_before
    _handshake(first["server_cert"], first["server_key"], first["ca_cert"])


def test_help_documents_renew_and_renew_ca() -> None:
    done = inbound("certs", "--help", env=inbound_env(COLUMNS="200"))
    assert done.returncode == 0, done.stderr
    assert "--renew " in done.stdout and "--renew-ca" in done.stdout
    assert "same CA" in done.stdout or "existing CA" in done.stdout


def test_private_keys_are_never_readable_by_others_not_even_briefly(
    tmp_path: Path,
) -> None:
    """Keys are created 0600, not written under the umask and chmod-ed after. Checked at every
    audited operation of the run (each open, chmod, rename, subprocess), in this process."""
    out = tmp_path / "certs"
    exposed: list[str] = []
    state = {"on": True, "busy": False}

    def hook(event: str, _args: tuple) -> None:
        if not state["on"] or state["busy"]:
            return
        state["busy"] = True  # looking (os.listdir, os.stat) raises audit events too
        try:
            for name in os.listdir(out) if out.is_dir() else []:
                try:
                    mode = _mode(out / name)
                except FileNotFoundError:
                    continue
                if "key" in name and mode & 0o077:
                    exposed.append(f"{event}: {name} {oct(mode)}")
        finally:
            state["busy"] = False

    import sys

    from app.tls.dev_certs import ensure_dev_certs

    sys.addaudithook(hook)  # hooks cannot be removed: ``state`` turns it off
    old = os.umask(0o022)
    try:
        ensure_dev_certs(out)
        ensure_dev_certs(out, renew=True)
        ensure_dev_certs(out, renew_ca=True)
    finally:
        os.umask(old)
        state["on"] = False
    assert exposed == []
    for name in ("ca-key.pem", "server-key.pem"):
        assert _mode(out / name) == 0o600
