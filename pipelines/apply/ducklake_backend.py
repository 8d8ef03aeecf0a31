"""DuckLake reporting backend (an option; docs/ducklake.md): catalog in a SQLite file, data in Parquet files.

Other processes read committed data while the stream writes (no file lock, no replica), and every commit is
a snapshot that can be queried as of a version or time. The SQL is the DuckDB backend's, run by the DuckLake
engine (pipelines/ducklake/engine.py: DuckDB 1.5.5 in a venv of its own, since the extension exists for no
DuckDB 2.x) through `EngineProcess`. DuckLake has no primary keys, unique constraints or sequences, so this
backend is `keyless`: the DDL leaves keys out (contract/ddl.py, apply/pipeline_schema.py), upserts are MERGEs
or UPDATE + INSERT of missing rows (apply/sql.py), and a dead letter's id is the writer's max + 1. Several
writers may commit to one catalog (DuckLake detects conflicting commits: retried as
duckdb.TransactionException), so none of the DuckDB file's single-writer shortcuts is taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from pipelines.apply.duckdb_backend import DuckDbBackend
from pipelines.contract.model import Contract
from pipelines.ducklake.client import EngineProcess, arrow_ipc


@dataclass(frozen=True)
class DuckLakeTarget:
    """Where a DuckLake lives and how to run its engine (built at the edge from the estate)."""

    catalog: Path | None  # SQLite catalog file (None: the catalog is in PostgreSQL)
    data_path: Path  # folder of the Parquet files
    python: Path  # the DuckLake venv's interpreter
    extensions: tuple[str, ...]  # extension files to LOAD, in order
    log: Path  # the engine's stderr
    inlining_rows: int | None = None  # None: DuckLake's default (10 rows)
    postgres: str | None = None  # libpq conninfo of a PostgreSQL catalog, without the password
    postgres_password: str | None = field(default=None, repr=False)  # given to the engine as PGPASSWORD

    def uri(self) -> str:
        """What follows `ducklake:` in ATTACH."""
        return f"postgres:{self.postgres}" if self.postgres else f"sqlite:{self.catalog}"

    @property
    def label(self) -> str:
        """The catalog, for messages (no password)."""
        return f"PostgreSQL catalog {self.postgres}" if self.postgres else f"catalog {self.catalog}"

    def may_exist(self) -> bool:
        """False when the SQLite catalog file is not there yet (a PostgreSQL catalog is asked when opened)."""
        return bool(self.postgres) or (self.catalog is not None and self.catalog.exists())


class DuckLakeBackend(DuckDbBackend):
    dialect = "duckdb"  # DuckDB SQL; `keyless` makes the DDL and the upserts DuckLake's
    keyless = True

    def __init__(self, target: DuckLakeTarget, read_only: bool = False, as_of: str | None = None) -> None:  # DuckDbBackend.__init__ opens a file: not called
        self.path = target.label
        self.target = target
        if as_of is not None and not read_only:
            raise ValueError("a DuckLake as of a past time can only be read")
        self.read_only = read_only
        self.before_commit_hooks = []
        self._deletes: dict[str, bool] = {}
        self._truncated: set[str] | None = None
        if not read_only:
            if target.catalog is not None:
                target.catalog.parent.mkdir(parents=True, exist_ok=True)
            target.data_path.mkdir(parents=True, exist_ok=True)
        self.engine = EngineProcess(target.python, target.log,
                                    env={"PGPASSWORD": target.postgres_password} if target.postgres_password else None)
        try:
            self.version = self.engine.call("open", {
                "catalog": target.uri(), "data_path": f"{target.data_path}/", "read_only": read_only,
                "extensions": list(target.extensions), "inlining": target.inlining_rows,
                "snapshot_time": as_of})
        except BaseException:
            self.engine.close()
            raise

    def execute(self, sql, params=None):
        self.engine.call("execute", sql, list(params) if params is not None else None)

    def query(self, sql, params=None):
        return self.engine.call("query", sql, list(params) if params is not None else None)

    def query_described(self, sql, params=None) -> tuple[list[str], list[tuple]]:
        return self.engine.call("query_described", sql, list(params) if params is not None else None)

    def stage(self, name: str, table: pa.Table) -> str:
        self.engine.call("stage", name, arrow_ipc(table))
        return name

    def unstage(self, name: str) -> None:
        self.engine.call("unstage", name)

    def begin(self):
        self.execute("BEGIN TRANSACTION")

    def commit(self):
        self.execute("COMMIT")

    def rollback(self):
        try:
            self.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - nothing open, or the engine is gone: nothing to roll back
            pass

    def close(self):
        self.engine.close()

    # several writers may share a catalog: the general statements, no cached knowledge
    def _merge_shortcuts(self, contract: Contract) -> dict[str, bool]:
        return {}

    def _dead_letter_id(self) -> tuple[str, str]:
        return "id, ", "(SELECT coalesce(max(id), 0) + 1 FROM _pipeline.dead_letters), "
