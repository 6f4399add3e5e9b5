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
from cryptography.hazmat.primitives.serialization import Encoding

from tests.support.cli import inbound, inbound_env


def _mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


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
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(info["server_cert"], info["server_key"])
    client_ctx = ssl.create_default_context(cafile=info["ca_cert"])
    assert client_ctx.check_hostname and client_ctx.verify_mode == ssl.CERT_REQUIRED
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        failures: list[BaseException] = []

        def serve() -> None:
            try:
                conn, _ = listener.accept()
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"ok")
            except (OSError, ssl.SSLError) as exc:
                failures.append(exc)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.recv(2) == b"ok"
            peer = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
        thread.join(10)
    assert failures == []
    assert peer == server


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
