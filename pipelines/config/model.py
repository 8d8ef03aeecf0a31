"""The estate file as typed, frozen data: what a deployment is made of and how to reach it.

One file (`reporting.yaml`, format in docs/estate-file.md) declares every source service, the Kafka
and Kafka Connect clusters, the reporting backend and Dagster. `pipelines.config.load` reads and
validates it at the edges (CLI, Dagster resources); everything else receives these objects. Pure: no
I/O, no environment. Secrets are *references* (an environment variable or a file), never values;
`pipelines.config.secrets.SecretResolver` turns a reference into a value when a connection is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
"""Service names become topic prefixes, folder names, role and slot names: lower-case identifiers."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Model):
    """Where a secret lives: exactly one of `env` (an environment variable, also looked up in the
    estate's `env_file`) or `file` (a file holding only the secret; trailing newline ignored)."""

    env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Environment variable name.")
    file: Path | None = Field(None, description="File whose whole content is the secret.")

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret reference needs exactly one of 'env' or 'file'")
        return self

    def describe(self) -> str:
        return f"environment variable {self.env}" if self.env else f"file {self.file}"

    def connect_placeholder(self) -> str:
        """How a Kafka Connect worker resolves this secret itself (EnvVarConfigProvider `env`,
        DirectoryConfigProvider `dir`), so the value never travels through the Connect REST API."""
        if self.env:
            return "${env:" + self.env + "}"
        assert self.file is not None
        return "${dir:" + str(self.file.parent) + ":" + self.file.name + "}"


