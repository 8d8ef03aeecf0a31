"""Throw-away real databases for integration tests, started with the product's own stack code."""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from pipelines.stack.postgres import PgCluster


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def temp_postgres(name: str = "test") -> Iterator[tuple[PgCluster, str]]:
    """A fresh PostgreSQL 15 cluster on a free loopback port; yields (cluster, superuser conninfo over the socket)."""
    root = Path(tempfile.mkdtemp(prefix=f"pg-{name}-"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    cluster = PgCluster(name, root / "cluster", "127.0.0.1", free_port(), logical=False)
    cluster.init()
    cluster.start()
    password = secrets.token_urlsafe(12)
    cluster.psql(f"ALTER ROLE postgres PASSWORD '{password}'")
    try:
        yield cluster, f"host=127.0.0.1 port={cluster.port} user=postgres password={password} dbname=postgres"
    finally:
        cluster.stop()
        import shutil

        shutil.rmtree(root, ignore_errors=True)


SHARED_DUCKLAKE_VENV = Path(__file__).resolve().parents[2] / ".state" / "ducklake-venv"
"""The tests share one DuckLake engine venv (installed on first use, like the Superset venv)."""


def ducklake_target(folder: Path, postgres: str | None = None):
    """A fresh DuckLake (SQLite catalog and data folder under `folder`) run by the shared engine venv;
    `postgres`: a libpq conninfo to keep the catalog in that PostgreSQL database instead."""
    from pipelines import toolvenv
    from pipelines.apply.ducklake_backend import DuckLakeTarget
    from pipelines.ducklake.venv import LOCK_FILE, extension_files

    venv = toolvenv.ensure_tool_venv(SHARED_DUCKLAKE_VENV, LOCK_FILE, folder / "ducklake-install.log", "ducklake",
                                     say=lambda _m: None, required="duckdb")
    conninfo = " ".join(part for part in (postgres or "").split() if not part.startswith("password=")) or None
    password = next((part.partition("=")[2] for part in (postgres or "").split() if part.startswith("password=")), None)
    return DuckLakeTarget(catalog=None if postgres else folder / "lake" / "catalog.sqlite",
                          data_path=folder / "lake" / "data", python=venv / "bin" / "python",
                          extensions=tuple(extension_files(venv, postgres=postgres is not None)),
                          log=folder / "ducklake-engine.log", postgres=conninfo, postgres_password=password)


class LakeWriter(threading.Thread):
    """A second writer of a DuckLake, as the stream is: its own engine process applies `batches` one after another
    (until `stop` is set), each retried on a transient error like the stream retries a batch a concurrent commit
    refused (pipelines/apply/retry.py). `retried` keeps each retry's error line; `error` what ended it early."""

    def __init__(self, target, parts, batches, group: str = "g", attempts: int = 12, max_wait_s: float = 2.0,
                 pause_s: float = 0.05, ensure_schema: bool = False) -> None:
        super().__init__(daemon=True)
        self.target, self.parts, self.batches, self.group = target, parts, batches, group
        self.attempts, self.max_wait_s, self.pause_s, self.ensure_schema = attempts, max_wait_s, pause_s, ensure_schema
        self.retried: list[str] = []
        self.applied = 0
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        from pipelines.apply.ducklake_backend import DuckLakeBackend
        from pipelines.apply.retry import retrying

        lake = DuckLakeBackend(self.target)
        try:
            if self.ensure_schema:
                lake.ensure_schema(list(self.parts.contracts.values()))
            for batch in self.batches:
                if self.stop.is_set():
                    break
                retrying(self.attempts, max_wait_s=self.max_wait_s, on_retry=lambda exc, _n, _d: self.retried.append(
                    f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"))(lake.apply, self.group,
                                                                               self.parts.plan(batch))
                self.applied += 1
                time.sleep(self.pause_s)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            lake.close()
