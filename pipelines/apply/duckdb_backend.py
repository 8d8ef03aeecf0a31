"""DuckDB reporting backend (embedded default): one file, one writer process at a time.

Batches are staged as Arrow tables that DuckDB scans in place; each batch is one transaction.
Operational warning: DuckDB takes an exclusive file lock, so while `reporting stream` runs no other
process can open the file, not even read-only (see docs for the BI read path).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.apply.backend import Backend


class DuckDbBackend(Backend):
    dialect = "duckdb"

    def __init__(self, path: Path | str, read_only: bool = False) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self.read_only = read_only
        self.before_commit_hooks = []
        self.conn = duckdb.connect(self.path, read_only=read_only)

    def execute(self, sql, params=None):
        self.conn.execute(sql, params) if params is not None else self.conn.execute(sql)

    def query(self, sql, params=None):
        cur = self.conn.execute(sql, params) if params is not None else self.conn.execute(sql)
        return cur.fetchall()

    def stage(self, name: str, table: pa.Table) -> str:
        self.conn.register(name, table)
        return name

    def unstage(self, name: str) -> None:
        self.conn.unregister(name)

    def begin(self):
        self.conn.execute("BEGIN TRANSACTION")

    def commit(self):
        self.conn.execute("COMMIT")

    def rollback(self):
        try:
            self.conn.execute("ROLLBACK")
        except duckdb.Error:
            pass

    def close(self):
        self.conn.close()