class Login(_Model):
    """A database user and its password reference."""

    user: str = Field(..., pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    password: SecretRef


class Service(_Model):
    """One source service: its private database and the files that capture and project it."""

    name: str = Field(..., pattern=NAME_PATTERN, description="Filled from the key under `services`.")
    engine: Literal["postgresql", "mariadb"]
    host: str
    port: int = Field(..., ge=1, le=65535)
    database: str = Field(..., pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    cdc: Login = Field(..., description="The user Debezium captures changes as (replication rights).")
    reader: Login = Field(..., description="A user that can read the captured tables (reconcile, status).")
    connector: Path = Field(..., description="Kafka Connect JSON of this service's Debezium connector.")
    projection: Path = Field(..., description="Projection of private rows onto the contracts (docs/projection.md).")
    schema_sql: Path | None = Field(None, description="Local stack only: SQL that creates the private schema.")
    server_id: int | None = Field(None, ge=1, description="MariaDB only: the replica server id Debezium uses.")

    @property
    def topic_prefix(self) -> str:
        """Debezium's `topic.prefix`: change topics are `<service>.<schema or database>.<table>`."""
        return self.name

    @property
    def slot_name(self) -> str:
        """PostgreSQL replication slot and publication of this service's connector."""
        return f"reporting_{self.name}"

    def url(self, password: str, driver: bool = True, login: Login | None = None) -> str:
        """SQLAlchemy URL as `login` (default the reader)."""
        login = login or self.reader
        if self.engine == "mariadb":
            scheme = "mysql+pymysql" if driver else "mysql"
        else:
            scheme = "postgresql+psycopg" if driver else "postgresql"
        return f"{scheme}://{quote(login.user, safe='')}:{quote(password, safe='')}@{self.host}:{self.port}/{self.database}"


class KafkaSecurity(_Model):
    """Kafka client security, passed through to every client (consumer, producer, admin, Connect)."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    username: str | None = None
    password: SecretRef | None = None
    ca_file: Path | None = Field(None, description="PEM file of the CA that signed the brokers' certificates.")

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSecurity:
        if self.protocol.startswith("SASL_") and not (self.sasl_mechanism and self.username and self.password):
            raise ValueError(f"protocol {self.protocol} needs sasl_mechanism, username and password")
        return self


class LocalCluster(_Model):
    """The local stack's cluster profile (docs/scaling.md): `reporting stack up` starts one KRaft node
    (combined broker + controller) per `kafka.bootstrap_servers` entry and one Kafka Connect worker per
    `connect.urls` entry, all in one distributed group; every topic gets `replication_factor` replicas
    and `min_insync_replicas`, and the connectors create their change topics with `partitions`
    partitions. Without it the local stack is one broker and one Connect worker."""

    partitions: int = Field(6, ge=1, le=64, description="Partitions of each change topic the connectors create.")
    replication_factor: int = Field(3, ge=1, le=9, description="Replicas of every topic (at most one per broker).")
    min_insync_replicas: int = Field(2, ge=1, le=9, description="Replicas an acks=all write needs.")
    broker_heap: str = Field("384m", pattern=r"^[0-9]+[kmgKMG]$", description="-Xmx of each broker.")
    connect_heap: str = Field("512m", pattern=r"^[0-9]+[kmgKMG]$", description="-Xmx of each Connect worker.")

    @model_validator(mode="after")
    def _isr(self) -> LocalCluster:
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(f"min_insync_replicas {self.min_insync_replicas} exceeds replication_factor "
                             f"{self.replication_factor}")
        return self


class Kafka(_Model):
    bootstrap_servers: tuple[str, ...] = Field(..., min_length=1, description="host:port of one or more brokers.")
    security: KafkaSecurity = KafkaSecurity()
    local_cluster: LocalCluster | None = Field(
        None, description="Local stack only: start one broker per bootstrap server and one Connect worker per "
                          "connect URL, with replication (docs/scaling.md).")

    @model_validator(mode="after")
    def _cluster_fits(self) -> Kafka:
        lc = self.local_cluster
        if lc is not None:
            ports = [s.rpartition(":")[2] for s in self.bootstrap_servers]
            if len(set(ports)) != len(ports):
                raise ValueError("local_cluster: every bootstrap server is one local broker, so their ports must differ")
            if lc.replication_factor > len(self.bootstrap_servers):
                raise ValueError(f"local_cluster.replication_factor {lc.replication_factor} needs as many brokers, "
                                 f"but bootstrap_servers lists {len(self.bootstrap_servers)}")
        return self

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_port(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for server in value:
            host, _, port = server.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"{server!r} is not host:port")
        return value

    @property
    def bootstrap(self) -> str:
        return ",".join(self.bootstrap_servers)


class Connect(_Model):
    urls: tuple[str, ...] = Field(..., min_length=1, description="REST URLs of the Kafka Connect workers.")
    username: str | None = None
    password: SecretRef | None = None

    @field_validator("urls")
    @classmethod
    def _http(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{url!r} is not an http(s) URL")
        return value

    @property
    def url(self) -> str:
        return self.urls[0].rstrip("/")


class DuckDbBackend(_Model):
    path: Path
    memory_limit: str = "160MB"
    checkpoint: str = Field("64MB", description="Checkpoint when the WAL reaches this size.")
    threads: int = Field(2, ge=1)


class PostgresBackend(_Model):
    host: str
    port: int = Field(..., ge=1, le=65535)
    database: str = Field(..., pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    writer: Login = Field(..., description="The role the pipeline writes with (owns the reporting schema).")
    reader: Login = Field(..., description="The read-only role BI tools use.")


class DuckLakePostgresCatalog(_Model):
    """A DuckLake catalog in a PostgreSQL database: the lake shared by processes on several machines."""

    host: str
    port: int = Field(..., ge=1, le=65535)
    database: str = Field(..., pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    login: Login = Field(..., description="The role that owns the catalog tables (DuckLake creates them on first use).")


class DuckLakeMaintenance(_Model):
    """`reporting ducklake maintain` and its Dagster schedule: compact, expire, delete (docs/ducklake.md)."""

    schedule: str | None = Field("*/15 * * * *", description="Cron of the Dagster maintenance schedule (null: none).")
    keep_snapshots_hours: float = Field(1, ge=0, description=(
        "Every snapshot younger than this stays queryable (`--as-of` any time in this window)."))
    keep_daily_days: int = Field(400, ge=0, description=(
        "Beyond that window, the last snapshot of each UTC day stays queryable for this many days (the report "
        "as it was at a day's or month's close); 0 keeps none."))
    keep_files_hours: float = Field(0.25, ge=0, description=(
        "Files no snapshot needs any more are deleted once they are this old (a query running longer than "
        "this may fail to read an expired file)."))


class DuckLakeBackend(_Model):
    """DuckLake: catalog in a SQLite file or a PostgreSQL database, data as Parquet files under `data_path`
    (docs/ducklake.md)."""

    catalog: Path | None = Field(None, description="The SQLite catalog file (created on first use).")
    postgres_catalog: DuckLakePostgresCatalog | None = Field(None, description=(
        "The catalog in PostgreSQL instead of a SQLite file (readers on other machines)."))
    data_path: Path = Field(..., description="Folder of the Parquet data files (created on first use).")
    venv: Path | None = Field(None, description="The DuckLake engine's venv (default {state_dir}/ducklake-venv; "
                                                 "REPORTING_DUCKLAKE_VENV overrides).")
    inlining_rows: int | None = Field(None, ge=0, le=100_000, description=(
        "Changes of up to N rows per table and commit are kept in the catalog instead of new Parquet files "
        "(DuckLake's data inlining; 0 = off; null = DuckLake's default, 10 rows in format 1.0). "
        "`reporting ducklake maintain` flushes them into Parquet files."))
    maintenance: DuckLakeMaintenance = Field(default_factory=DuckLakeMaintenance)

    @model_validator(mode="after")
    def _one_catalog(self) -> DuckLakeBackend:
        if (self.catalog is None) == (self.postgres_catalog is None):
            raise ValueError("declare exactly one of 'catalog' (a SQLite file) and 'postgres_catalog'")
        return self


class Reporting(_Model):
    backend: Literal["duckdb", "postgres", "ducklake"] = "duckdb"
    duckdb: DuckDbBackend | None = None
    postgres: PostgresBackend | None = None
    ducklake: DuckLakeBackend | None = None

    @model_validator(mode="after")
    def _configured(self) -> Reporting:
        if getattr(self, self.backend) is None:
            raise ValueError(f"backend {self.backend!r} is selected but 'reporting.{self.backend}' is not declared")
        return self


class Schedules(_Model):
    timezone: str = "UTC"
    dbt_build: str = "0 * * * *"
    reconcile: str | None = "30 3 * * *"


class Dagster(_Model):
    home: Path
    host: str = "127.0.0.1"
    port: int = Field(53000, ge=1, le=65535)
    schedules: Schedules = Schedules()


STALL_RESTART_S_DEFAULT = 120.0
"""pipeline.stall_restart_s: the same default as pipelines/kafka/stall.py (a unit test keeps them equal)."""

LINGER_MS_DEFAULT = 250
"""pipeline.linger_ms: measured trade-off of CPU per event against latency, docs/benchmarks.md section 8."""

LINGER_MS_BEHIND_REPLICA = 1000
"""pipeline.linger_ms when unset, on the DuckDB file with its read replica on: readers see the replica, published
every replica_every_s (10 s), so a longer linger adds little to what they wait for, and on DuckDB it cuts the
stream's CPU per event by ~60 % (317 → 128 µs at ~1,500 ev/s, docs/benchmarks.md section 8, seventh run)."""


def effective_linger_ms(configured: int | None, backend: str, replica_on: bool) -> int:
    """The linger a stream uses: the configured one, else 1,000 ms on the DuckDB file behind its replica and
    250 ms everywhere else (readers see every commit at once there)."""
    if configured is not None:
        return configured
    return LINGER_MS_BEHIND_REPLICA if backend == "duckdb" and replica_on else LINGER_MS_DEFAULT


class Pipeline(_Model):
    """How the pipeline workers run (every value can also be given on the command line)."""

    consumer_group: str = "reporting-pipeline"
    planners: int = Field(0, ge=0, le=16, description="Planner processes (docs/benchmarks.md §7).")
    max_retries: int = Field(8, ge=0, description="Attempts on a transient reporting-DB error before stopping.")
    open_wait_s: float = Field(300.0, ge=0, description="How long a worker waits for an unavailable reporting DB.")
    replica_every_s: float = Field(10.0, ge=0, description="DuckDB: publish the BI read replica every N s (0 = off).")
    replica_max_share: float = Field(0.05, gt=0, le=1, description=(
        "DuckDB: publishing the replica takes at most this share of the time; a publication that took longer "
        "than share × replica_every_s spaces the next ones further apart (its seconds / share)."))
    lag_threshold: int = Field(100, ge=0, description="Dagster lag sensor: alert above this many events.")
    wal_warn_mb: float = Field(1024.0, ge=0, description="`status` warns when a slot retains more WAL than this.")
    max_record_bytes: int = Field(1024 * 1024, ge=1024, description="Larger change events are dead-lettered.")
    linger_ms: int | None = Field(None, ge=0, le=60_000, description=(
        "Streaming: a fetch waits on the broker up to N ms for more records and at most one batch is cut every "
        "N ms; records arriving meanwhile are applied together. More: fewer fetches and transactions, less CPU "
        "per event, up to N ms more latency; 0 = every record at once (docs/benchmarks.md section 8). Unset: "
        "250, or 1000 on the DuckDB file while its read replica is on (readers see the replica, every "
        "replica_every_s)."))
    stall_restart_s: float = Field(STALL_RESTART_S_DEFAULT, ge=10, le=3600, description=(
        "Streaming: a consumer whose group rebalance has not finished, or that fetched nothing while records "
        "waited, for this long is opened anew (docs/operations.md)."))


class Superset(_Model):
    """Apache Superset started by `reporting bi superset up` (docs/bi.md)."""

    dashboards: Path | None = Field(None, description="Folder of the dashboard files provisioned into Superset "
                                                        "(relative to the estate file).")
    host: str = "127.0.0.1"
    port: int | None = Field(None, ge=1, le=65535,
                             description="Web port; default: dagster.port + 88 (so REPORTING_PORT_OFFSET moves it).")
    admin_user: str = Field("admin", pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


class Bi(_Model):
    """BI tools the product starts and provisions itself."""

    superset: Superset | None = None


class Estate(_Model):
    """The whole declared deployment."""

    name: str = Field(..., pattern=NAME_PATTERN)
    path: Path = Field(..., description="The estate file itself (filled by the loader).")
    state_dir: Path = Field(..., description="Local working folder: logs, pid files, caches, default DuckDB file.")
    env_file: Path | None = Field(None, description="dotenv file consulted for `env` secrets the environment lacks.")
    contracts: Path
    dbt_project: Path
    services: tuple[Service, ...] = Field(..., min_length=1)
    kafka: Kafka
    connect: Connect
    reporting: Reporting
    dagster: Dagster
    pipeline: Pipeline = Pipeline()
    bi: Bi = Bi()

    @property
    def root(self) -> Path:
        """The folder of the estate file; relative paths in it are relative to this folder."""
        return self.path.parent

    def service(self, name: str) -> Service:
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(f"{self.path}: no service {name!r} (declared: {', '.join(self.service_names)})")

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services)

    def secret_refs(self) -> dict[str, SecretRef]:
        """Every secret reference in the file, by its key path (for the local stack and `config check`)."""
        refs: dict[str, SecretRef] = {}
        for s in self.services:
            refs[f"services.{s.name}.cdc.password"] = s.cdc.password
            refs[f"services.{s.name}.reader.password"] = s.reader.password
        if self.kafka.security.password:
            refs["kafka.security.password"] = self.kafka.security.password
        if self.connect.password:
            refs["connect.password"] = self.connect.password
        pg = self.reporting.postgres
        if pg:
            refs["reporting.postgres.writer.password"] = pg.writer.password
            refs["reporting.postgres.reader.password"] = pg.reader.password
        return refs
