"""An estate the product did not start: servers a platform team would run, reached only through an
estate file.

`ExternalEstate.start()` starts, WITHOUT `reporting stack` (no `Stack.up()`), with the stack's own server
classes and in its own state folder: a PostgreSQL source (the `orders` service) and a MariaDB source
(`warehouse`), each with non-default ports, database and user names, provisioned the way
docs/estate-file.md ("What the product needs from infrastructure it did not start") tells a database
administrator to; a reporting PostgreSQL with non-default database and role names; a Kafka broker
that requires SASL; a Kafka Connect worker that logs in to it. Then it writes the estate file that
declares exactly that, with every secret a reference: `{file: ...}` (files without a trailing
newline, 0600) or `{env: ...}` (given to the subprocesses that need it, never to `os.environ`).

The `reporting` command is then run as a subprocess with a clean environment (no REPORTING_* variable
of the e2e fixture): `ExternalEstate.reporting(...)`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipelines.bi.grants import Roles
from pipelines.settings import REPO_ROOT, Settings
from pipelines.stack.bootstrap import captured_tables, pg_cdc_setup_sql
from pipelines.stack.kafka import ConnectWorker, KafkaBroker
from pipelines.stack.mariadb import MariaDbServer
from pipelines.stack.postgres import PgCluster, provision_reporting

HOST = "127.0.0.1"
DEFAULT_PORTS = {"orders": 55433, "warehouse": 53306, "reporting": 55435, "kafka": 59092, "connect": 58083}
"""The bundled estate's ports; the external estate uses them plus an offset (REPORTING_EXT_PORT_OFFSET,
default 300: the e2e stack uses 100, a developer's stack 0)."""

CONTRACT_TABLES = ("orders", "order_lines", "products", "stock_levels", "shipments")
"""The contracts the two services feed (orders: orders v1+v2 and order_lines; warehouse: the rest)."""

CDC_USER, READER_USER, OWNER_ROLE = "ext_cdc", "ext_reader", "ext_owner"
ORDERS_DB, WAREHOUSE_DB = "ext_orders", "warehouse"  # warehouse: its connector file names warehouse.<table>
REPORTING_ROLES = Roles(writer="ext_writer", reader="ext_bi", database="ext_reporting")
KAFKA_USER = "ext_kafka"

ENV_SECRETS = {"orders_cdc": "EXT_ORDERS_CDC_PASSWORD", "reporting_writer": "EXT_REPORTING_WRITER_PASSWORD"}
FILE_SECRETS = ("orders_reader", "warehouse_cdc", "warehouse_reader", "kafka", "reporting_bi")


def reporting_executable() -> str:
    here = Path(sys.executable).with_name("reporting")
    return str(here) if here.exists() else (shutil.which("reporting") or "reporting")


