"""Development TLS material for the gateway: a CA, a server certificate, client settings.

For production, set INBOUND_GATEWAY_TLS_CERT / INBOUND_GATEWAY_TLS_KEY to a certificate
from a real CA; these files are for trying Inbound on one machine.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TRUSTSTORE_PASSWORD = "inbound-dev"


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Inbound development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` whole or not at all: a temporary file in the same directory, created with
    ``mode`` (so a private key is never readable by others, whatever the umask), then renamed
    over ``path``. A gateway watching the file sees either the old or the new contents."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomic(path, pem, 0o600)


def _make_truststore(ca_pem: Path, out: Path) -> Path | None:
    """A PKCS12 truststore holding the dev CA, for Java clients (needs the JDK's keytool)."""
    keytool = shutil.which("keytool")
    if keytool is None:
        return None
    # keytool writes a keystore of its own; build it beside ``out`` and rename it over.
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        subprocess.run(
            [
                keytool,
                "-importcert",
                "-noprompt",
                "-alias",
                "inbound-dev-ca",
                "-file",
                str(ca_pem),
                "-keystore",
                str(tmp),
                "-storetype",
                "PKCS12",
                "-storepass",
                TRUSTSTORE_PASSWORD,
            ],
            check=True,
            capture_output=True,
        )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


class CertsError(Exception):
    """The files on disk do not allow what was asked (the message says what to do)."""


def _new_ca(now: datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Inbound development CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return ca_key, ca_cert


def _new_server(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    hostnames: list[str] | None,
    now: datetime,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    for host in hostnames or []:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return server_key, server_cert


def _load_ca(ca_pem: Path, ca_key_pem: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The CA on disk, to issue a server certificate with (CertsError if it cannot)."""
    if not (ca_pem.exists() and ca_key_pem.exists()):
        missing = ca_key_pem if ca_pem.exists() else ca_pem
        raise CertsError(
            f"{missing} is missing, so no server certificate can be issued by the existing CA; "
            "`inbound certs --renew-ca` makes a new CA (clients must then trust the new ca.pem)"
        )
    try:
        cert = x509.load_pem_x509_certificate(ca_pem.read_bytes())
        key = serialization.load_pem_private_key(ca_key_pem.read_bytes(), password=None)
    except ValueError as exc:
        raise CertsError(f"cannot read the CA in {ca_pem.parent}: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise CertsError(f"{ca_key_pem} is not the key of {ca_pem}")
    return key, cert


def fingerprint(cert_pem: str | Path) -> str:
    """SHA-256 of the first (leaf) certificate in a PEM file, as colon-separated hex."""
    cert = x509.load_pem_x509_certificates(Path(cert_pem).read_bytes())[0]
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def ensure_dev_certs(
    out_dir: Path,
    hostnames: list[str] | None = None,
    *,
    renew: bool = False,
    renew_ca: bool = False,
) -> tuple[dict, list[str]]:
    """The dev CA, server certificate and truststore in ``out_dir``: made where missing, kept
    where present (clients configured with them keep working).

    ``renew`` re-issues the server certificate and key with the existing CA, so clients'
    ``ca.pem`` and truststore stay valid (a running gateway loads the new pair by itself).
    ``renew_ca`` makes a new CA too, and a new truststore: every client must trust them anew.

    Returns the file paths and client settings, and what was written (empty: nothing).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_pem = out_dir / "ca.pem"
    ca_key_pem = out_dir / "ca-key.pem"
    cert_pem = out_dir / "server.pem"
    key_pem = out_dir / "server-key.pem"
    truststore_p12 = out_dir / "truststore.p12"
    done: list[str] = []

    new_ca = renew_ca or not ca_pem.exists()
    if new_ca:
        ca_key, ca_cert = _new_ca(now)
        _write_key(ca_key_pem, ca_key)
        _write_atomic(ca_pem, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
        done.append(f"made a new CA: {ca_pem}")
    if new_ca or renew or not (cert_pem.exists() and key_pem.exists()):
        if not new_ca:
            ca_key, ca_cert = _load_ca(ca_pem, ca_key_pem)
        server_key, server_cert = _new_server(ca_key, ca_cert, hostnames, now)
        # Key first, then the certificate: a gateway watching them reloads once both are new.
        _write_key(key_pem, server_key)
        # The chain (server then CA) so clients that want the full chain get it.
        _write_atomic(
            cert_pem,
            server_cert.public_bytes(serialization.Encoding.PEM)
            + ca_cert.public_bytes(serialization.Encoding.PEM),
            0o644,
        )
        done.append(f"issued a server certificate: {cert_pem}")
    if new_ca or not truststore_p12.exists():
        truststore = _make_truststore(ca_pem, truststore_p12)
        if truststore is not None:
            done.append(f"made the truststore: {truststore}")
        elif new_ca:
            truststore_p12.unlink(missing_ok=True)  # it holds the old CA: no longer valid
    else:
        truststore = truststore_p12
    return _info(ca_pem, ca_key_pem, cert_pem, key_pem, truststore), done


def make_dev_certs(
    out_dir: Path,
    hostnames: list[str] | None = None,
    *,
    renew: bool = False,
    renew_ca: bool = False,
) -> dict:
    """As ``ensure_dev_certs``: the file paths and the client settings to use with them."""
    return ensure_dev_certs(out_dir, hostnames, renew=renew, renew_ca=renew_ca)[0]


def _info(ca_pem: Path, ca_key_pem: Path, cert_pem: Path, key_pem: Path, truststore) -> dict:  # noqa: ANN001
    java = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required username="PROJECT_ID" password="WRITE_KEY";',
    }
    if truststore is not None:
        java.update(
            {
                "ssl.truststore.location": str(truststore),
                "ssl.truststore.type": "PKCS12",
                "ssl.truststore.password": TRUSTSTORE_PASSWORD,
            }
        )
    return {
        "ca_cert": str(ca_pem),
        "ca_key": str(ca_key_pem),
        "server_cert": str(cert_pem),
        "server_key": str(key_pem),
        "truststore": str(truststore) if truststore else None,
        "truststore_password": TRUSTSTORE_PASSWORD if truststore else None,
        "truststore_type": "PKCS12" if truststore else None,
        "gateway_env": {
            "INBOUND_GATEWAY_TLS_CERT": str(cert_pem),
            "INBOUND_GATEWAY_TLS_KEY": str(key_pem),
        },
        "java_client_properties": java,
        "librdkafka_settings": {
            "security.protocol": "SASL_SSL",
            "sasl.mechanisms": "PLAIN",
            "sasl.username": "PROJECT_ID",
            "sasl.password": "WRITE_KEY",
            "ssl.ca.location": str(ca_pem),
        },
    }
