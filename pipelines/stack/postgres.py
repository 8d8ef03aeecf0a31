"""Local PostgreSQL clusters: one per PostgreSQL service (and one for the PostgreSQL reporting backend).

Each cluster has its own data directory under <state>/pg/<name>, its own port on loopback and
runs as the `postgres` OS user (PostgreSQL refuses to run as root). Source clusters get
`wal_level=logical` so Debezium can stream them through pgoutput.

Operational warning: a replication slot that no connector reads keeps WAL forever; `reporting
stack down` leaves slots in place (the connector resumes from them), `reporting stack reset` drops
the whole state folder.
"""

from __future__ import annotations

import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipelines.bi.grants import DEFAULT_ROLES, Roles, grant_bi_reader
from pipelines.stack import proc
from pipelines.stack.errors import StackError

PG_BIN = Path(os.environ.get("REPORTING_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


@dataclass(frozen=True)
class PgCluster:
    """One local PostgreSQL cluster."""

    name: str
    root: Path
    host: str
    port: int
    logical: bool = True

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    @property
    def component(self) -> str:
        return f"postgres:{self.name}"

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def running_pid(self) -> int | None:
        pid = proc.read_pid(self.data_dir / "postmaster.pid")
        return pid if pid and proc.pid_alive(pid) else None

    def init(self) -> None:
        if self.initialised():
            return
        if not (PG_BIN / "initdb").exists():
            raise StackError(f"{self.component}: PostgreSQL 15 binaries not found in {PG_BIN}")
        for d in (self.root, self.socket_dir):
            d.mkdir(parents=True, exist_ok=True)
            _chown_postgres(d)
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        proc.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                               "--auth-local=peer", "--auth-host=scram-sha-256", "-E", "UTF8",
                               "--locale=C.UTF-8"]), f"{self.component}: initdb")
        conf = [
            f"port = {self.port}",
            f"listen_addresses = '{self.host}'",
            f"unix_socket_directories = '{self.socket_dir}'",
            "max_connections = 100",
            "shared_buffers = 128MB",
            "fsync = on",
            "synchronous_commit = off",
        ]
        if self.logical:
            # synchronous_commit=off lets a commit return before its WAL is flushed, and pgoutput only
            # streams flushed WAL: the WAL writer's delay (default 200 ms, up to 3x that) was most of
            # the source-side latency measured in docs/benchmarks.md; 20 ms keeps commits asynchronous
            conf += ["wal_level = logical", "max_replication_slots = 10", "max_wal_senders = 10",
                     "max_slot_wal_keep_size = 4GB", "wal_writer_delay = 20ms"]
        with (self.data_dir / "postgresql.auto.conf").open("a") as fh:
            fh.write("\n# written by `reporting stack up`\n" + "\n".join(conf) + "\n")

    def start(self) -> bool:
        """Start if not running; True when this call started it (retried when its port was taken
        in the meantime, see proc.retry_port_race)."""
        return proc.retry_port_race(self.log, self._start_once)

    def _start_once(self) -> bool:
        if self.running_pid():
            return False
        proc.ensure_port_free(self.component, self.host, self.port)
        self.log.touch()
        _chown_postgres(self.log)
        try:
            proc.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log),
                                   "-w", "-t", "60", "start"]), f"{self.component}: pg_ctl start")
        except StackError as exc:
            raise StackError(f"{self.component} did not come up (log: {self.log})", proc.tail(self.log)) from exc
        return True

    def stop(self) -> bool:
        if not self.running_pid():
            return False
        proc.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w",
                               "-t", "60", "stop"]), f"{self.component}: pg_ctl stop")
        return True

    def psql(self, sql: str, db: str = "postgres") -> str:
        """Run SQL as the superuser over the unix socket (peer auth); returns unaligned output."""
        return proc.run(_as_postgres([str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                      "-h", str(self.socket_dir), "-p", str(self.port), "-d", db]),
                        f"{self.component}: psql", input=sql)

    def healthy(self) -> bool:
        return self.running_pid() is not None and proc.port_open(self.host, self.port)


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def provision_service(cluster: PgCluster, database: str, app_user: str, app_password: str,
                      cdc_user: str, cdc_password: str) -> None:
    """Idempotently create the service's database, its application (owner) role and the CDC role.

    The CDC role can log in for replication and read the service's tables. The publication is
    created later, once the service's tables exist (bootstrap.create_service_schemas), so Debezium
    never needs table ownership. Names come from the estate file (validated identifiers).
    """
    cluster.psql(f"""
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {_lit(app_user)}) THEN
    CREATE ROLE {app_user} LOGIN PASSWORD {_lit(app_password)};
  ELSE ALTER ROLE {app_user} PASSWORD {_lit(app_password)}; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {_lit(cdc_user)}) THEN
    CREATE ROLE {cdc_user} LOGIN REPLICATION PASSWORD {_lit(cdc_password)};
  ELSE ALTER ROLE {cdc_user} PASSWORD {_lit(cdc_password)}; END IF;
END $$;
""")
    exists = cluster.psql(f"SELECT 1 FROM pg_database WHERE datname = {_lit(database)}").strip()
    if not exists:
        cluster.psql(f"CREATE DATABASE {database} OWNER {app_user}")
    cluster.psql(f"""
GRANT CONNECT ON DATABASE {database} TO {cdc_user};
GRANT USAGE ON SCHEMA public TO {cdc_user};
GRANT SELECT ON ALL TABLES IN SCHEMA public TO {cdc_user};
ALTER DEFAULT PRIVILEGES FOR ROLE {app_user} IN SCHEMA public GRANT SELECT ON TABLES TO {cdc_user};
GRANT ALL ON SCHEMA public TO {app_user};
""", db=database)


def provision_reporting(cluster: PgCluster, owner_password: str, bi_password: str,
                        roles: Roles = DEFAULT_ROLES) -> None:
    """The PostgreSQL reporting backend: its database, the writer role and the read-only BI role
    (names from the estate's `reporting.postgres`, default reporting / reporting_writer / bi_reader).

    Idempotent. The BI role gets read access to `reporting`, `staging` and `marts` (also to tables the
    pipeline and dbt create later) and nothing else: see `pipelines.bi.grants`.
    """
    w, r, db = roles.writer, roles.reader, roles.database
    cluster.psql(f"""
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {_lit(w)}) THEN
    CREATE ROLE {w} LOGIN PASSWORD {_lit(owner_password)};
  ELSE ALTER ROLE {w} PASSWORD {_lit(owner_password)}; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {_lit(r)}) THEN
    CREATE ROLE {r} LOGIN PASSWORD {_lit(bi_password)};
  ELSE ALTER ROLE {r} PASSWORD {_lit(bi_password)}; END IF;
END $$;
""")
    if not cluster.psql(f"SELECT 1 FROM pg_database WHERE datname = {_lit(db)}").strip():
        cluster.psql(f"CREATE DATABASE {db} OWNER {w}")
    grant_bi_reader(cluster, roles)
