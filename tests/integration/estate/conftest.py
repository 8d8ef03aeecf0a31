"""Real PostgreSQL 15 and MariaDB servers for the estate's integration tests.

Each server is started once per test session in its own temporary folder, on a free loopback
port, and always stopped at teardown (even when tests fail). We run as root in CI, so PostgreSQL
runs as the `postgres` OS user and MariaDB as `mysql`; their folders are created outside pytest's
root-only temp tree and chowned to them.

The helpers (`LocalPostgres`, `LocalMariaDb`) do not depend on pytest and can be reused by other
areas or by a benchmark script; the fixtures at the bottom wire them into pytest.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from estate.services import SERVICES

PG_BIN = Path(os.environ.get("REPORTING_PG_BIN", "/usr/lib/postgresql/15/bin"))
MARIADB_SERVER = os.environ.get("REPORTING_MARIADBD", "/usr/sbin/mariadbd")
PG_SERVICES = tuple(name for name, service in SERVICES.items() if service.engine == "postgresql")


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.3):
        return True
    return False


def _owned_tempdir(prefix: str, user: str) -> Path:
    """A fresh folder under the system temp dir, readable by all, owned by `user` when we are root."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    if os.geteuid() == 0:
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)
    return path


def _as(user: str, cmd: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str], what: str, input: str | None = None) -> str:
    done = subprocess.run(cmd, input=input, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


def _wait(what: str, probe, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} did not come up within {timeout:.0f}s (log {log}):\n{tail}")
        time.sleep(0.1)


@dataclass
class LocalPostgres:
    """A throwaway PostgreSQL 15 cluster with one database and one login role per PG service."""

    root: Path = field(default_factory=lambda: _owned_tempdir("estate-pg-", "postgres"))
    port: int = field(default_factory=free_port)
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def start(self) -> LocalPostgres:
        _run(_as("postgres", [str(PG_BIN / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                              "--auth-local=peer", "--auth-host=scram-sha-256", "-E", "UTF8",
                              "--locale=C.UTF-8"]), "initdb")
        conf = [f"port = {self.port}", "listen_addresses = '127.0.0.1'",
                f"unix_socket_directories = '{self.root}'", "wal_level = logical",
                "max_connections = 50", "shared_buffers = 128MB", "synchronous_commit = off"]
        with (self.data_dir / "postgresql.auto.conf").open("a") as fh:
            fh.write("\n".join(conf) + "\n")
        _run(_as("postgres", [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log),
                              "-w", "-t", "60", "start"]), "pg_ctl start")
        _wait("postgres", lambda: _port_open(self.port), 60, self.log)
        for service in PG_SERVICES:
            self.passwords[service] = secrets.token_urlsafe(16)
            role = f"{service}_app"
            self.psql(f"CREATE ROLE {role} LOGIN PASSWORD '{self.passwords[service]}';"
                      f" CREATE DATABASE {service} OWNER {role};")
        return self

    def psql(self, sql: str, db: str = "postgres") -> str:
        """Run SQL as the superuser over the unix socket."""
        return _run(_as("postgres", [str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                     "-h", str(self.root), "-p", str(self.port), "-d", db]),
                    "psql", input=sql)

    def url(self, service: str) -> str:
        """SQLAlchemy URL of the service's database, as its application role."""
        return (f"postgresql+psycopg://{service}_app:{self.passwords[service]}"
                f"@127.0.0.1:{self.port}/{service}")

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run(_as("postgres", [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast",  # noqa: S603
                                            "-w", "-t", "60", "stop"]), capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class LocalMariaDb:
    """A throwaway MariaDB server with the `warehouse` database and its application user.

    Binary logging is on in ROW format (as the Debezium connector needs); commits flush the
    InnoDB log once per second (`innodb_flush_log_at_trx_commit=2`), the MariaDB counterpart
    of PostgreSQL's `synchronous_commit=off`.
    """

    root: Path = field(default_factory=lambda: _owned_tempdir("estate-maria-", "mysql"))
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    process: subprocess.Popen | None = None

    @property
    def socket(self) -> Path:
        return self.root / "mariadb.sock"

    @property
    def log(self) -> Path:
        return self.root / "mariadb.err"

    def start(self) -> LocalMariaDb:
        data = self.root / "data"
        _run(["mariadb-install-db", "--no-defaults", "--user=mysql", f"--datadir={data}",
              "--skip-test-db", "--auth-root-authentication-method=socket"], "mariadb-install-db")
        cmd = [MARIADB_SERVER, "--no-defaults", f"--datadir={data}", f"--socket={self.socket}",
               f"--port={self.port}", "--bind-address=127.0.0.1", "--user=mysql",
               f"--log-error={self.log}", f"--pid-file={self.root / 'mariadb.pid'}",
               "--skip-name-resolve", "--server-id=1", f"--log-bin={self.root / 'binlog'}",
               "--binlog-format=ROW", "--binlog-row-image=FULL", "--innodb-buffer-pool-size=256M",
               "--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0", "--max-connections=100",
               "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci"]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,  # noqa: S603
                                        start_new_session=True)
        _wait("mariadb", lambda: _port_open(self.port) or self.process.poll() is not None, 60, self.log)
        if self.process.poll() is not None:
            raise RuntimeError(f"mariadbd exited with {self.process.returncode}: "
                               f"{self.log.read_text(errors='replace')[-2000:]}")
        self.sql("CREATE DATABASE warehouse CHARACTER SET utf8mb4;"
                 f" CREATE USER 'warehouse_app'@'127.0.0.1' IDENTIFIED BY '{self.password}';"
                 " GRANT ALL PRIVILEGES ON warehouse.* TO 'warehouse_app'@'127.0.0.1';")
        return self

    def sql(self, sql: str) -> str:
        """Run SQL as root over the unix socket (socket authentication)."""
        return _run(["mariadb", "--no-defaults", f"--socket={self.socket}", "-u", "root", "-N", "-B"],
                    "mariadb", input=sql)

    def url(self, service: str = "warehouse") -> str:
        return f"mysql+pymysql://warehouse_app:{self.password}@127.0.0.1:{self.port}/{service}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def local_postgres() -> Iterator[LocalPostgres]:
    server = LocalPostgres()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def local_mariadb() -> Iterator[LocalMariaDb]:
    server = LocalMariaDb()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def estate_urls(local_postgres: LocalPostgres, local_mariadb: LocalMariaDb) -> dict[str, str]:
    """SQLAlchemy URL per service, with every private schema created."""
    from estate import services

    urls = {name: local_postgres.url(name) for name in PG_SERVICES}
    urls["warehouse"] = local_mariadb.url()
    for name, url in urls.items():
        services.get(name).create_schema(url)
    return urls


@pytest.fixture(scope="session")
def estate(estate_urls: dict[str, str]):
    """One open connection per service (what the flows take), closed at the end of the session."""
    from estate.db import Estate

    with Estate.connect(estate_urls) as connections:
        yield connections


class DecodedTransactions:
    """Committed transactions of one PostgreSQL database, as logical decoding (test_decoding) saw them.

    Each transaction is a list of change lines such as
    `table public.orders: UPDATE: id[bigint]:1 ... terms_snapshot[text]:unchanged-toast-datum ...`.
    """

    def __init__(self, server: LocalPostgres, db: str) -> None:
        self.server, self.db = server, db
        self.slot = f"estate_test_{secrets.token_hex(6)}"
        self.transactions: list[list[str]] = []

    def __enter__(self) -> DecodedTransactions:
        self.server.psql(f"SELECT pg_create_logical_replication_slot('{self.slot}', 'test_decoding')", db=self.db)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            # decoding stops at the flushed WAL; the services commit asynchronously (synchronous_commit
            # off), so a synchronous commit that writes WAL (a transactional message) flushes it all
            self.server.psql("SET synchronous_commit = on;"
                             " SELECT pg_logical_emit_message(true, 'estate_test_flush', '');", db=self.db)
            out = self.server.psql(
                "SELECT replace(data, E'\\n', ' ') FROM pg_logical_slot_get_changes("
                f"'{self.slot}', NULL, NULL, 'include-xids', '0', 'skip-empty-xacts', '1')", db=self.db)
            current: list[str] | None = None
            for line in out.splitlines():
                if line.startswith("BEGIN"):
                    current = []
                elif line.startswith("COMMIT"):
                    if current:
                        self.transactions.append(current)
                    current = None
                elif current is not None and not line.startswith("message:"):
                    current.append(line)
        finally:
            self.server.psql(f"SELECT pg_drop_replication_slot('{self.slot}')", db=self.db)


@pytest.fixture
def decode(local_postgres: LocalPostgres):
    """`with decode('customers') as seen: ...` then `seen.transactions` lists what was committed."""
    return lambda db: DecodedTransactions(local_postgres, db)
