"""`reporting stack up | down | status`: the whole local stack, started and stopped in order.

up:   install what is missing → PostgreSQL clusters (one per service + the reporting backend)
      → MariaDB → Kafka (KRaft) → Kafka Connect → service databases and roles provisioned.
down: stops, in reverse order, only what has a pid file in the state folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass

from pipelines.bi.grants import Roles
from pipelines.settings import Settings, reachable_by_others
from pipelines.stack import install, proc
from pipelines.stack import secrets as secrets_mod
from pipelines.stack.errors import StackError
from pipelines.stack.kafka import ConnectWorker, KafkaBroker, java_bin
from pipelines.stack.mariadb import MariaDbServer
from pipelines.stack.mariadb import provision_service as provision_mariadb
from pipelines.stack.postgres import PgCluster, provision_reporting
from pipelines.stack.postgres import provision_service as provision_pg


@dataclass(frozen=True)
class Health:
    component: str
    up: bool
    detail: str


class Stack:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.load()
        s = self.settings
        servers = s.servers_dir
        services = s.estate.services
        self.pg = {svc.name: PgCluster(svc.name, servers / "pg" / svc.name, s.host, svc.port)
                   for svc in services if svc.engine == "postgresql"}
        pg = s.estate.reporting.postgres
        self.reporting_pg = (PgCluster("reporting", servers / "pg" / "reporting", s.host, pg.port, logical=False)
                             if pg else None)
        self.mariadb = {svc.name: MariaDbServer(svc.name, servers / "mariadb" / svc.name, s.host, svc.port)
                        for svc in services if svc.engine == "mariadb"}
        self.kafka = KafkaBroker(s)

    def secrets(self, create: bool = False) -> dict[str, str]:
        return secrets_mod.load(self.settings, create=create)

    def connect(self) -> ConnectWorker:
        return ConnectWorker(self.settings, secrets_mod.connect_env(self.settings, self.secrets()))

    def up(self, say: Callable[[str], None] = print) -> None:
        s = self.settings
        self._check_local(s)
        s.state_dir.mkdir(parents=True, exist_ok=True)
        s.state_dir.chmod(0o755)
        self._prepare_servers_dir(say)
        install.ensure_debian_packages(say)
        install.ensure_jvm_artifacts(s, say)
        java_bin()  # fail early, with one line, when Java is missing
        self.secrets(create=True)  # the settings' resolver reads the env_file when asked, so it sees these
        for svc in s.estate.services:
            server = self.pg.get(svc.name) or self.mariadb[svc.name]
            server.init()
            if server.start():
                say(f"started {server.component} on {s.host}:{server.port}")
            provision = provision_pg if svc.engine == "postgresql" else provision_mariadb
            provision(server, svc.database, svc.reader.user, s.secret(svc.reader.password, f"services.{svc.name}.reader"),
                      svc.cdc.user, s.secret(svc.cdc.password, f"services.{svc.name}.cdc"))
        pg = s.estate.reporting.postgres
        if self.reporting_pg is not None and pg is not None:
            self.reporting_pg.init()
            if self.reporting_pg.start():
                say(f"started postgres:reporting on {s.host}:{self.reporting_pg.port}")
            provision_reporting(self.reporting_pg, s.secret(pg.writer.password, "reporting.postgres.writer.password"),
                                s.secret(pg.reader.password, "reporting.postgres.reader.password"), Roles.of(pg))
        if self.kafka.start():
            say(f"started kafka on {s.kafka_bootstrap} (KRaft, -Xmx{s.kafka_heap})")
        connect = self.connect()
        names_file = connect.root / "secret-names"
        wanted = "\n".join(sorted(connect.env)) + "\n"
        if connect.running_pid() and names_file.exists() and names_file.read_text() != wanted:
            # the worker resolves ${env:...} from the environment it was started with
            say("restarting kafka connect: the estate declares secrets its environment lacks")
            connect.stop()
        if connect.start():
            say(f"started kafka connect on {s.connect_url} (-Xmx{s.connect_heap})")
        names_file.parent.mkdir(parents=True, exist_ok=True)
        names_file.write_text(wanted)

    @staticmethod
    def _check_local(s: Settings) -> None:
        """The local stack starts servers on this machine only: refuse an estate that points elsewhere."""
        local = ("127.0.0.1", "localhost", "::1")
        e = s.estate
        remote = [f"services.{svc.name}.host={svc.host}" for svc in e.services if svc.host not in local]
        if e.reporting.postgres and e.reporting.postgres.host not in local:
            remote.append(f"reporting.postgres.host={e.reporting.postgres.host}")
        remote += [f"kafka.bootstrap_servers={b}" for b in e.kafka.bootstrap_servers[:1] if b.rpartition(":")[0] not in local]
        if remote:
            raise StackError(f"{e.path}: the local stack only starts servers on this machine, but {remote[0]}; for "
                             "infrastructure you run yourself use `reporting connectors apply` and the other commands")

    def _prepare_servers_dir(self, say: Callable[[str], None]) -> None:
        """Create the servers folder outside the state folder when postgres/mysql cannot reach the latter."""
        s = self.settings
        servers = s.servers_dir
        if servers == s.state_dir:
            return
        link = s.state_dir / "servers"
        if servers.exists() and not link.is_symlink():
            # The state folder was deleted (`rm -rf .state`): its servers' data is stale (old passwords).
            left = leftover_processes(s)
            if left:
                raise StackError(f"stale servers folder {servers} still has running processes: {left[0]}")
            shutil.rmtree(servers)
        new = not servers.exists()
        servers.mkdir(parents=True, exist_ok=True)
        servers.chmod(0o755)
        if not reachable_by_others(servers):
            raise StackError(f"{servers} is not reachable by the postgres/mysql users: "
                             "set REPORTING_SERVERS_DIR to a folder they can reach")
        if not link.is_symlink():
            link.symlink_to(servers, target_is_directory=True)
        if new:
            say(f"{s.state_dir} is not reachable by the postgres/mysql OS users (a 0700 parent): "
                f"their data dirs go to {servers} (linked as {link})")

    def wipe(self) -> None:
        """Delete all state except the jars (the stack must be down)."""
        s = self.settings
        if s.servers_dir != s.state_dir and s.servers_dir.exists():
            shutil.rmtree(s.servers_dir)
        for child in s.state_dir.iterdir() if s.state_dir.exists() else []:
            if child.name != "jvm" and child != s.jvm_dir:
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()

    def down(self, say: Callable[[str], None] = print) -> None:
        connect = self.connect()
        for name, comp in [("connect", connect), ("kafka", self.kafka),
                           *[(f"mariadb:{k}", v) for k, v in self.mariadb.items()],
                           *([("postgres:reporting", self.reporting_pg)] if self.reporting_pg else []),
                           *[(f"postgres:{k}", v) for k, v in self.pg.items()]]:
            if comp.stop():
                say(f"stopped {name}")

    def status(self) -> list[Health]:
        out = []
        for svc, c in self.pg.items():
            out.append(Health(f"postgres:{svc}", c.healthy(), f"{c.host}:{c.port} data={c.data_dir}"))
        c = self.reporting_pg
        if c is not None:
            out.append(Health("postgres:reporting", c.healthy(), f"{c.host}:{c.port} data={c.data_dir}"))
        for svc, m in self.mariadb.items():
            out.append(Health(f"mariadb:{svc}", m.healthy(), f"{m.host}:{m.port} data={m.data_dir}"))
        out.append(Health("kafka", self.kafka.healthy(), f"{self.settings.kafka_bootstrap} log={self.kafka.log}"))
        conn = self.connect()
        out.append(Health("connect", conn.healthy(), f"{self.settings.connect_url} log={conn.log}"))
        return out


def leftover_processes(settings: Settings) -> list[str]:
    """Command lines of processes still running out of this state folder (for tests and `down`)."""
    import psutil

    markers = {str(settings.state_dir) + proc.os.sep, str(settings.servers_dir) + proc.os.sep}
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info.get("cmdline") or [])
        if any(m in cmd + proc.os.sep for m in markers) and p.pid != proc.os.getpid():
            found.append(f"{p.pid} {cmd[:160]}")
    return found
