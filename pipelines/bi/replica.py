"""The DuckDB read replicas: how BI and the operator commands read DuckDB reporting data while the stream writes it.

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

The pipeline's own schema `_pipeline` (offsets, batches, table_status, dead letters) goes into a SECOND
file beside it, `<dir>/replica/<stem>_pipeline.duckdb`, published with the BI replica, mode 0600, that
only the operator commands read (`reporting status`, `dlq list`, `reconcile`, `contract status`, through
pipelines/bi/reader.py). Not in the BI file because `_pipeline` is never for BI: on PostgreSQL `bi_reader`
cannot see it, and on DuckDB a file is readable as a whole or not at all, so a separate file (and its
permissions) is the only way to keep that line. It leaves out what the operator commands never read and
what could make every publication expensive: the `<table>__deleted` key tables, the raw record key and
value of dead letters (`dlq replay` needs the main file), and batches older than an hour.

Staleness bound: data committed in the main file is in the replica after at most
`every_s` + one batch + one publish (`every_s` stretched so that publishing takes at most `max_share` of
the time when the data has grown large, see `spacing`): the publisher runs after every batch AND on the
worker's idle polls, so the last batch of a burst is published once `every_s` have passed since the previous publication,
without waiting for new traffic (see `ReplicaPublisher`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines.settings import Settings

log = logging.getLogger(__name__)

REPLICA_SCHEMAS = ("reporting", "staging", "marts")
PIPELINE_SCHEMA = "_pipeline"
INFO_SCHEMA = "_replica"
DEFAULT_EVERY_S = 10.0
DEFAULT_MAX_SHARE = 0.05


def spacing(every_s: float, last_seconds: float | None, max_share: float) -> float:
    """Seconds from one publication's start to the next: `every_s`, stretched so that publishing takes at
    most `max_share` of the time (a publication copies the whole data, so its time grows with the data,
    not with the traffic: a 3M-row file takes ~2 s, docs/bi.md). `last_seconds`: the last publication's."""
    if not last_seconds or max_share <= 0:
        return every_s
    return max(every_s, last_seconds / max_share)


@dataclass(frozen=True)
class Selection:
    """What of the selected schemas a publication copies: tables skipped by name suffix, columns left
    out per (schema, table), and a row filter per (schema, table) (SQL evaluated in the snapshot)."""

    skip_suffixes: tuple[str, ...] = ()
    omit: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    where: Mapping[tuple[str, str], str] = field(default_factory=dict)


PIPELINE_SELECTION = Selection(
    skip_suffixes=("__deleted",),  # delete positions per key: large, read by the apply step only
    omit={(PIPELINE_SCHEMA, "dead_letters"): frozenset({"record_key", "record_value"})},  # raw records
    where={(PIPELINE_SCHEMA, "batches"): "applied_at > now() - INTERVAL 1 HOUR"},  # status reads one minute
)
"""What the operator replica holds of `_pipeline` (see the module docstring)."""


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


def pipeline_replica_path(replica: Path | str | Settings) -> Path:
    """Where the `_pipeline` replica beside a BI replica (or of `settings`) lives:
    `<dir>/replica/<stem>_pipeline<suffix>`, e.g. `.state/replica/reportingdb_pipeline.duckdb`."""
    target = replica_path(replica) if isinstance(replica, Settings) else Path(replica)
    return target.with_name(f"{target.stem}_pipeline{target.suffix}")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _copy_tables(cur: duckdb.DuckDBPyConnection, source: str, target: str, schemas: Sequence[str],
                 source_path: str, selection: Selection | None = None) -> tuple[int, list[tuple[str, str, str]], int]:
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
    selection = selection or Selection()
    tables: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, column, data_type, nullable in columns:
        if table.endswith(selection.skip_suffixes) or column in selection.omit.get((schema, table), ()):
            continue
        tables.setdefault((schema, table), []).append(
            (_ident(column), f"{_ident(column)} {data_type}{'' if nullable else ' NOT NULL'}"))
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
        names = ", ".join(n for n, _ in column_sql)
        where = selection.where.get((schema, table))
        cur.execute(f"CREATE TABLE {name} ({', '.join(d for _, d in column_sql)})")
        cur.execute(f"INSERT INTO {name} ({names}) SELECT {names} FROM {_ident(source)}.{name}"
                    + (f" WHERE {where}" if where else ""))
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
                    schemas: Sequence[str] = REPLICA_SCHEMAS, selection: Selection | None = None,
                    private: bool = False) -> ReplicaInfo:
    """Copy `schemas` of `conn`'s current database into a new file and swap it atomically over `target_path`.

    `conn` is the writer's connection (the stream's), outside a transaction (between batches). The
    copy runs on a cursor of it in its own transaction, so it sees one committed snapshot and leaves
    the writer's session state alone. Cost grows with the data size (measured: docs/bi.md).
    `selection`: tables, columns and rows left out (default: everything). `private`: the file is
    written in a folder only this user can enter and published with mode 0600 (the `_pipeline` replica).
    Raises on failure; the previous replica then stays in place and no temporary file is left.
    """
    target = Path(target_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:12]
    private_dir = Path(tempfile.mkdtemp(prefix=f".{target.stem}.{token}.", dir=target.parent)) if private else None
    tmp = (private_dir or target.parent) / f".{target.stem}.{token}.tmp{target.suffix}"
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
                tables, views, rows = _copy_tables(cur, source, alias, schemas, source_path, selection)
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
        if private:
            tmp.chmod(0o600)
        os.replace(tmp, target)
    except BaseException:
        for leftover in (tmp, Path(f"{tmp}.wal")):
            leftover.unlink(missing_ok=True)
        raise
    finally:
        cur.close()
        if private_dir is not None:
            shutil.rmtree(private_dir, ignore_errors=True)
    info = ReplicaInfo(path=target, published_at=dt.datetime.now(dt.UTC), tables=tables, views=len(views), rows=rows,
                       seconds=time.perf_counter() - started, size_bytes=target.stat().st_size)
    log.info("%s", info.line())
    return info


