"""Open the reporting data for a reader: the main file when free, the replica when the stream holds it.

- `open_reporting_duckdb`: BI (`reporting sql`): the main DuckDB file or the BI replica.
- `open_operator_reading`: the operator commands (`reporting status`, `dlq list`, `reconcile`,
  `contract status`), which also read `_pipeline`: never a writer, never DDL. DuckDB: the main file
  read-only, or, while `reporting stream` holds it, the BI replica and the `_pipeline` replica beside
  it (pipelines/bi/replica.py), with a one-line note saying when they were published. PostgreSQL: the
  writer role (only it can see `_pipeline`; `bi_reader` cannot) in read-only transactions.

Operational warning: a reader that keeps the MAIN file open (even read-only) holds a shared lock,
and the stream cannot start while it does (`Could not set lock on file`). Long-lived BI tools must
open the replica (`replica_path`), never the main file; `reporting sql` and the operator commands
open the main file for one command at a time only.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines.bi.replica import INFO_SCHEMA, PIPELINE_SCHEMA, pipeline_replica_path, replica_path
from pipelines.settings import Settings

log = logging.getLogger(__name__)

_LOCK_MARKERS = ("could not set lock on file", "conflicting lock")
_PID = re.compile(r"\(PID (\d+)\)")


class ReportingDbUnavailable(RuntimeError):
    """The reporting data cannot be opened as asked; the message says why and what to do."""


def is_lock_error(exc: BaseException) -> bool:
    """True for DuckDB's 'another process holds this file' error."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and any(m in text for m in _LOCK_MARKERS)


def lock_holder_pid(exc: BaseException) -> int | None:
    """The PID DuckDB names in its lock error (None when it names none)."""
    match = _PID.search(str(exc))
    return int(match.group(1)) if match else None


@dataclass
class OpenedDuckDb:
    """A connection plus where it reads from: 'main' (the stream's file) or 'replica'."""

    conn: duckdb.DuckDBPyConnection
    path: Path
    source: str
    note: str

    def close(self) -> None:
        self.conn.close()


