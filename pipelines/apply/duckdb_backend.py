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
from pipelines.apply.pipeline_schema import SCHEMA as PIPELINE_SCHEMA
from pipelines.apply.pipeline_schema import deleted_keys_table
from pipelines.contract.ddl import quote_ident
from pipelines.contract.model import Contract

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
        self._deletes: dict[str, bool] = {}  # physical name -> `_pipeline.<table>__deleted` holds rows
        self._truncated: set[str] | None = None  # tables a source truncate was applied to
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

    # -- shortcuts of the only writer ---------------------------------------------------------------
    # DuckDB's file lock makes this connection the file's only writer while it is open, so what it read
    # once (and what it wrote since) is what the tables hold. Each statement's fixed cost is what a
    # streaming batch pays (docs/benchmarks.md §8): the MERGE skips the deleted-keys join and the truncate
    # subquery while they could drop nothing, and status and offsets are UPDATEs (an INSERT ... ON
    # CONFLICT costs ~3.5 ms of planning, an UPDATE ~1-2 ms), inserting only rows not there yet.
    def _merge_shortcuts(self, contract: Contract) -> dict[str, bool]:
        name = contract.physical_name
        if name not in self._deletes:
            table = f"{PIPELINE_SCHEMA}.{quote_ident(deleted_keys_table(contract))}"
            self._deletes[name] = bool(self.query(f"SELECT EXISTS (SELECT 1 FROM {table})")[0][0])
        if self._truncated is None:
            self._truncated = {r[0] for r in self.query(f"SELECT DISTINCT physical_name FROM {PIPELINE_SCHEMA}.truncates")}
        return {"deletes_stored": self._deletes[name], "truncated": name in self._truncated}

    def _noted_deletes(self, contract: Contract) -> None:
        self._deletes[contract.physical_name] = True  # kept on rollback too: True is always safe

    def _noted_truncate(self, contract: Contract) -> None:
        if self._truncated is None:
            self._truncated = set()
        self._truncated.add(contract.physical_name)

    def _only_missing(self, exists_sql: str) -> str:
        """The tail of an INSERT ... SELECT that inserts only rows not stored yet (`exists_sql` finds one)."""
        return f" WHERE NOT EXISTS ({exists_sql})" if self.keyless else " ON CONFLICT DO NOTHING"

    def _write_status(self, status: list[tuple]) -> None:
        values = ", ".join(["(?, CAST(? AS TIMESTAMPTZ), CAST(? AS BIGINT))"] * len(status))
        params = [v for row in status for v in row]
        updated = self.query(
            "UPDATE _pipeline.table_status AS t SET newest_source_ts = GREATEST(t.newest_source_ts, v.ts), "
            f"last_applied_at = now(), rows_applied = t.rows_applied + v.n FROM (VALUES {values}) AS v(name, ts, n) "
            "WHERE t.physical_name = v.name", params)[0][0]
        if updated < len(status):  # a table's first batch: insert it (the updated ones are left alone)
            self.execute(
                "INSERT INTO _pipeline.table_status (physical_name, newest_source_ts, last_applied_at, rows_applied) "
                f"SELECT name, ts, now(), n FROM (VALUES {values}) AS v(name, ts, n)"
                + self._only_missing("SELECT 1 FROM _pipeline.table_status t WHERE t.physical_name = v.name"), params)

    def _write_offsets(self, group: str, offsets: list[tuple[tuple[str, int], int]]) -> None:
        values = ", ".join(["(?, CAST(? AS INTEGER), CAST(? AS BIGINT))"] * len(offsets))
        params = [v for (topic, part), nxt in offsets for v in (topic, part, nxt)]
        updated = self.query(
            f"UPDATE _pipeline.offsets AS o SET next_offset = v.n, updated_at = now() FROM (VALUES {values}) "
            "AS v(topic, part, n) WHERE o.consumer_group = ? AND o.topic = v.topic AND o.kafka_partition = v.part",
            [*params, group])[0][0]
        if updated < len(offsets):  # a partition's first batch
            self.execute(
                "INSERT INTO _pipeline.offsets (consumer_group, topic, kafka_partition, next_offset, updated_at) "
                f"SELECT ?, topic, part, n, now() FROM (VALUES {values}) AS v(topic, part, n)"
                + self._only_missing("SELECT 1 FROM _pipeline.offsets o WHERE o.consumer_group = ? AND o.topic = v.topic "
                                     "AND o.kafka_partition = v.part"),
                [group, *params, *([group] if self.keyless else [])])
