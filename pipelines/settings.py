"""The one typed configuration every part receives: the declared estate plus how to resolve its secrets.

Built once at the edges (`Settings.load()` in the CLI, the Dagster resources, tests) from the estate
file (pipelines/config/load.py) and the environment's documented overrides; the core only reads the
object it is given. Nothing here holds a secret value: `settings.secret(ref, key)` resolves a
reference when a connection is made.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from pipelines.config.load import REPO_ROOT, load_estate
from pipelines.config.model import Estate, Login, Reporting, SecretRef
from pipelines.config.secrets import SecretResolver

__all__ = ["REPO_ROOT", "Settings", "reachable_by_others"]


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build with `Settings.load()` at an edge, then pass it down."""

    estate: Estate
    """The declared estate (services, Kafka, Connect, reporting backend, Dagster, pipeline tuning)."""
    secrets: SecretResolver
    """Resolves the estate's secret references (environment captured at load time, then env_file)."""
    kafka_heap: str = "768m"
    """Local stack only: -Xmx of the Kafka broker (REPORTING_KAFKA_HEAP)."""
    connect_heap: str = "1g"
    """Local stack only: -Xmx of the Connect worker (REPORTING_CONNECT_HEAP)."""
    jvm_dir_override: Path | None = None
    """Local stack only: resolved jars (REPORTING_JVM_DIR, default <state>/jvm)."""
    servers_dir_override: Path | None = None
    """Local stack only: where PostgreSQL/MariaDB data dirs live (REPORTING_SERVERS_DIR)."""

    @classmethod
    def load(cls, estate: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the estate file (`estate`, else REPORTING_ESTATE, else the bundled example) and the
        environment's overrides. Call this at an edge, once."""
        environ = os.environ if environ is None else environ
        est = load_estate(estate, environ)
        jvm = environ.get("REPORTING_JVM_DIR")
        servers = environ.get("REPORTING_SERVERS_DIR")
        return cls(
            estate=est,
            secrets=SecretResolver(environ, est.env_file),
            kafka_heap=environ.get("REPORTING_KAFKA_HEAP", "768m"),
            connect_heap=environ.get("REPORTING_CONNECT_HEAP", "1g"),
            jvm_dir_override=Path(jvm).resolve() if jvm else None,
            servers_dir_override=Path(servers).resolve() if servers else None,
        )

    def with_backend(self, backend: str) -> Settings:
        """The same configuration with another reporting backend selected (both must be declared)."""
        reporting = self.estate.reporting.model_copy(update={"backend": backend})
        Reporting.model_validate(reporting.model_dump())  # the selected backend must be declared
        return replace(self, estate=self.estate.model_copy(update={"reporting": reporting}))

    # --- what the core reads ------------------------------------------------------------------
    def secret(self, ref: SecretRef, key: str) -> str:
        return self.secrets.get(ref, key)

    @property
    def state_dir(self) -> Path:
        return self.estate.state_dir

    @property
    def backend(self) -> str:
        return self.estate.reporting.backend

    @property
    def duckdb_path(self) -> Path:
        duck = self.estate.reporting.duckdb
        return duck.path if duck else self.state_dir / "reportingdb.duckdb"

    @property
    def ducklake(self):
        """The estate's `reporting.ducklake` section (None when not declared)."""
        return self.estate.reporting.ducklake

    @property
    def kafka_bootstrap(self) -> str:
        return self.estate.kafka.bootstrap

    @property
    def connect_url(self) -> str:
        return self.estate.connect.url

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def service_url(self, name: str, driver: bool = True, login: Login | None = None) -> str:
        """SQLAlchemy URL of a service's database as its declared reader (or `login`)."""
        svc = self.estate.service(name)
        login = login or svc.reader
        role = "cdc" if login is svc.cdc else "reader"
        return svc.url(self.secret(login.password, f"services.{name}.{role}.password"), driver=driver, login=login)

    def service_urls(self, driver: bool = True) -> dict[str, str]:
        return {s.name: self.service_url(s.name, driver) for s in self.estate.services}

    def reporting_pg_conninfo(self, role: str = "writer") -> str:
        """libpq conninfo of the PostgreSQL reporting backend as its `writer` or BI `reader` role."""
        pg = self.estate.reporting.postgres
        if pg is None:
            raise ValueError(f"{self.estate.path}: reporting.postgres is not declared")
        login = pg.writer if role == "writer" else pg.reader
        password = self.secret(login.password, f"reporting.postgres.{role}.password")
        return (f"host={pg.host} port={pg.port} dbname={pg.database} user={login.user} "
                f"password={_conninfo_quote(password)}")

    # --- local development stack ---------------------------------------------------------------
    @property
    def host(self) -> str:
        """Loopback address the local stack binds to."""
        return "127.0.0.1"

    @property
    def ports(self) -> dict[str, int]:
        """Port per local component, from the estate file (the Kafka controller is the broker's + 1)."""
        e = self.estate
        kafka = int(e.kafka.bootstrap_servers[0].rpartition(":")[2])
        from urllib.parse import urlsplit

        ports = {s.name: s.port for s in e.services}
        ports.update(kafka=kafka, kafka_controller=kafka + 1, connect=urlsplit(e.connect.url).port or 80,
                     dagster=e.dagster.port)
        if e.reporting.postgres:
            ports["reporting_pg"] = e.reporting.postgres.port
        return ports

    @property
    def jvm_dir(self) -> Path:
        return self.jvm_dir_override or self.state_dir / "jvm"

    @property
    def secrets_file(self) -> Path:
        """Where the local stack writes the passwords it generates (the estate's env_file)."""
        return self.estate.env_file or self.state_dir / "secrets.env"

    @property
    def servers_dir(self) -> Path:
        """Where the PostgreSQL and MariaDB data dirs live (REPORTING_SERVERS_DIR).

        Those servers run as the `postgres` and `mysql` OS users, which must be able to walk down to
        their data dirs. Under a state folder they can reach, that is the state folder itself; under
        one they cannot (a clone in `mktemp -d` or /root, both 0700) it is a per-checkout folder
        `/var/tmp/reporting-servers-<hash of the state folder>`, and `<state>/servers` links to it.
        """
        if self.servers_dir_override:
            return self.servers_dir_override
        if os.geteuid() != 0 or reachable_by_others(self.state_dir):
            return self.state_dir
        digest = hashlib.sha1(str(self.state_dir).encode()).hexdigest()[:12]  # noqa: S324 - a name, not security
        return Path("/var/tmp") / f"reporting-servers-{digest}"


def _conninfo_quote(value: str) -> str:
    if value and all(c not in value for c in " '\\"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def reachable_by_others(path: Path) -> bool:
    """True when every existing ancestor of `path` lets other users through (o+x)."""
    for d in [path, *path.parents]:
        if d.exists() and not d.stat().st_mode & stat.S_IXOTH:
            return False
    return True