def publish_pipeline_replica(conn: duckdb.DuckDBPyConnection, target_path: Path | str) -> ReplicaInfo:
    """Publish `_pipeline` (as PIPELINE_SELECTION says) into the operator replica `target_path`, mode 0600."""
    return publish_replica(conn, target_path, (PIPELINE_SCHEMA,), PIPELINE_SELECTION, private=True)


def publish_from_file(main_path: Path | str, target_path: Path | str, pipeline: bool = True) -> ReplicaInfo:
    """Publish the replica from the main file when no stream holds it (e.g. right after `dbt build`),
    and with `pipeline` the `_pipeline` replica beside it (pipeline_replica_path).

    Opens the main file read-only (fails with DuckDB's lock error when a writer holds it).
    """
    main = Path(main_path)
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {_lit(str(main))} AS {_ident(main.stem)} (READ_ONLY)")
        con.execute(f"USE {_ident(main.stem)}")
        if pipeline:
            publish_pipeline_replica(con, pipeline_replica_path(target_path))
        return publish_replica(con, target_path)
    finally:
        con.close()


_BESIDE = object()  # ReplicaPublisher's default: the `_pipeline` replica beside the BI replica


class ReplicaPublisher:
    """Publishes the replica (and the `_pipeline` replica beside it) at most every `every_s` seconds,
    when the data changed.

    The stream calls `maybe_publish(conn)` after each applied batch AND on idle polls (`hook`), and
    `close(conn)` when it stops (a last publication, so the replica ends current). The idle calls are
    what publish the end of a burst: a batch applied less than `every_s` after the previous publication
    is not published then, but by the first idle poll once `every_s` have passed, without waiting for
    more traffic. `every_s` is therefore the minimum spacing of publications, and the staleness bound; after
    a publication that took more than `max_share` × `every_s` the spacing is its time / `max_share`.
    A failed publication is logged and retried at the next due time; it never stops the stream.

    `pipeline_path`: where `_pipeline` goes (default pipeline_replica_path(target_path); None = not
    published). `clock`: monotonic seconds (tests pass a fake one).
    """

    def __init__(self, target_path: Path | str, every_s: float = DEFAULT_EVERY_S, background: bool = False,
                 pipeline_path: Path | str | None | object = _BESIDE, clock: Callable[[], float] = time.monotonic,
                 max_share: float = DEFAULT_MAX_SHARE) -> None:
        self.target_path = Path(target_path)
        self.pipeline_path = (pipeline_replica_path(self.target_path) if pipeline_path is _BESIDE
                              else None if pipeline_path is None else Path(pipeline_path))  # type: ignore[arg-type]
        self.every_s = every_s
        self.max_share = max_share
        self.spacing_s = every_s  # every_s, stretched after a slow publication (see `spacing`)
        self.background = background
        self.last: ReplicaInfo | None = None
        self.last_pipeline: ReplicaInfo | None = None
        self.publications = 0
        self.cpu_s = 0.0  # CPU seconds of the publishing thread(s) so far (DuckDB's worker threads not counted)
        self._clock = clock
        self._published_at = float("-inf")  # last publication started (clock): the minimum spacing
        self._checked_at = float("-inf")  # last look at the fingerprint
        self._applied = False  # a batch was applied since that look
        self._last_fingerprint: object = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # the applier thread (after a batch) and the polling thread (idle)

    @classmethod
    def from_settings(cls, settings: Settings, every_s: float | None = None) -> ReplicaPublisher | None:
        """The publisher for a DuckDB stream, or None (PostgreSQL backend, or an interval of 0).

        The interval is `every_s` (e.g. `reporting stream --replica-every`), else the estate's
        pipeline.replica_every_s (default 10 seconds).
        """
        every = every_s if every_s is not None else settings.estate.pipeline.replica_every_s
        if settings.backend != "duckdb" or every <= 0:
            return None
        return cls(replica_path(settings), every, background=True,
                   max_share=settings.estate.pipeline.replica_max_share)

    def hook(self, conn_of: Callable[[], duckdb.DuckDBPyConnection]) -> Callable[[bool], None]:
        """The worker's `after_batch` callback: called with applied=True after each applied batch (applier
        thread) and applied=False on each idle poll while nothing is being applied (polling thread); both
        may publish, so the last batch of a burst is published once due."""

        def after_batch(applied: bool) -> None:
            self.maybe_publish(conn_of(), applied=applied)

        return after_batch

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

    def _published(self) -> bool:
        return self.target_path.exists() and (self.pipeline_path is None or self.pipeline_path.exists())

    def maybe_publish(self, conn: duckdb.DuckDBPyConnection, force: bool = False,
                      applied: bool = False) -> ReplicaInfo | None:
        """Publish when due (or `force`) and the data changed since the last publication.

        Due: `spacing_s` since the last publication (`every_s`, or more after a slow publication). Whether
        the data changed is read from `_pipeline.offsets` (they move with every batch); `applied=True` (a
        batch was just applied) has it looked at as soon as publishing is due, else it is looked at every
        `every_s`.
        With `background`, the copy runs on its own thread and cursor (DuckDB executes it without
        the GIL, in its own read transaction), so the stream keeps applying batches meanwhile; a
        publication still running when the next one is due is not doubled. Returns the info of a
        publication made in this call (never in background mode).
        """
        with self._lock:
            now = self._clock()
            self._applied = self._applied or applied
            if not force:
                if now - self._published_at < self.spacing_s:
                    return None
                if not self._applied and now - self._checked_at < self.every_s:
                    return None
            if self._thread is not None:
                if self._thread.is_alive() and not force:
                    return None
                self._thread.join()
                self._thread = None
            fingerprint = self._fingerprint(conn)
            unchanged = fingerprint is not None and fingerprint == self._last_fingerprint
            self._checked_at, self._applied = now, False
            if unchanged and self._published():
                return None
            self._published_at = now
            if self.background and not force:
                cursor = conn.cursor()  # created here, between batches; used only by the publishing thread
                self._thread = threading.Thread(target=self._publish, args=(cursor, fingerprint, True),
                                                name="replica-publisher", daemon=True)
                self._thread.start()
                return None
            return self._publish(conn, fingerprint, False)

    def _publish(self, conn: duckdb.DuckDBPyConnection, fingerprint: object, own_cursor: bool) -> ReplicaInfo | None:
        cpu0 = time.thread_time()
        try:
            pipeline = (publish_pipeline_replica(conn, self.pipeline_path)
                        if self.pipeline_path is not None else None)
            info = publish_replica(conn, self.target_path)
        except Exception as exc:  # noqa: BLE001 - BI staleness must not stop the stream
            log.warning("publishing the DuckDB read replica failed (retrying in %.0fs): %s", self.every_s, exc)
            return None
        finally:
            if own_cursor:
                conn.close()
            self.cpu_s += time.thread_time() - cpu0
        self._last_fingerprint = fingerprint
        self.last, self.last_pipeline = info, pipeline
        spaced = spacing(self.every_s, info.seconds + (pipeline.seconds if pipeline else 0.0), self.max_share)
        if spaced > self.every_s and (spaced > 1.2 * self.spacing_s or self.spacing_s == self.every_s):
            log.info("replica: a publication took %.2fs; the next ones are %.0fs apart (at most %.0f%% of the time, "
                     "pipeline.replica_max_share)", spaced * self.max_share, spaced, 100 * self.max_share)
        self.spacing_s = spaced
        self.publications += 1
        return info

    def close(self, conn: duckdb.DuckDBPyConnection) -> ReplicaInfo | None:
        """Last publication when the stream stops (waits for one still running first)."""
        return self.maybe_publish(conn, force=True)