def clean_environ(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any REPORTING_* / DAGSTER_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPORTING_", "DAGSTER_"))}
    env["COLUMNS"] = "220"  # rich tables of the CLI: no truncated names in captured output
    env.update(extra or {})
    return env


def _write_secret(path: Path, value: str) -> None:
    """A secret file as a platform team writes it for Kafka Connect: 0600, no trailing newline."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)


def _sql_lit(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


@dataclass
class ExternalEstate:
    root: Path
    """The test's state folder: servers' data, logs and pid files (the infrastructure), `cli/` (the state
    folder the estate file declares for `reporting`), the secrets, contracts and dbt project copies."""
    mechanism: str = "SCRAM-SHA-256"
    port_offset: int = 300
    passwords: dict[str, str] = field(default_factory=dict, repr=False)  # never in a test report

    # ------------------------------------------------------------------ layout
    @property
    def estate_file(self) -> Path:
        return self.root / "estate.yaml"

    @property
    def secrets_dir(self) -> Path:
        return self.root / "secrets"

    @property
    def cli_state(self) -> Path:
        return self.root / "cli"

    def port(self, name: str) -> int:
        return DEFAULT_PORTS[name] + self.port_offset

    def secret_file(self, name: str) -> Path:
        return self.secrets_dir / name

    @property
    def env_secrets(self) -> dict[str, str]:
        return {var: self.passwords[name] for name, var in ENV_SECRETS.items() if name in self.passwords}

    def infra(self) -> Settings:
        """Settings for the server classes: the same estate file, state folder = this test's root.
        Only the platform side uses it; `reporting` itself reads the file with a clean environment."""
        jvm = os.environ.get("REPORTING_JVM_DIR") or str(REPO_ROOT / ".state" / "jvm")
        return Settings.load(self.estate_file, environ={"REPORTING_STATE_DIR": str(self.root),
                                                        "REPORTING_JVM_DIR": jvm, **self.env_secrets})

    def servers_dir(self) -> Path:
        return self.infra().servers_dir

    # ------------------------------------------------------------------ servers (stack classes)
    def orders_pg(self) -> PgCluster:
        return PgCluster("orders", self.servers_dir() / "pg" / "orders", HOST, self.port("orders"))

    def reporting_pg(self) -> PgCluster:
        return PgCluster("reporting", self.servers_dir() / "pg" / "reporting", HOST, self.port("reporting"),
                         logical=False)

    def warehouse_db(self) -> MariaDbServer:
        return MariaDbServer("warehouse", self.servers_dir() / "mariadb" / "warehouse", HOST, self.port("warehouse"))

    def kafka(self) -> KafkaBroker:
        return KafkaBroker(self.infra())

    def connect(self) -> ConnectWorker:
        # the worker resolves ${env:...} from its own environment: the env secrets the connectors reference
        return ConnectWorker(self.infra(), {ENV_SECRETS["orders_cdc"]: self.passwords.get("orders_cdc", "")})

    # ------------------------------------------------------------------ the estate file
    def write_files(self) -> None:
        """Secrets, contracts, dbt project copy and the estate file (no server is touched)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        self.secrets_dir.mkdir(mode=0o700, exist_ok=True)
        for name in (*ENV_SECRETS, *FILE_SECRETS):
            self.passwords.setdefault(name, secrets.token_urlsafe(18))
        for name in FILE_SECRETS:
            _write_secret(self.secret_file(name), self.passwords[name])
        contracts = self.root / "contracts"
        if not contracts.exists():
            for table in CONTRACT_TABLES:
                shutil.copytree(REPO_ROOT / "reporting_schema" / table, contracts / table)
            shutil.copy(REPO_ROOT / "reporting_schema" / "contracts.lock", contracts / "contracts.lock")
        dbt = self.root / "dbt_project"
        if not dbt.exists():
            shutil.copytree(REPO_ROOT / "dbt_project", dbt,
                            ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))

        def file_ref(name: str) -> dict:
            return {"file": str(self.secret_file(name))}

        def env_ref(name: str) -> dict:
            return {"env": ENV_SECRETS[name]}

        connectors = REPO_ROOT / "connectors"
        estate = {
            "name": "external_test",
            "state_dir": str(self.cli_state),
            "contracts": str(contracts),
            "dbt_project": str(dbt),
            "services": {
                "orders": {
                    "engine": "postgresql", "host": HOST, "port": self.port("orders"), "database": ORDERS_DB,
                    "cdc": {"user": CDC_USER, "password": env_ref("orders_cdc")},
                    "reader": {"user": READER_USER, "password": file_ref("orders_reader")},
                    "connector": str(connectors / "orders" / "connector.json"),
                    "projection": str(connectors / "orders" / "projection.yaml"),
                },
                "warehouse": {
                    "engine": "mariadb", "host": HOST, "port": self.port("warehouse"), "database": WAREHOUSE_DB,
                    "server_id": 7301,
                    "cdc": {"user": CDC_USER, "password": file_ref("warehouse_cdc")},
                    "reader": {"user": READER_USER, "password": file_ref("warehouse_reader")},
                    "connector": str(connectors / "warehouse" / "connector.json"),
                    "projection": str(connectors / "warehouse" / "projection.yaml"),
                },
            },
            "kafka": {
                "bootstrap_servers": [f"{HOST}:{self.port('kafka')}"],
                "security": {"protocol": "SASL_PLAINTEXT", "sasl_mechanism": self.mechanism,
                             "username": KAFKA_USER, "password": file_ref("kafka")},
            },
            "connect": {"urls": [f"http://{HOST}:{self.port('connect')}"]},
            "reporting": {
                "backend": "postgres",
                "postgres": {
                    "host": HOST, "port": self.port("reporting"), "database": REPORTING_ROLES.database,
                    "writer": {"user": REPORTING_ROLES.writer, "password": env_ref("reporting_writer")},
                    "reader": {"user": REPORTING_ROLES.reader, "password": file_ref("reporting_bi")},
                },
            },
            "dagster": {"home": str(self.cli_state / "dagster"), "port": 53000 + self.port_offset},
        }
        self.estate_file.write_text("# written by tests/support/external.py: infrastructure `reporting` did not start\n"
                                    + yaml.safe_dump(estate, sort_keys=False))

    # ------------------------------------------------------------------ start / stop
    def start(self, say: Callable[[str], None] = print) -> None:
        """Everything, from scratch (a previous run's servers in the same folder are stopped first)."""
        self.stop(say=lambda _m: None)
        self.wipe()
        self.write_files()
        servers = self.servers_dir()
        if servers != self.root:  # the postgres/mysql OS users cannot reach the state folder
            servers.mkdir(parents=True, exist_ok=True)
            servers.chmod(0o755)
            from pipelines.stack.manager import claim_servers_dir

            claim_servers_dir(servers, self.root)  # `reporting stack reset` finds it even after rm -rf .state
        infra = self.infra()
        orders = infra.estate.service("orders")
        warehouse = infra.estate.service("warehouse")

        pg = self.orders_pg()
        pg.init()
        pg.start()
        say(f"started {pg.component} on {HOST}:{pg.port}")
        self._provision_orders(pg, orders)

        maria = self.warehouse_db()
        maria.init()
        maria.start()
        say(f"started {maria.component} on {HOST}:{maria.port}")
        self._provision_warehouse(maria, warehouse)

        rep = self.reporting_pg()
        rep.init()
        rep.start()
        say(f"started {rep.component} on {HOST}:{rep.port}")
        provision_reporting(rep, self.passwords["reporting_writer"], self.passwords["reporting_bi"], REPORTING_ROLES)

        if self.kafka().start():
            say(f"started kafka on {HOST}:{self.port('kafka')} (SASL_PLAINTEXT {self.mechanism})")
        if self.connect().start():
            say(f"started kafka connect on {HOST}:{self.port('connect')}")

    def _provision_orders(self, pg: PgCluster, svc) -> None:
        """As a DBA would: an owner role creates the tables; the CDC and reader roles get exactly what
        docs/estate-file.md lists (the CDC role owns nothing; the publication is made by the superuser)."""
        p = self.passwords
        pg.psql(f"""
CREATE ROLE {OWNER_ROLE} NOLOGIN;
CREATE ROLE {CDC_USER} LOGIN REPLICATION PASSWORD {_sql_lit(p['orders_cdc'])};
CREATE ROLE {READER_USER} LOGIN PASSWORD {_sql_lit(p['orders_reader'])};
""")
        pg.psql(f"CREATE DATABASE {ORDERS_DB} OWNER {OWNER_ROLE}")
        schema = (REPO_ROOT / "connectors" / "orders" / "schema.sql").read_text()
        pg.psql(f"SET ROLE {OWNER_ROLE};\n{schema}", db=ORDERS_DB)
        tables = captured_tables(svc)
        listed = ", ".join(tables)
        pg.psql(f"GRANT CONNECT ON DATABASE {ORDERS_DB} TO {CDC_USER};\n" + pg_cdc_setup_sql(svc, tables)
                + f"GRANT CONNECT ON DATABASE {ORDERS_DB} TO {READER_USER};\n"
                  f"GRANT USAGE ON SCHEMA public TO {READER_USER};\n"
                  f"GRANT SELECT ON {listed} TO {READER_USER};\n", db=ORDERS_DB)

    def _provision_warehouse(self, maria: MariaDbServer, svc) -> None:
        p = self.passwords
        schema = (REPO_ROOT / "connectors" / "warehouse" / "schema.sql").read_text()
        reader_grants = "".join(f"GRANT SELECT ON {t} TO '{READER_USER}'@'%';\n" for t in captured_tables(svc))
        maria.sql(f"""
CREATE DATABASE {WAREHOUSE_DB} CHARACTER SET utf8mb4;
USE {WAREHOUSE_DB};
{schema}
CREATE USER '{CDC_USER}'@'%' IDENTIFIED BY {_sql_lit(p['warehouse_cdc'])};
GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{CDC_USER}'@'%';
CREATE USER '{READER_USER}'@'%' IDENTIFIED BY {_sql_lit(p['warehouse_reader'])};
{reader_grants}FLUSH PRIVILEGES;
""")

    def stop(self, say: Callable[[str], None] = print) -> list[str]:
        """Stop every server of this folder that has a pid file (connect, kafka, databases); returns errors."""
        if not self.estate_file.exists():
            return []
        errors = []
        try:
            comps = [("connect", self.connect()), ("kafka", self.kafka()), ("mariadb:warehouse", self.warehouse_db()),
                     ("postgres:reporting", self.reporting_pg()), ("postgres:orders", self.orders_pg())]
        except Exception as exc:  # noqa: BLE001 - an unreadable leftover estate file: nothing to stop by it
            return [f"cannot read {self.estate_file}: {exc}"]
        for name, comp in comps:
            try:
                if comp.stop():
                    say(f"stopped {name}")
            except Exception as exc:  # noqa: BLE001 - stop the others anyway
                errors.append(f"{name}: {exc}")
        return errors

    def wipe(self) -> None:
        """Delete the folder (and the servers folder outside it, if any). Servers must be stopped."""
        with contextlib.suppress(Exception):
            servers = self.servers_dir()
            if servers != self.root and servers.exists():
                shutil.rmtree(servers)
        if self.root.exists():
            shutil.rmtree(self.root)

    # ------------------------------------------------------------------ running the product
    def cli_env(self, **extra: str) -> dict[str, str]:
        return clean_environ({**self.env_secrets, **extra})

    def reporting(self, *args: str, timeout: float = 300, env: dict[str, str] | None = None
                  ) -> subprocess.CompletedProcess:
        """`reporting --estate <file> <args>` as a subprocess (clean environment, cwd outside the repo)."""
        return subprocess.run([reporting_executable(), "--estate", str(self.estate_file), *args],
                              capture_output=True, text=True, timeout=timeout, cwd=self.root,
                              env=env or self.cli_env())

    def popen_reporting(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([reporting_executable(), "--estate", str(self.estate_file), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self.root,
                                env=self.cli_env())

    def writer_conninfo(self) -> str:
        return (f"host={HOST} port={self.port('reporting')} dbname={REPORTING_ROLES.database} "
                f"user={REPORTING_ROLES.writer} password={self.passwords['reporting_writer']}")