def open_replica(path: Path | str) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the replica file as it is NOW.

    Not `duckdb.connect(path, read_only=True)`: within one process DuckDB hands out the cached
    instance of a path while any connection to it is open, i.e. the replica file of an earlier
    publication. A fresh in-memory instance that ATTACHes the path opens the current file; it is
    attached under the file stem, so the catalog is named like the main file's.
    """
    replica = Path(path)
    conn = duckdb.connect()
    try:
        stem = replica.stem.replace('"', '""')
        conn.execute(f"ATTACH '{str(replica).replace(chr(39), chr(39) * 2)}' AS \"{stem}\" (READ_ONLY)")
        conn.execute(f'USE "{stem}"')
    except BaseException:
        conn.close()
        raise
    return conn


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _replica_note(conn: duckdb.DuckDBPyConnection) -> str:
    try:
        published = conn.execute(f"SELECT published_at FROM {INFO_SCHEMA}.info").fetchone()[0]
    except duckdb.Error:
        return "replica"
    return f"replica published at {published:%Y-%m-%d %H:%M:%S%z}"


def open_reporting_duckdb(settings: Settings, read_only: bool = True) -> OpenedDuckDb:
    """Open the DuckDB reporting data.

    read_only=True: the main file read-only when no writer holds it, else the replica the stream
    publishes. read_only=False: the main file read-write (only possible while the stream is stopped).
    Raises ReportingDbUnavailable with a one-line explanation otherwise.
    """
    main = settings.duckdb_path
    replica = replica_path(settings)
    if not read_only:
        try:
            return OpenedDuckDb(duckdb.connect(str(main)), main, "main", "main file, read-write")
        except duckdb.Error as exc:
            if is_lock_error(exc):
                raise ReportingDbUnavailable(
                    f"{main} is held by another process (PID {lock_holder_pid(exc)}, normally `reporting stream`): "
                    "writing needs it stopped; reading works with --read-only (through the replica)") from exc
            raise
    if main.exists():
        try:
            return OpenedDuckDb(duckdb.connect(str(main), read_only=True), main, "main", "main file, read-only")
        except duckdb.Error as exc:
            if not is_lock_error(exc):
                raise
            holder = lock_holder_pid(exc)
    elif not replica.exists():
        raise ReportingDbUnavailable(f"no DuckDB reporting file at {main} (run `reporting ingest` first)")
    else:
        holder = None
    if not replica.exists():
        raise ReportingDbUnavailable(
            f"{main} is held by PID {holder} (normally `reporting stream`) and no read replica exists at {replica} "
            f"yet (the stream publishes it every pipeline.replica_every_s seconds of the estate file, default 10; 0 disables it)")
    conn = open_replica(replica)
    return OpenedDuckDb(conn, replica, "replica", _replica_note(conn))


# ------------------------------------------------------------------------------ operator commands
_NOTES: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar("reporting_read_notes",
                                                                                     default=None)


@contextlib.contextmanager
def read_notes(say: Callable[[str], None]) -> Iterator[None]:
    """Within this block, `announce` hands its lines (e.g. "figures from the read replica published at
    ...") to `say`, so a command can print where a function it calls read from."""
    token = _NOTES.set(say)
    try:
        yield
    finally:
        _NOTES.reset(token)


def announce(note: str) -> None:
    """One line about where data was read from: to the `read_notes` receiver, else the log."""
    say = _NOTES.get()
    if say is not None:
        say(note)
    else:
        log.info("%s", note)


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m {seconds % 60}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m"


def replica_age_note(published_at: dt.datetime, now: dt.datetime | None = None, holder: str = "") -> str:
    """`figures from the read replica published at 2026-05-01 10:00:05 UTC (7s ago)[: holder]`."""
    now = now or dt.datetime.now(dt.UTC)
    when = published_at.astimezone(dt.UTC)
    return (f"figures from the read replica published at {when:%Y-%m-%d %H:%M:%S} UTC "
            f"({_age((now - when).total_seconds())} ago)" + (f": {holder}" if holder else ""))


@dataclass
class OperatorReading:
    """Read-only access for an operator command: `backend` (query/stored_offsets like any Backend, opened
    read-only), where it reads (`source`: main, replica, none (no DuckDB file yet) or postgres) and, for the
    replica, `published_at` and `note` (one line stating the replica's publication time and age)."""

    backend: Any
    source: str
    note: str | None = None
    published_at: dt.datetime | None = None
    _tables: set[tuple[str, str]] | None = field(default=None, repr=False)

    def tables(self) -> set[tuple[str, str]]:
        """(schema, name) of every table of `reporting` and `_pipeline` that exists."""
        if self._tables is None:
            self._tables = {(s, t) for s, t in self.backend.query(
                "SELECT table_schema, table_name FROM information_schema.tables "
                f"WHERE table_schema IN ('reporting', '{PIPELINE_SCHEMA}')")}
        return self._tables

    def has(self, schema: str, table: str) -> bool:
        return (schema, table) in self.tables()

    def close(self) -> None:
        self.backend.close()


def _memory_backend():
    from pipelines.apply.duckdb_backend import DuckDbBackend

    return DuckDbBackend(":memory:")


def _open_replicas(settings: Settings, holder: int | None, now: dt.datetime | None) -> OperatorReading:
    """The BI replica and the `_pipeline` replica, attached read-only into one fresh in-memory instance
    (the current files, not a cached instance): `reporting.*` and `_pipeline.*` resolve as on the main file."""
    main, bi, pipeline = settings.duckdb_path, replica_path(settings), pipeline_replica_path(settings)
    held = f"{main} is held by PID {holder} (normally `reporting stream`)"
    if not bi.exists() or not pipeline.exists():
        missing = bi if not bi.exists() else pipeline
        raise ReportingDbUnavailable(
            f"{held} and no read replica exists at {missing} yet (the stream publishes it every "
            "pipeline.replica_every_s seconds of the estate file, default 10; 0 disables it; a stream started "
            "before the `_pipeline` replica existed publishes it after a restart)")
    backend = _memory_backend()
    try:
        catalog, ops = bi.stem, f"{bi.stem}_pipeline"
        backend.conn.execute(f"ATTACH {_lit(str(bi))} AS {_ident(catalog)} (READ_ONLY)")
        backend.conn.execute(f"ATTACH {_lit(str(pipeline))} AS {_ident(ops)} (READ_ONLY)")
        backend.conn.execute(f"USE {_ident(catalog)}")
        # `_pipeline.x` resolves through the search path to the second file; `reporting.x` stays in the first
        backend.conn.execute(f"SET search_path = {_lit(f'{_ident(catalog)}.main,{_ident(ops)}.{PIPELINE_SCHEMA}')}")
        times = [backend.conn.execute(f"SELECT published_at FROM {_ident(c)}.{INFO_SCHEMA}.info").fetchone()[0]
                 for c in (catalog, ops)]
    except BaseException:
        backend.close()
        raise
    published = min(times)  # the older of the two publications (both are made one after the other)
    backend.path = str(bi)
    return OperatorReading(backend, "replica", replica_age_note(published, now, held), published)


def open_operator_reading(settings: Settings, now: dt.datetime | None = None) -> OperatorReading:
    """Read-only access to the reporting data and `_pipeline` for `reporting status`, `dlq list`, `reconcile`.

    Opens no writer and runs no DDL. DuckDB: the main file read-only (read_only=True); while another
    process (`reporting stream`) holds it, the replicas it publishes, with `note` saying when; no main file
    yet: an empty database (every table "not created yet"). PostgreSQL: the writer role (only it can see
    `_pipeline`), every transaction read-only (`default_transaction_read_only`), so nothing can be written or
    created. Raises ReportingDbUnavailable (one line) when nothing can be read.
    """
    if settings.backend == "postgres":
        import psycopg

        from pipelines.apply.postgres_backend import PostgresBackend

        conninfo = settings.reporting_pg_conninfo("writer") + " options='-c default_transaction_read_only=on'"
        try:
            return OperatorReading(PostgresBackend(conninfo), "postgres")
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()
            raise ReportingDbUnavailable(f"reporting DB (postgres) unavailable: {first[0] if first else exc!r}") from exc
    if settings.backend == "ducklake":  # readers attach the catalog read-only while the stream writes
        from pipelines.apply.ducklake_backend import DuckLakeBackend
        from pipelines.apply.runner import ducklake_target

        target = ducklake_target(settings)
        if not target.may_exist():
            backend = _memory_backend()
            backend.path = target.label
            return OperatorReading(backend, "none", f"no DuckLake {target.label} yet")
        try:
            return OperatorReading(DuckLakeBackend(target, read_only=True), "ducklake")
        except (duckdb.Error, ConnectionError) as exc:
            raise ReportingDbUnavailable(f"reporting DB (ducklake) unavailable: {str(exc).splitlines()[0]}") from exc
    if settings.backend != "duckdb":
        raise ReportingDbUnavailable(f"reporting backend {settings.backend!r}: expected 'duckdb', 'postgres' or "
                                     "'ducklake'")
    from pipelines.apply.duckdb_backend import DuckDbBackend

    main = settings.duckdb_path
    if not main.exists():
        backend = _memory_backend()
        backend.path = str(main)
        return OperatorReading(backend, "none", f"no reporting file at {main} yet")
    try:
        return OperatorReading(DuckDbBackend(main, read_only=True), "main")
    except duckdb.Error as exc:
        if not is_lock_error(exc):
            raise
        return _open_replicas(settings, lock_holder_pid(exc), now)
