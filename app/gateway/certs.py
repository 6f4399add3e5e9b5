"""Development TLS material for the gateway: a CA, a server certificate, client settings.

For production, set INBOUND_GATEWAY_TLS_CERT / INBOUND_GATEWAY_TLS_KEY to a certificate
from a real CA; these files are for trying Inbound on one machine.
"""

from __future__ import annotations

import ipaddress
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


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _make_truststore(ca_pem: Path, out: Path) -> Path | None:
    """A PKCS12 truststore holding the dev CA, for Java clients (needs the JDK's keytool)."""
    keytool = shutil.which("keytool")
    if keytool is None:
        return None
    out.unlink(missing_ok=True)
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
            str(out),
            "-storetype",
            "PKCS12",
            "-storepass",
            TRUSTSTORE_PASSWORD,
        ],
        check=True,
        capture_output=True,
    )
    return out


def make_dev_certs(out_dir: Path, hostnames: list[str] | None = None) -> dict:
    """Write a dev CA and a server certificate for 127.0.0.1/localhost (plus ``hostnames``).

    Returns the file paths and the client settings to use with them.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)

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
        .issuer_name(ca_name)
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

    ca_pem = out_dir / "ca.pem"
    ca_key_pem = out_dir / "ca-key.pem"
    cert_pem = out_dir / "server.pem"
    key_pem = out_dir / "server-key.pem"
    ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(ca_key_pem, ca_key)
    # The chain (server then CA) so clients that want the full chain get it.
    cert_pem.write_bytes(
        server_cert.public_bytes(serialization.Encoding.PEM)
        + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    _write_key(key_pem, server_key)
    truststore = _make_truststore(ca_pem, out_dir / "truststore.p12")

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
