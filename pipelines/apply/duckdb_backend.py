"""DuckDB reporting backend (embedded default): one file, one writer process at a time.

Batches are staged as Arrow tables that DuckDB scans in place; each batch is one transaction.
Operational warning: DuckDB takes an exclusive file lock, so while `reporting stream` runs no other
process can open the file, not even read-only (see docs for the BI read path).

Writer settings (measured: docs/benchmarks.md §6):
- DuckDB skips the WAL and checkpoints inside COMMIT when a transaction's estimated WAL write is over
  `auto_checkpoint_skip_wal_threshold` (default 100,000). An apply batch of ~1,000 changes is over it,
  and a checkpoint rewrites every row group the batch touched, so each commit cost grew with the
  tables (0.4-0.6 s at 200k rows per table). The writer raises that threshold: commits append to the
  WAL, and a checkpoint runs when the WAL reaches `checkpoint_threshold` (estate `reporting.duckdb.checkpoint`,
  default 64MB; a crash replays at most that much WAL on the next open; larger WALs also hold more
  un-checkpointed updates in memory: 256MB cost ~50 MB more RSS for no measured gain).
- `memory_limit` (estate `reporting.duckdb.memory_limit`, default 160MB) bounds DuckDB's buffer pool, which
  otherwise defaults to 80 % of RAM and kept the contract tables resident (the pipeline's RSS goal
  is 400 MB); pages beyond it are read back from the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.apply.backend import Backend

_SIZE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|KiB|MiB|GiB)$", re.IGNORECASE)


def _size(key: str, value: str) -> str:
    value = value.strip()
    if not _SIZE.match(value):
        raise ValueError(f"reporting.duckdb.{key}={value!r}: expected a size such as 256MB or 1GB")
    return value


def writer_settings(tuning=None) -> list[str]:
    """SET statements for the writer's connection from the estate's `reporting.duckdb` (defaults:
    checkpoint 64MB, memory_limit 160MB, threads 2); sizes validated before they reach SQL."""
    checkpoint = getattr(tuning, "checkpoint", "64MB")
    memory = getattr(tuning, "memory_limit", "160MB")
    threads = int(getattr(tuning, "threads", 2))
    return ["SET auto_checkpoint_skip_wal_threshold = 1000000000000",
            f"SET checkpoint_threshold = '{_size('checkpoint', checkpoint)}'",
            f"SET memory_limit = '{_size('memory_limit', memory)}'",
            f"SET threads = {threads}"]


class DuckDbBackend(Backend):
    dialect = "duckdb"

    def __init__(self, path: Path | str, read_only: bool = False, tuning=None) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self.read_only = read_only
        self.before_commit_hooks = []
        self.conn = duckdb.connect(self.path, read_only=read_only)
        if not read_only:
            for stmt in writer_settings(tuning):
                self.conn.execute(stmt)

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
