"""Open the DuckDB reporting data for a reader: the main file when free, the replica when the stream holds it.

Operational warning: a reader that keeps the MAIN file open (even read-only) holds a shared lock,
and the stream cannot start while it does (`Could not set lock on file`). Long-lived BI tools must
open the replica (`replica_path`), never the main file; `reporting sql` opens the main file for one
statement at a time only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.bi.replica import INFO_SCHEMA, replica_path
from pipelines.settings import Settings

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
