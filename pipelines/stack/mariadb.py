"""The local MariaDB server for the warehouse service, with a ROW binlog for Debezium.

Runs as the `mysql` OS user with its own data dir, socket and pid file under <state>/mariadb.
Binlog settings follow Debezium's MariaDB connector requirements: binlog_format=ROW,
binlog_row_image=FULL, a server id, GTIDs (MariaDB always has them) and enough retention.
"""

from __future__ import annotations

import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipelines.stack import proc
from pipelines.stack.errors import StackError

MARIADBD = os.environ.get("REPORTING_MARIADBD", "/usr/sbin/mariadbd")


def _chown_mysql(path: Path) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam("mysql")
        os.chown(path, pw.pw_uid, pw.pw_gid)


@dataclass(frozen=True)
class MariaDbServer:
    name: str
    root: Path
    host: str
    port: int

    component = property(lambda self: f"mariadb:{self.name}")
    data_dir = property(lambda self: self.root / "data")
    socket = property(lambda self: self.root / "run" / "mysqld.sock")
    pid_file = property(lambda self: self.root / "run" / "mysqld.pid")
    log = property(lambda self: self.root / "mariadb.log")

    def initialised(self) -> bool:
        return (self.data_dir / "mysql").is_dir()

    def running_pid(self) -> int | None:
        pid = proc.read_pid(self.pid_file)
        return pid if pid and proc.pid_alive(pid) else None

    def init(self) -> None:
        if self.initialised():
            return
        if not Path(MARIADBD).exists():
            raise StackError(f"{self.component}: mariadbd not found at {MARIADBD} (apt-get install mariadb-server)")
        for d in (self.root, self.root / "run"):
            d.mkdir(parents=True, exist_ok=True)
            _chown_mysql(d)
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        proc.run(["mariadb-install-db", "--no-defaults", "--user=mysql", f"--datadir={self.data_dir}",
                  "--skip-test-db", "--auth-root-authentication-method=socket"], f"{self.component}: mariadb-install-db")

    def start(self) -> bool:
        """Start if not running; True when this call started it (retried when its port was taken
        in the meantime, see proc.retry_port_race)."""
        return proc.retry_port_race(self.log, self._start_once)

    def _start_once(self) -> bool:
        if self.running_pid():
            return False
        proc.ensure_port_free(self.component, self.host, self.port)
        cmd = [MARIADBD, "--no-defaults", "--user=mysql", f"--datadir={self.data_dir}",
               f"--port={self.port}", f"--bind-address={self.host}", f"--socket={self.socket}",
               f"--pid-file={self.pid_file}", f"--log-error={self.log}",
               "--server-id=184054", "--log-bin=mysql-bin", "--binlog-format=ROW", "--binlog-row-image=FULL",
               "--binlog-expire-logs-seconds=604800", "--innodb-buffer-pool-size=256M",
               "--innodb-flush-log-at-trx-commit=2", "--character-set-server=utf8mb4",
               "--collation-server=utf8mb4_unicode_ci", "--max-connections=200", "--skip-name-resolve"]
        self.log.touch()
        _chown_mysql(self.log)
        runner = proc.spawn(cmd, self.root / "mariadbd.stdout", self.root / "launcher.pid")
        proc.wait_until(self.component, lambda: self.running_pid() is not None and proc.port_open(self.host, self.port),
                        timeout=60, log=self.log, alive=lambda: proc.pid_alive(runner))
        return True

    def stop(self) -> bool:
        pid = self.running_pid()
        if not pid:
            (self.root / "launcher.pid").unlink(missing_ok=True)
            return False
        proc.stop_pid(self.pid_file, self.component, timeout=60)
        (self.root / "launcher.pid").unlink(missing_ok=True)
        return True

    def sql(self, statement: str) -> str:
        return proc.run(["mariadb", "--no-defaults", f"--socket={self.socket}", "-u", "root", "-N", "-B"],
                        f"{self.component}: mariadb", input=statement)

    def healthy(self) -> bool:
        return self.running_pid() is not None and proc.port_open(self.host, self.port)


def _lit(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def provision_service(server: MariaDbServer, database: str, app_user: str, app_password: str,
                      cdc_user: str, cdc_password: str) -> None:
    """Idempotently create the service database, its app user and the CDC user with binlog privileges."""
    server.sql(f"""
CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS '{app_user}'@'%' IDENTIFIED BY {_lit(app_password)};
ALTER USER '{app_user}'@'%' IDENTIFIED BY {_lit(app_password)};
GRANT ALL PRIVILEGES ON `{database}`.* TO '{app_user}'@'%';
CREATE USER IF NOT EXISTS '{cdc_user}'@'%' IDENTIFIED BY {_lit(cdc_password)};
ALTER USER '{cdc_user}'@'%' IDENTIFIED BY {_lit(cdc_password)};
GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, BINLOG MONITOR, LOCK TABLES ON *.* TO '{cdc_user}'@'%';
FLUSH PRIVILEGES;
""")
