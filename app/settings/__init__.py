"""The one settings object. Every field is an ``INBOUND_*`` environment variable."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INBOUND_", extra="ignore")

    data_dir: Path = Field(
        default=Path.home() / ".local" / "share" / "inbound",
        description="Where the SQLite file, local Kafka data and logs live.",
    )
    cache_dir: Path = Field(
        default=Path.home() / ".cache" / "inbound",
        description="Where the Apache Kafka jars fetched with Maven are kept.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; unset means SQLite at <data_dir>/inbound.db. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db",
    )
    kafka_bootstrap: str | None = Field(
        default=None,
        description="Backend Kafka bootstrap servers; unset means `inbound up` starts a local broker.",
    )
    kafka_port: int = Field(default=9092, description="First port of the local Kafka broker(s).")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description="How every backend client (worker, DLQ writer, API, gateway, CLI, "
        "benchmarks) connects to INBOUND_KAFKA_BOOTSTRAP: PLAINTEXT, SSL, SASL_PLAINTEXT or "
        "SASL_SSL.",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="PLAIN",
        description="SASL mechanism for the backend Kafka (SASL_* protocols): PLAIN, "
        "SCRAM-SHA-256 or SCRAM-SHA-512.",
    )
    kafka_sasl_username: str | None = Field(
        default=None, description="SASL username for the backend Kafka (SASL_* protocols)."
    )
    kafka_sasl_password: str | None = Field(
        default=None,
        description="SASL password for the backend Kafka (SASL_* protocols); never logged.",
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None,
        description="PEM file of the CA(s) the backend brokers' certificates are checked "
        "against (SSL, SASL_SSL); unset means the system's trusted CAs.",
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None,
        description="PEM client certificate for mutual TLS with the backend Kafka (with "
        "INBOUND_KAFKA_SSL_KEYFILE).",
    )
    kafka_ssl_keyfile: Path | None = Field(
        default=None, description="PEM private key of INBOUND_KAFKA_SSL_CERTFILE."
    )
    kafka_ssl_check_hostname: bool = Field(
        default=True,
        description="Whether a backend broker's certificate must name the host it is reached "
        "at (SSL, SASL_SSL).",
    )
    api_host: str = Field(default="127.0.0.1", description="Address the HTTP API binds to.")
    api_port: int = Field(default=8080, description="Port of the HTTP API.")
    gateway_host: str = Field(default="127.0.0.1", description="Address the Kafka edge binds to.")
    gateway_port: int = Field(default=9093, description="Port of the Kafka edge gateway (TLS).")
    admin_token: str | None = Field(
        default=None,
        description="Bearer token for /admin/... and the error console's support-staff "
        "sign-in; unset disables both.",
    )
    console_idle_minutes: float = Field(
        default=30,
        gt=0,
        description="Minutes an error console session (/console) lasts without a request "
        "before it must sign in again.",
    )
    console_login_failures_per_minute: int = Field(
        default=10,
        ge=0,
        description="Failed console sign-ins one client address may make per minute (per API "
        "process); beyond it, sign-in answers 429 until the minute has passed. 0 means "
        "unlimited.",
    )
    secret_key: str | None = Field(
        default=None,
        description="Key (16+ characters) that encrypts webhook signing secrets in the "
        "database; unset means one generated once into <data_dir>/secret.key (mode 0600). "
        "Keep it: without it stored webhook secrets cannot be read.",
    )
    worker_group_id: str = Field(
        default="inbound-ingest",
        min_length=1,
        max_length=200,
        description="Kafka consumer group of the workers: every worker of one deployment uses "
        "the same one, so they share the in.* partitions; a second deployment on the same "
        "cluster needs its own.",
    )
    worker_batch_size: int = Field(
        default=2000, description="Most records the worker takes per batch."
    )
    worker_batch_ms: int = Field(
        default=100, description="Longest the worker waits to fill a batch, in milliseconds."
    )
    worker_metadata_max_age_ms: int = Field(
        default=2000,
        description="How often the worker refreshes metadata to find new inbound topics (ms).",
    )
    worker_metrics_port: int = Field(
        default=9464, description="Port of the worker's /metrics and /healthz (0 disables)."
    )
    worker_stall_seconds: float = Field(
        default=60,
        description="Seconds a partition with lag may go without its committed offset moving "
        "before the worker's /healthz reports it `stalled`.",
    )
    worker_key_cache_seconds: float = Field(
        default=3.0,
        ge=0,
        description="Seconds the worker caches a project or key lookup: a revoked key, a new "
        "permission or a deactivated project applies to events within this time.",
    )
    error_payload_cap: int = Field(
        default=65536, description="Bytes of a rejected payload kept in the error table."
    )
    problems_max_per_project: int = Field(
        default=1000,
        ge=1,
        description="Most problems (error groups) a project keeps; errors that would open "
        "more are counted in their code's overflow problem.",
    )
    problem_resolve_after_quiet_hours: float = Field(
        default=0,
        ge=0,
        description="Hours without a new error after which an open or regressed problem is "
        "resolved by itself (0: never); a project's `resolve_after_quiet_hours` setting wins.",
    )
    dlq_replicas: int = Field(
        default=1,
        description="Replication factor of DLQ topics created on demand (3 in production).",
    )
    dlq_pause_ratio: float = Field(
        default=0.9,
        description="Rejected share over a window above which a partition's DLQ pauses.",
    )
    dlq_pause_min_events: int = Field(
        default=1000,
        description="Events a window must hold before the DLQ circuit breaker may trip.",
    )
    geoip_database: Path | None = Field(
        default=None, description="MaxMind GeoLite2/GeoIP2 City .mmdb used by keen:ip_to_geo."
    )
    webhook_allow_private: bool = Field(
        default=False, description="Allow webhook URLs that resolve to private/loopback addresses."
    )
    log_level: str = Field(
        default="INFO",
        description="Log level of Inbound's own loggers in every process; libraries (faust, "
        "aiokafka, uvicorn) log WARNING and above, or everything when this is DEBUG.",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`text` lines, or `json`: one JSON object a line with time, level, "
        "logger, message, process and, where they apply, project_id, collection, topic, "
        "partition, offset and error_id (for Loki, Elasticsearch).",
    )
    api_access_log: bool = Field(
        default=True,
        description="The HTTP API logs one INFO line per request (keys redacted); "
        "`inbound up` turns it off unless set.",
    )
    webhook_poll_ms: int = Field(
        default=250, description="How often the webhook dispatcher polls the outbox (ms)."
    )
    webhook_batch_window_ms: int = Field(
        default=1000,
        description="ingest.failed notifications of a project are batched over this window (ms).",
    )
    webhook_connect_timeout: float = Field(
        default=5.0, description="Seconds to connect to a webhook endpoint."
    )
    webhook_read_timeout: float = Field(
        default=15.0, description="Seconds to wait for a webhook endpoint's response."
    )
    webhook_response_cap: int = Field(
        default=4096, description="Bytes of a webhook response body read and kept in the log."
    )
    webhook_concurrency: int = Field(
        default=32, description="Webhook deliveries in flight at once per dispatcher."
    )
    webhook_disable_after_failures: int = Field(
        default=10,
        description="Consecutive failed attempts (with the duration below) that disable a webhook.",
    )
    webhook_disable_after_seconds: int = Field(
        default=86400,
        description="How long a webhook must have been failing before it is disabled (s).",
    )
    webhook_sample_errors: int = Field(
        default=5, description="Error ids quoted as samples in one ingest.failed delivery."
    )
    webhook_link_base: str | None = Field(
        default=None,
        description="Public base URL of the API put before links in webhook payloads "
        "(e.g. https://inbound.example.com); unset gives paths only.",
    )
    query_max_buckets: int = Field(
        default=5000, description="Most interval buckets one count query may ask for."
    )
    query_extraction_limit: int = Field(
        default=100000,
        description="Most events one extraction returns (with `latest`, at most this many).",
    )
    query_max_filters: int = Field(
        default=50, description="Most filters one query may have (an access key's own not counted)."
    )
    query_max_in_values: int = Field(
        default=1000, description="Most values in the list of one `in` filter."
    )
    query_timeout_seconds: float = Field(
        default=10.0,
        description="Longest a count or extraction may run in the database before it is "
        "stopped and answered 503 QueryTimeoutError (s).",
    )
    replay_cap: int = Field(
        default=3, description="Times one rejected event may be replayed (no replay loops)."
    )
    replay_rate_per_second: float = Field(
        default=50.0, description="Rejected events a project may replay per second (refill)."
    )
    replay_burst: int = Field(
        default=500, description="Rejected events a project may replay at once (bucket size)."
    )
    gateway_tls_cert: Path | None = Field(
        default=None,
        description="PEM certificate (chain) of the Kafka edge's TLS listener; unset: a "
        "development certificate under <data_dir>/certs, made on first start (`inbound certs`). "
        "The gateway reloads the certificate and key when the files change (looked at every "
        "2 s) or on SIGHUP; files that do not load keep the current certificate, with an "
        "error logged.",
    )
    gateway_tls_key: Path | None = Field(
        default=None, description="PEM private key of the Kafka edge's TLS certificate."
    )
    gateway_plain_port: int = Field(
        default=0,
        description="Port of a plaintext SASL (no TLS) edge listener, for local development "
        "only; 0 disables it.",
    )
    gateway_advertised_host: str | None = Field(
        default=None,
        description="Host name the Kafka edge gives clients in Metadata; unset: gateway_host.",
    )
    gateway_project_rate_bytes: int = Field(
        default=0,
        description="Produce bytes per second one project may send through the Kafka edge "
        "(applied as Kafka throttle time); 0 means unlimited.",
    )
    gateway_key_cache_seconds: float = Field(
        default=5.0,
        description="Seconds the Kafka edge caches a key lookup: a revoked key stops working "
        "within this time, on open connections too.",
    )
    gateway_key_stale_seconds: float = Field(
        default=300.0,
        ge=0,
        description="While the database cannot be read, how many seconds past its cache time "
        "the Kafka edge keeps using a key's last lookup (connected producers keep producing "
        "through a database outage). 0 means a key is refused as soon as its cache time ends.",
    )
    gateway_max_preauth_bytes: int = Field(
        default=524288,
        description="Largest request frame the Kafka edge reads before SASL authentication "
        "(bytes, as Kafka's 512 KB for SASL); a larger length prefix closes the connection.",
    )
    gateway_max_request_bytes: int = Field(
        default=1048588 + 65536,
        description="Largest request frame the Kafka edge reads after authentication (bytes): "
        "message.max.bytes (1048588) plus room for the request's header and topic names.",
    )
    gateway_idle_seconds: float = Field(
        default=600.0,
        description="Seconds a Kafka edge connection may be silent between requests before it "
        "is closed.",
    )
    gateway_frame_seconds: float = Field(
        default=30.0,
        description="Seconds the Kafka edge waits for the rest of a request frame once its "
        "first bytes arrived; a slower (or stalled) client is disconnected.",
    )
    gateway_auth_seconds: float = Field(
        default=10.0,
        description="Seconds a new Kafka edge connection has to finish TLS and SASL "
        "authentication before it is closed.",
    )
    gateway_max_connections_per_ip: int = Field(
        default=100,
        description="Most open Kafka edge connections from one client address; more are "
        "closed on accept. 0 means unlimited.",
    )
    gateway_max_decompressed_bytes: int = Field(
        default=4 * 1024 * 1024,
        description="Largest size one compressed record batch may have once decompressed "
        "(bytes); checked while decompressing, a larger batch is refused (CORRUPT_MESSAGE).",
    )
    gateway_auth_failure_delay_seconds: float = Field(
        default=1.0,
        description="Seconds the Kafka edge waits before answering a failed authentication.",
    )
    gateway_auth_failures_per_minute: int = Field(
        default=30,
        description="Failed Kafka edge logins one client address may make per minute; beyond "
        "it, further attempts are refused at once and the connection closed. 0 means unlimited.",
    )
    gateway_max_collections: int = Field(
        default=1000,
        description="Most collections (in.<project>.* backend topics) one project may have; "
        "the Kafka edge refuses to create more (POLICY_VIOLATION / INVALID_TOPIC).",
    )
    gateway_max_topics_created_per_request: int = Field(
        default=5,
        description="Most new collections one Metadata or Produce request may create through "
        "the Kafka edge; the others get an error and may be retried in a later request.",
    )
    http_max_body_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        description="Largest body the HTTP event endpoints read (bytes); a larger one is refused "
        "with 413 RequestTooLargeError before it is read whole.",
    )
    http_max_events_per_request: int = Field(
        default=5000,
        ge=1,
        description="Most events one HTTP batch (POST /3.0/projects/{id}/events) may hold, "
        "over all its collections; a larger batch is refused whole with 400 "
        "TooManyEventsError.",
    )
    http_max_collections_per_request: int = Field(
        default=20,
        description="Most collections one HTTP batch (POST /3.0/projects/{id}/events) may name; "
        "a larger batch is refused whole with 400 TooManyCollectionsError.",
    )

    @field_validator(
        "kafka_bootstrap",
        "kafka_sasl_username",
        "kafka_sasl_password",
        "kafka_ssl_cafile",
        "kafka_ssl_certfile",
        "kafka_ssl_keyfile",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # Compose files pass `VAR: ${VAR:-}`: an empty value means the setting is not set.
        return None if value == "" else value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'inbound.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
