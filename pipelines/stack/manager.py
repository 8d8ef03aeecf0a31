"""`reporting stack up | down | status`: the whole local stack, started and stopped in order.

up:   install what is missing → PostgreSQL clusters (one per service + the reporting backend)
      → MariaDB → Kafka (KRaft) → Kafka Connect → service databases and roles provisioned.
down: stops, in reverse order, only what has a pid file in the state folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipelines.settings import MARIADB_SERVICES, PG_SERVICES, Settings
from pipelines.stack import install, proc
from pipelines.stack import secrets as secrets_mod
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
        self.pg = {svc: PgCluster(svc, s.state_dir / "pg" / svc, s.host, s.ports[svc]) for svc in PG_SERVICES}
        self.reporting_pg = PgCluster("reporting", s.state_dir / "pg" / "reporting", s.host,
                                      s.ports["reporting_pg"], logical=False)
        self.mariadb = {svc: MariaDbServer(svc, s.state_dir / "mariadb" / svc, s.host, s.ports[svc])
                        for svc in MARIADB_SERVICES}
        self.kafka = KafkaBroker(s)

    def secrets(self, create: bool = False) -> dict[str, str]:
        return secrets_mod.load(self.settings, create=create)

    def connect(self) -> ConnectWorker:
        return ConnectWorker(self.settings, secrets_mod.service_env(self.settings, self.secrets()))

    def up(self, say: Callable[[str], None] = print) -> None:
        s = self.settings
        s.state_dir.mkdir(parents=True, exist_ok=True)
        s.state_dir.chmod(0o755)
        install.ensure_debian_packages(say)
        install.ensure_jvm_artifacts(s, say)
        java_bin()  # fail early, with one line, when Java is missing
        sec = self.secrets(create=True)
        for svc, cluster in self.pg.items():
            cluster.init()
            if cluster.start():
                say(f"started postgres:{svc} on {s.host}:{cluster.port}")
            provision_pg(cluster, svc, sec[f"REPORTING_{svc.upper()}_APP_PASSWORD"],
                         sec[f"REPORTING_{svc.upper()}_CDC_PASSWORD"])
        self.reporting_pg.init()
        if self.reporting_pg.start():
            say(f"started postgres:reporting on {s.host}:{self.reporting_pg.port}")
        provision_reporting(self.reporting_pg, sec["REPORTING_PG_PASSWORD"], sec["REPORTING_PG_BI_PASSWORD"])
        for svc, server in self.mariadb.items():
            server.init()
            if server.start():
                say(f"started mariadb:{svc} on {s.host}:{server.port}")
            provision_mariadb(server, svc, sec[f"REPORTING_{svc.upper()}_APP_PASSWORD"],
                              sec[f"REPORTING_{svc.upper()}_CDC_PASSWORD"])
        if self.kafka.start():
            say(f"started kafka on {s.kafka_bootstrap} (KRaft, -Xmx{s.kafka_heap})")
        if self.connect().start():
            say(f"started kafka connect on {s.connect_url} (-Xmx{s.connect_heap})")

    def down(self, say: Callable[[str], None] = print) -> None:
        connect = self.connect()
        for name, comp in [("connect", connect), ("kafka", self.kafka),
                           *[(f"mariadb:{k}", v) for k, v in self.mariadb.items()],
                           ("postgres:reporting", self.reporting_pg),
                           *[(f"postgres:{k}", v) for k, v in self.pg.items()]]:
            if comp.stop():
                say(f"stopped {name}")

    def status(self) -> list[Health]:
        out = []
        for svc, c in self.pg.items():
            out.append(Health(f"postgres:{svc}", c.healthy(), f"{c.host}:{c.port} data={c.data_dir}"))
        c = self.reporting_pg
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

    marker = str(settings.state_dir) + proc.os.sep
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info.get("cmdline") or [])
        if marker in cmd + proc.os.sep and p.pid != proc.os.getpid():
            found.append(f"{p.pid} {cmd[:160]}")
    return found
