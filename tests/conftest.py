"""Shared fixtures: one real Kafka broker per test session, SQLite and PostgreSQL databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from app.settings import Settings
from app.store.migrate import upgrade
from tests.support.ports import free_kafka_base, free_port
from tests.support.postgres import LocalPostgres, PostgresUnavailable, wait_for

if TYPE_CHECKING:
    from app.kafka.secured_local import SecuredKafka

# PostgreSQL is the production database: without it the suite fails (with the line that
# installs it) rather than skip a third of itself. INBOUND_REQUIRE_POSTGRES=0 opts out.
REQUIRE_POSTGRES = os.environ.get("INBOUND_REQUIRE_POSTGRES", "1") != "0"
# In CI every optional part (PostgreSQL, confluent-kafka, GeoIP data) is installed, so a skip
# there means a promise went untested: it fails the run.
SKIPS_FAIL = os.environ.get("CI") == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201, ARG001
    outcome = yield
    report = outcome.get_result()
    if SKIPS_FAIL and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where nothing may be: {report.longrepr}"


def _cache_dir() -> Path:
    return Settings().cache_dir


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real single-node KRaft broker, started once for the session."""
    external = os.environ.get("INBOUND_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    from app.kafka import local

    data_dir = tmp_path_factory.mktemp("kafka")
    state = local.start(data_dir, _cache_dir(), base_port=free_kafka_base(1), nodes=1)
    try:
        yield state.bootstrap
    finally:
        local.stop(data_dir)


@pytest.fixture(scope="session")
def secured_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    """A second real one-node broker whose SASL_SSL listener takes SCRAM-SHA-256, SCRAM-SHA-512
    and PLAIN users (app/kafka/secured_local.py), started once for the session when a test
    asks for it. ``.settings(mechanism)`` are Settings kwargs for it, ``.options(mechanism)``
    KafkaClientOptions, ``.plain_bootstrap`` its PLAINTEXT listener for a test's own admin."""
    from app.kafka import local, secured_local

    data_dir = tmp_path_factory.mktemp("secured-kafka")
    secured = secured_local.start_secured(
        data_dir, _cache_dir(), base_port=free_kafka_base(1), sasl_port=free_port()
    )
    try:
        yield secured
    finally:
        local.stop(data_dir)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres | str]:
    """A real PostgreSQL: INBOUND_TEST_POSTGRES_URL, or a throwaway server from Debian's binaries."""
    external = os.environ.get("INBOUND_TEST_POSTGRES_URL")
    if external:
        wait_for(external)
        yield external
        return
    import tempfile

    try:
        # Not under pytest's 0700 temp root: the server runs as the postgres user.
        server = LocalPostgres(Path(tempfile.mkdtemp(prefix="inbound-pg-")))
        url = server.start()
    except (PostgresUnavailable, OSError) as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    wait_for(url)
    try:
        yield server
    finally:
        server.cleanup()


def _server_url(server: LocalPostgres | str) -> str:
    if isinstance(server, str):
        return server
    return f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/postgres"


def fresh_postgres_database(server: LocalPostgres | str) -> str:
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(_server_url(server))
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin_dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'inbound.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A freshly migrated database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'inbound.db'}"
    else:
        url = fresh_postgres_database(request.getfixturevalue("postgres_server"))
    upgrade(url)
    return url


@pytest.fixture
def make_settings(tmp_path: Path):  # noqa: ANN201 - returns a factory
    """Settings for a test: its own data dir, a given database and Kafka."""

    def _make(
        database_url: str, kafka_bootstrap: str | None = None, **overrides: object
    ) -> Settings:
        return Settings(
            data_dir=tmp_path / "data",
            cache_dir=_cache_dir(),
            database_url=database_url,
            kafka_bootstrap=kafka_bootstrap,
            **overrides,
        )

    return _make
