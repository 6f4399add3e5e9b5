"""A local single-node Kafka with a SASL_SSL listener (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN),
so the backend clients' TLS and SASL settings are tried against a real broker.

The node is the local runner's (same template, jars and JVM flags) with one more listener:
``SASL_SSL://127.0.0.1:<sasl_port>``, its certificate issued by a CA made next to the data
(app/tls/dev_certs.py's generator). The PLAINTEXT listener stays for the controller, the
inter-broker traffic and a test's own admin. One user per mechanism, each with its own
random password: SCRAM users are written into the storage at format time
(``kafka-storage format --add-scram``), PLAIN users into the listener's JAAS options.
Authorization is off: any authenticated user may do anything.

``local.stop(data_dir)`` and ``local.status(data_dir)`` work on it as on any local cluster.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.kafka import local
from app.kafka.broker_config import (
    local_nodes,
    log4j_properties,
    render_server_properties,
    with_overrides,
)
from app.kafka.client_options import KafkaClientOptions
from app.kafka.jars import ensure_jars
from app.kafka.prerequisites import java_executable
from app.store.private import FILE_MODE, ensure_private_dir

SECURED_FILE = "secured.json"
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
MECHANISMS = (*SCRAM_MECHANISMS, "PLAIN")
# One user per mechanism, so a test that logs in with one proves that mechanism works.
# Letters and digits only: JAAS option names (user_<name>) take nothing fancier.
USERNAMES = {"SCRAM-SHA-256": "inbound256", "SCRAM-SHA-512": "inbound512", "PLAIN": "inboundplain"}


@dataclass(frozen=True)
class SecuredKafka:
    """Where the secured broker listens and who may log in."""

    bootstrap: str  # the SASL_SSL listener
    plain_bootstrap: str  # the PLAINTEXT listener (admin and tests only)
    cafile: Path  # the CA that signed the broker's certificate (for 127.0.0.1 and localhost)
    passwords: dict[str, str] = field(repr=False)  # mechanism -> that mechanism's user's password
    data_dir: Path | None = None

    def username(self, mechanism: str) -> str:
        return USERNAMES[mechanism]

    def options(
        self,
        mechanism: str = "SCRAM-SHA-512",
        *,
        password: str | None = None,
        cafile: Path | None = None,
    ) -> KafkaClientOptions:
        """Client options for the SASL_SSL listener as ``mechanism``'s user (``password`` and
        ``cafile`` override the right ones, to try wrong ones)."""
        return KafkaClientOptions(
            bootstrap=self.bootstrap,
            security_protocol="SASL_SSL",
            sasl_mechanism=mechanism,
            username=self.username(mechanism),
            password=self.passwords[mechanism] if password is None else password,
            cafile=cafile or self.cafile,
        )

    def settings(self, mechanism: str = "SCRAM-SHA-512", **overrides: Any) -> dict[str, Any]:
        """``Settings(**...)`` keyword arguments for this broker (``kafka_sasl_password=`` or
        ``kafka_ssl_cafile=`` in ``overrides`` replace the right ones)."""
        return {
            "kafka_bootstrap": self.bootstrap,
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": mechanism,
            "kafka_sasl_username": self.username(mechanism),
            "kafka_sasl_password": self.passwords[mechanism],
            "kafka_ssl_cafile": self.cafile,
            **overrides,
        }

    def env(self, mechanism: str = "SCRAM-SHA-512") -> dict[str, str]:
        """The same as INBOUND_KAFKA_* environment variables (for a service in a subprocess)."""
        return {f"INBOUND_{k.upper()}": str(v) for k, v in self.settings(mechanism).items()}


def _pem_value(path: Path) -> str:
    # A Java properties value on one line: Properties.load turns each \n back into a newline.
    return path.read_text().strip().replace("\n", "\\n")


def _secured_overrides(
    broker_port: int, controller_port: int, sasl_port: int, certs: dict, passwords: dict
) -> dict[str, str]:
    host = "127.0.0.1"
    prefix = "listener.name.sasl_ssl."
    plain_users = f'user_{USERNAMES["PLAIN"]}="{passwords["PLAIN"]}"'
    return {
        "listeners": (
            f"PLAINTEXT://{host}:{broker_port},CONTROLLER://{host}:{controller_port},"
            f"SASL_SSL://{host}:{sasl_port}"
        ),
        "advertised.listeners": f"PLAINTEXT://{host}:{broker_port},SASL_SSL://{host}:{sasl_port}",
        "listener.security.protocol.map": (
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL"
        ),
        "sasl.enabled.mechanisms": ",".join(MECHANISMS),
        prefix + "sasl.enabled.mechanisms": ",".join(MECHANISMS),
        # PEM given inline: Kafka wants a key password for a PEM keystore *file*, not inline.
        prefix + "ssl.keystore.type": "PEM",
        prefix + "ssl.keystore.certificate.chain": _pem_value(Path(certs["server_cert"])),
        prefix + "ssl.keystore.key": _pem_value(Path(certs["server_key"])),
        prefix + "scram-sha-256.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        prefix + "scram-sha-512.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        prefix + "plain.sasl.jaas.config": (
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
        ),
    }


def _read_secured(data_dir: Path) -> SecuredKafka | None:
    path = local.cluster_dir(data_dir) / SECURED_FILE
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    return SecuredKafka(
        bootstrap=raw["bootstrap"],
        plain_bootstrap=raw["plain_bootstrap"],
        cafile=Path(raw["cafile"]),
        passwords=raw["passwords"],
        data_dir=data_dir,
    )


def _write_secured(data_dir: Path, secured: SecuredKafka) -> None:
    path = local.cluster_dir(data_dir) / SECURED_FILE
    payload = {
        "bootstrap": secured.bootstrap,
        "plain_bootstrap": secured.plain_bootstrap,
        "cafile": str(secured.cafile),
        "passwords": secured.passwords,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)  # holds passwords
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2)


async def _wait_for_login(secured: SecuredKafka, deadline: float) -> None:
    """Until every mechanism's user can log in on the SASL_SSL listener."""
    from app.kafka.connect_check import BackendUnavailable, check_backend

    for mechanism in MECHANISMS:
        while True:
            try:
                await check_backend(secured.options(mechanism), timeout=5.0)
                break
            except BackendUnavailable as exc:
                # A refused login cannot be the broker still starting: its users are in the
                # storage it starts from.
                if getattr(exc, "permanent", False) or time.monotonic() > deadline:
                    raise local.KafkaStartError(f"SASL_SSL login as {mechanism}: {exc}") from None
                await asyncio.sleep(0.3)


