"""Throw-away real databases for integration tests, started with the product's own stack code."""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import socket
import tempfile
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
