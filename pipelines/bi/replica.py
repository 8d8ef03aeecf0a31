"""The DuckDB read replica: how BI reads DuckDB reporting data while the stream writes it.

A DuckDB file held by a read-write connection cannot be opened by any other process, not even
read-only (measured, see docs/bi.md: `IO Error: Could not set lock on file ...: Conflicting lock is
held in ... (PID n)`). So the stream, which holds the file, publishes a copy of the BI-facing schemas
(`reporting`, `staging`, `marts`; never `_pipeline`) every `every_s` seconds:

1. ATTACH a new temporary file next to the replica and, inside ONE transaction on a cursor of the
   writer's connection, re-create every table (same columns, types and NOT NULL; no key indexes)
   of those schemas from the writer's data, then their views. Every table of the replica therefore
   comes from one snapshot of the main file.
2. CHECKPOINT and DETACH the temporary file (no WAL is left beside it).
3. os.replace() it over the replica path: atomic; readers that have the old file open keep reading
   their inode until they reconnect, new readers get the new file.

The replica keeps the main file's name in its own folder (`<dir>/replica/reportingdb.duckdb` for
`<dir>/reportingdb.duckdb`): DuckDB names the catalog after the file stem, so queries and views
that name the catalog (`reportingdb.marts.fct_orders`) work on both.
Each replica carries `_replica.info` (published_at, source_path, tables, rows) for staleness checks.

Staleness bound: data committed in the main file is in the replica after at most
`every_s` + one batch + one publish (the publisher runs between batches, see `ReplicaPublisher`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.settings import Settings

log = logging.getLogger(__name__)

REPLICA_SCHEMAS = ("reporting", "staging", "marts")
INFO_SCHEMA = "_replica"
DEFAULT_EVERY_S = 10.0


@dataclass(frozen=True)
class ReplicaInfo:
    """What one publication wrote."""

    path: Path
    published_at: dt.datetime
    tables: int
    views: int
    rows: int
    seconds: float
    size_bytes: int

    def line(self) -> str:
        return (f"replica {self.path}: {self.tables} tables, {self.views} views, {self.rows:,} rows, "
                f"{self.size_bytes / 1e6:.1f} MB in {self.seconds:.2f}s")


def replica_path(settings: Settings) -> Path:
    """Where the replica of `settings.duckdb_path` lives: same file name as the main file, in a
    `replica/` folder beside it, so the catalog name matches."""
    return settings.duckdb_path.parent / "replica" / settings.duckdb_path.name


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _copy_tables(cur: duckdb.DuckDBPyConnection, source: str, target: str, schemas: Sequence[str],
                 source_path: str) -> tuple[int, list[tuple[str, str, str]], int]:
    """Inside the caller's transaction: every table (columns, types, NOT NULL; then rows) and `_replica.info`.

    Primary keys are not re-created: their indexes cost more than the data (3M rows: 84 MB and 4 s
    with keys, 3.4 MB and 2 s without) and a copy of unique data stays unique.
    Returns (tables, the views to re-create afterwards, rows).
    """
    marks = ", ".join("?" for _ in schemas)
    columns = cur.execute(
        "SELECT c.schema_name, c.table_name, c.column_name, c.data_type, c.is_nullable FROM duckdb_columns() c "
        "JOIN duckdb_tables() t ON t.database_name = c.database_name AND t.schema_name = c.schema_name "
        f"AND t.table_name = c.table_name WHERE c.database_name = ? AND c.schema_name IN ({marks}) "
        "ORDER BY c.schema_name, c.table_name, c.column_index", [source, *schemas]).fetchall()
    tables: dict[tuple[str, str], list[str]] = {}
    for schema, table, column, data_type, nullable in columns:
        tables.setdefault((schema, table), []).append(
            f"{_ident(column)} {data_type}{'' if nullable else ' NOT NULL'}")
    views = cur.execute(
        f"SELECT schema_name, view_name, sql FROM duckdb_views() WHERE database_name = ? AND NOT internal"
        f" AND schema_name IN ({marks}) ORDER BY schema_name, view_name", [source, *schemas]).fetchall()
    present = {r[0] for r in cur.execute("SELECT schema_name FROM duckdb_schemas() WHERE database_name = ?",
                                         [source]).fetchall()}
    cur.execute(f"USE {_ident(target)}")
    for schema in schemas:
        if schema in present:
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
    rows = 0
    for (schema, table), column_sql in tables.items():
        name = f"{_ident(schema)}.{_ident(table)}"
        cur.execute(f"CREATE TABLE {name} ({', '.join(column_sql)})")
        cur.execute(f"INSERT INTO {name} SELECT * FROM {_ident(source)}.{name}")
        rows += cur.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
    cur.execute(f"CREATE SCHEMA {INFO_SCHEMA}")
    cur.execute(f"CREATE TABLE {INFO_SCHEMA}.info AS SELECT now() AS published_at, ?::VARCHAR AS source_path, "
                "?::INTEGER AS tables, ?::BIGINT AS rows", [source_path, len(tables), rows])
    return len(tables), views, rows


def _copy_views(cur: duckdb.DuckDBPyConnection, views: list[tuple[str, str, str]]) -> None:
    """Re-create views (no data, so outside the snapshot transaction), dependencies first.

    A failed statement aborts a DuckDB transaction, so each view is its own (auto-commit) statement
    and views over views are retried until no more can be created.
    """
    pending = list(views)
    while pending:
        failed = []
        for view in pending:
            try:
                cur.execute(view[2])
            except duckdb.CatalogException:
                failed.append(view)
        if len(failed) == len(pending):
            names = ", ".join(f"{s}.{v}" for s, v, _ in failed)
            raise RuntimeError(f"replica: cannot re-create view(s) {names}")
        pending = failed


def publish_replica(conn: duckdb.DuckDBPyConnection, target_path: Path | str,
                    schemas: Sequence[str] = REPLICA_SCHEMAS) -> ReplicaInfo:
    """Copy `schemas` of `conn`'s current database into a new file and swap it atomically over `target_path`.

    `conn` is the writer's connection (the stream's), outside a transaction (between batches). The
    copy runs on a cursor of it in its own transaction, so it sees one committed snapshot and leaves
    the writer's session state alone. Cost grows with the data size (measured: docs/bi.md).
    Raises on failure; the previous replica then stays in place and no temporary file is left.
    """
    target = Path(target_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:12]
    tmp = target.with_name(f".{target.stem}.{token}.tmp{target.suffix}")
    alias = f"_replica_{token}"
    started = time.perf_counter()
    source = conn.execute("SELECT current_database()").fetchone()[0]  # a cursor starts on the default catalog
    cur = conn.cursor()
    try:
        source_path = cur.execute("SELECT coalesce(path, '') FROM duckdb_databases() WHERE database_name = ?",
                                  [source]).fetchone()[0]
        cur.execute(f"ATTACH {_lit(str(tmp))} AS {_ident(alias)}")
        try:
            cur.execute("BEGIN TRANSACTION")
            try:
                tables, views, rows = _copy_tables(cur, source, alias, schemas, source_path)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                cur.execute(f"USE {_ident(source)}")
                raise
            try:
                _copy_views(cur, views)
            finally:
                cur.execute(f"USE {_ident(source)}")
            cur.execute(f"CHECKPOINT {_ident(alias)}")
        finally:
            cur.execute(f"DETACH {_ident(alias)}")
        os.replace(tmp, target)
    except BaseException:
        for leftover in (tmp, Path(f"{tmp}.wal")):
            leftover.unlink(missing_ok=True)
        raise
    finally:
        cur.close()
    info = ReplicaInfo(path=target, published_at=dt.datetime.now(dt.UTC), tables=tables, views=len(views), rows=rows,
                       seconds=time.perf_counter() - started, size_bytes=target.stat().st_size)
    log.info("%s", info.line())
    return info


def publish_from_file(main_path: Path | str, target_path: Path | str) -> ReplicaInfo:
    """Publish the replica from the main file when no stream holds it (e.g. right after `dbt build`).

    Opens the main file read-only (fails with DuckDB's lock error when a writer holds it).
    """
    main = Path(main_path)
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {_lit(str(main))} AS {_ident(main.stem)} (READ_ONLY)")
        con.execute(f"USE {_ident(main.stem)}")
        return publish_replica(con, target_path)
    finally:
        con.close()


class ReplicaPublisher:
    """Publishes the replica at most every `every_s` seconds, when the data changed.

    The stream calls `maybe_publish(conn)` after each applied batch and on idle polls, and
    `close(conn)` when it stops (a last publication, so the replica ends current). A failed
    publication is logged and retried at the next due time; it never stops the stream.
    """

    def __init__(self, target_path: Path | str, every_s: float = DEFAULT_EVERY_S, background: bool = False) -> None:
        self.target_path = Path(target_path)
        self.every_s = every_s
        self.background = background
        self.last: ReplicaInfo | None = None
        self._last_at = float("-inf")
        self._last_fingerprint: object = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: Settings, every_s: float | None = None) -> ReplicaPublisher | None:
        """The publisher for a DuckDB stream, or None (PostgreSQL backend, or an interval of 0).

        The interval is `every_s` (e.g. `reporting stream --replica-every`), else the estate's
        pipeline.replica_every_s (default 10 seconds).
        """
        every = every_s if every_s is not None else settings.estate.pipeline.replica_every_s
        if settings.backend != "duckdb" or every <= 0:
            return None
        return cls(replica_path(settings), every, background=True)

    @staticmethod
    def _fingerprint(conn: duckdb.DuckDBPyConnection) -> object:
        """Changes whenever a batch was applied (its offsets move in the same transaction)."""
        cur = conn.cursor()
        try:
            return cur.execute("SELECT count(*), coalesce(sum(next_offset), 0), max(updated_at) "
                               "FROM _pipeline.offsets").fetchone()
        except duckdb.Error:
            return None  # no pipeline bookkeeping in this file: publish whenever due
        finally:
            cur.close()

    def maybe_publish(self, conn: duckdb.DuckDBPyConnection, force: bool = False) -> ReplicaInfo | None:
        """Publish when due (or `force`) and the data changed since the last publication.

        With `background`, the copy runs on its own thread and cursor (DuckDB executes it without
        the GIL, in its own read transaction), so the stream keeps applying batches meanwhile; a
        publication still running when the next one is due is not doubled. Returns the info of a
        publication made in this call (never in background mode).
        """
        now = time.monotonic()
        if not force and now - self._last_at < self.every_s:
            return None
        if self._thread is not None:
            if self._thread.is_alive() and not force:
                return None
            self._thread.join()
            self._thread = None
        fingerprint = self._fingerprint(conn)
        unchanged = fingerprint is not None and fingerprint == self._last_fingerprint
        if unchanged and self.target_path.exists():
            self._last_at = now
            return None
        self._last_at = now
        if self.background and not force:
            cursor = conn.cursor()  # created here, between batches; used only by the publishing thread
            self._thread = threading.Thread(target=self._publish, args=(cursor, fingerprint, True),
                                            name="replica-publisher", daemon=True)
            self._thread.start()
            return None
        return self._publish(conn, fingerprint, False)

    def _publish(self, conn: duckdb.DuckDBPyConnection, fingerprint: object, own_cursor: bool) -> ReplicaInfo | None:
        try:
            info = publish_replica(conn, self.target_path)
        except Exception as exc:  # noqa: BLE001 - BI staleness must not stop the stream
            log.warning("publishing the DuckDB read replica failed (retrying in %.0fs): %s", self.every_s, exc)
            return None
        finally:
            if own_cursor:
                conn.close()
        self._last_fingerprint = fingerprint
        self.last = info
        return info

    def close(self, conn: duckdb.DuckDBPyConnection) -> ReplicaInfo | None:
        """Last publication when the stream stops (waits for one still running first)."""
        return self.maybe_publish(conn, force=True)
