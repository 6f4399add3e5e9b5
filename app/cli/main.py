"""The `inbound` command. Each sub-command imports only what it runs, so start-up stays quick."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from app.settings import get_settings

cli = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Inbound: Kafka inbound ingest with a real DLQ.",
)
kafka_cli = typer.Typer(
    no_args_is_help=True, help="A real local Apache Kafka for development and tests."
)
project_cli = typer.Typer(no_args_is_help=True, help="Projects and their keys.")
cli.add_typer(kafka_cli, name="kafka")
dlq_cli = typer.Typer(
    no_args_is_help=True, help="Dead-letter streams paused by the circuit breaker."
)
cli.add_typer(project_cli, name="project")
cli.add_typer(dlq_cli, name="dlq")


@cli.callback()
def _setup_logging(ctx: typer.Context) -> None:
    """Inbound: Kafka inbound ingest with a real DLQ."""
    from app import logs

    # Every command logs in INBOUND_LOG_FORMAT at INBOUND_LOG_LEVEL; the services set it up
    # again under their own name.
    settings = get_settings()
    logs.setup(ctx.invoked_subcommand or "inbound", settings.log_level, settings.log_format)


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@kafka_cli.command("fetch")
def kafka_fetch() -> None:
    """Fetch Apache Kafka's jars with Maven into the cache dir (once)."""
    from app.kafka.jars import ensure_jars
    from app.kafka.prerequisites import MissingPrerequisite

    try:
        typer.echo(str(ensure_jars(get_settings().cache_dir)))
    except (MissingPrerequisite, RuntimeError) as exc:
        _fail(str(exc))


@kafka_cli.command("start")
def kafka_start(
    nodes: int = typer.Option(1, "--nodes", min=1, max=3, help="1, or 3 for RF 3 / min ISR 2."),
    port: int | None = typer.Option(None, help="First broker port (default INBOUND_KAFKA_PORT)."),
) -> None:
    """Start a local KRaft cluster on loopback and print its bootstrap address."""
    from app.kafka import local
    from app.kafka.prerequisites import MissingPrerequisite

    if nodes == 2:
        _fail("--nodes must be 1 or 3")
    settings = get_settings()
    try:
        state = local.start(
            settings.data_dir,
            settings.cache_dir,
            base_port=port or settings.kafka_port,
            nodes=nodes,
        )
    except (MissingPrerequisite, local.KafkaStartError, RuntimeError) as exc:
        _fail(str(exc))
    typer.echo(state.bootstrap)


@kafka_cli.command("stop")
def kafka_stop() -> None:
    """Stop the local cluster."""
    from app.kafka import local

    stopped = local.stop(get_settings().data_dir)
    typer.echo("stopped" if stopped else "not running")


@kafka_cli.command("status")
def kafka_status() -> None:
    """Print the Kafka's state as JSON (the configured INBOUND_KAFKA_BOOTSTRAP with its security
    settings, else the local cluster); exit 1 when it is not running or cannot be used."""
    from app.kafka import local
    from app.kafka.backend_status import backend_status
    from app.kafka.client_options import KafkaConfigError, kafka_options

    settings = get_settings()
    try:
        kafka = kafka_options(settings)
    except KafkaConfigError as exc:
        _fail(str(exc))
    info = backend_status(kafka) if kafka else local.status(settings.data_dir)
    typer.echo(json.dumps(info, indent=2))
    if not info["running"]:
        raise typer.Exit(1)


@cli.command()
def migrate(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Upgrade the database to the newest schema."""
    from app.store.migrate import upgrade

    settings = get_settings()
    try:
        upgrade(settings.effective_database_url, revision)
    except Exception as exc:  # noqa: BLE001 - report any driver error plainly
        _fail(f"migration failed on {_safe_url(settings.effective_database_url)}: {exc}")
    typer.echo(f"database at {_safe_url(settings.effective_database_url)} is at {revision}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@project_cli.command("create")
def project_create(
    name: str = typer.Option(..., "--name", help="A human name for the project."),
) -> None:
    """Create a project; prints JSON with project_id, master_key, write_key, read_key (shown once)."""
    from app.store.db import get_engine, session_scope
    from app.store.migrate import upgrade
    from app.store.projects import create_project

    settings = get_settings()
    upgrade(settings.effective_database_url)
    try:
        with session_scope(get_engine()) as session:
            created = create_project(session, name)
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(created, indent=2))


@dlq_cli.command("resume")
def dlq_resume(
    project: str = typer.Option(..., "--project", help="Project id."),
    collection: str = typer.Option(
        ..., "--collection", help="Collection (the customer's topic name)."
    ),
) -> None:
    """Resume a collection the DLQ circuit breaker paused; the worker picks it up within seconds."""
    from app.ingest.control import send_command
    from app.ingest.pause import resume
    from app.kafka.client_options import kafka_options
    from app.store.db import get_engine, session_factory

    count = resume(session_factory(get_engine()), project, collection, by="cli")
    if count == 0:
        _fail(f"no paused stream for collection {collection!r} of project {project}", code=2)
    send_command(kafka_options(get_settings()), {"type": "resume"})
    typer.echo(f"resumed {count} partition(s) of {collection}")


@cli.command()
def worker() -> None:
    """Run the ingest worker (Faust) on the backend Kafka."""
    from app.ingest.worker import run_worker

    run_worker(get_settings())


@cli.command()
def api() -> None:
    """Run the HTTP API."""
    from app.api.server import run_api

    run_api(get_settings())


@cli.command()
def gateway() -> None:
    """Run the Kafka edge gateway (SASL_SSL/PLAIN, per-project topics, produce-only)."""
    from app.gateway.server import run_gateway

    run_gateway(get_settings())


@cli.command()
def webhooks() -> None:
    """Run the webhook dispatcher: durable, signed, retried failure notifications."""
    from app.webhooks.dispatcher import run_dispatcher

    run_dispatcher(get_settings())


@cli.command()
def certs(
    out: Path | None = typer.Option(None, help="Directory for the CA, certificate and truststore."),
    renew: bool = typer.Option(
        False,
        "--renew",
        help="Re-issue the server certificate and key with the existing CA: clients keep "
        "working (their ca.pem and truststore stay valid); a running gateway loads the new "
        "pair within seconds, or at once on SIGHUP.",
    ),
    renew_ca: bool = typer.Option(
        False,
        "--renew-ca",
        help="Make a new CA, truststore and server certificate: every client must then be "
        "given the new ca.pem or truststore.",
    ),
) -> None:
    """The gateway's development CA, server certificate and truststore; prints their paths
    and the client settings.

    Existing files are kept as they are (run it as often as you like); missing ones are made.
    """
    from app.tls.dev_certs import CertsError, ensure_dev_certs, fingerprint

    settings = get_settings()
    target = out or settings.data_dir / "certs"
    try:
        info, done = ensure_dev_certs(target, renew=renew, renew_ca=renew_ca)
    except CertsError as exc:
        _fail(str(exc))
    for line in done:
        typer.echo(line, err=True)
    if not done:
        typer.echo(f"using the existing files in {target} (--renew re-issues them)", err=True)
    typer.echo(f"server certificate SHA-256 {fingerprint(info['server_cert'])}", err=True)
    if renew_ca:
        typer.echo("new CA: clients must be given the new ca.pem / truststore", err=True)
    typer.echo(json.dumps(info, indent=2))


@cli.command()
def up() -> None:
    """Run everything on embedded defaults: local Kafka, SQLite, worker, API, gateway."""
    from app.cli.supervisor import run_all

    sys.exit(run_all(get_settings()))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