def start_secured(
    data_dir: Path,
    cache_dir: Path,
    *,
    base_port: int = 9092,
    sasl_port: int | None = None,
    timeout: float = 90.0,
) -> SecuredKafka:
    """Start (or find running) a one-node cluster with a SASL_SSL listener on ``sasl_port``
    (default ``base_port + 1``); the PLAINTEXT listener is on ``base_port`` as usual."""
    state = local.read_state(data_dir)
    secured = _read_secured(data_dir)
    if state and secured and all(local.pid_alive(p) for p in state.pids):
        return secured
    if state:
        local.stop(data_dir)
    sasl_port = base_port + 1 if sasl_port is None else sasl_port
    java = java_executable()
    ensure_jars(cache_dir)
    root = ensure_private_dir(local.cluster_dir(data_dir))
    from app.tls.dev_certs import make_dev_certs

    certs = make_dev_certs(root / "certs")
    (spec,) = local_nodes(base_port, 1, str(root))
    for port in (spec.broker_port, spec.controller_port, sasl_port):
        if local.port_open("127.0.0.1", port):
            raise local.KafkaStartError(f"port {port} is already in use")
    node_dir = root / f"node{spec.node_id}"
    if secured is None or not (node_dir / "data" / "meta.properties").exists():
        # New storage, new users: SCRAM credentials live in the formatted metadata.
        subprocess.run(["rm", "-rf", str(node_dir)], check=True)
        passwords = {m: secrets.token_urlsafe(18) for m in MECHANISMS}
    else:
        passwords = secured.passwords
    node_dir.mkdir(parents=True, exist_ok=True)
    properties = with_overrides(
        render_server_properties(spec, [spec]),
        _secured_overrides(spec.broker_port, spec.controller_port, sasl_port, certs, passwords),
    )
    fd = os.open(node_dir / "server.properties", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as fh:  # it holds the PLAIN password and the broker's key
        fh.write(properties)
    (node_dir / "log4j2.properties").write_text(log4j_properties())
    cluster_id = local._random_cluster_id()  # the local runner's: no leading '-'
    scram = []
    for mechanism in SCRAM_MECHANISMS:
        user = USERNAMES[mechanism]
        scram += ["--add-scram", f"{mechanism}=[name={user},password={passwords[mechanism]}]"]
    local.format_storage(java, cache_dir, node_dir, cluster_id, *scram)
    pid = local.launch_node(java, cache_dir, node_dir)
    plain_bootstrap = f"127.0.0.1:{spec.broker_port}"
    state = local.ClusterState(
        cluster_id=cluster_id,
        bootstrap=plain_bootstrap,
        nodes=[
            {
                "node_id": spec.node_id,
                "pid": pid,
                "broker_port": spec.broker_port,
                "controller_port": spec.controller_port,
                "dir": str(node_dir),
            }
        ],
    )
    (root / local.STATE_FILE).write_text(json.dumps(asdict(state), indent=2))
    secured = SecuredKafka(
        bootstrap=f"127.0.0.1:{sasl_port}",
        plain_bootstrap=plain_bootstrap,
        cafile=Path(certs["ca_cert"]),
        passwords=passwords,
        data_dir=data_dir,
    )
    _write_secured(data_dir, secured)
    deadline = time.monotonic() + timeout
    try:
        asyncio.run(local.wait_until_answers(plain_bootstrap, 1, timeout))
        asyncio.run(_wait_for_login(secured, deadline))
    except local.KafkaStartError as exc:
        local.stop(data_dir)
        raise local.KafkaStartError(f"{exc}. Broker log: {node_dir / 'server.log'}") from None
    return secured
