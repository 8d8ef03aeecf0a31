"""`reporting sql`: an SQL prompt (or one statement with -c) on the configured reporting backend.

PostgreSQL: runs `psql` as `bi_reader` (read-only, the default) or `reporting_writer`; the password
travels in PGPASSWORD, never on the command line.
DuckDB: a small prompt in Python (readline history, rich tables, `\\q`, `\\dt`, `\\d <table>`, `\\?`).
Read-only, each statement opens the data afresh: the main file when no writer holds it, else the
read replica the stream publishes, so the prompt never keeps the stream from starting and always
shows the newest published data. Read-write opens the main file for the whole session.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TextIO

import duckdb
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pipelines.bi.grants import BI_SCHEMAS
from pipelines.bi.reader import OpenedDuckDb, ReportingDbUnavailable, open_reporting_duckdb
from pipelines.settings import Settings

PSQL_CANDIDATES = (Path("/usr/lib/postgresql/15/bin/psql"),)

HELP = """\
  \\q            quit
  \\dt           list tables and views (reporting, staging, marts)
  \\d <table>    columns of a table or view
  \\?            this help
  SQL ending with ;  runs it (statements may span lines)"""


# --------------------------------------------------------------------------- PostgreSQL
def psql_binary() -> str:
    for candidate in PSQL_CANDIDATES:
        if candidate.exists():
            return str(candidate)
    found = shutil.which("psql")
    if not found:
        raise ReportingDbUnavailable("psql not found (install postgresql-client and put psql on PATH)")
    return found


def psql_invocation(settings: Settings, read_only: bool = True,
                    command: str | None = None) -> tuple[list[str], dict[str, str]]:
    """argv and environment for psql on the reporting server; the password is only in the environment."""
    pg = settings.estate.reporting.postgres
    if pg is None:
        raise ReportingDbUnavailable(f"{settings.estate.path}: reporting.postgres is not declared")
    role = "reader" if read_only else "writer"
    login = pg.reader if read_only else pg.writer
    try:
        password = settings.secret(login.password, f"reporting.postgres.{role}.password")
    except LookupError as exc:
        raise ReportingDbUnavailable(str(exc)) from exc
    env = {**os.environ, "PGHOST": pg.host, "PGPORT": str(pg.port),
           "PGDATABASE": pg.database, "PGUSER": login.user, "PGPASSWORD": password, "PGAPPNAME": "reporting sql"}
    argv = [psql_binary()]
    if command is not None:
        argv += ["-X", "-v", "ON_ERROR_STOP=1", "-c", command]
    return argv, env


def _run_foreground(argv: Sequence[str], env: dict[str, str]) -> int:
    """Run an interactive child; Ctrl-C belongs to it (cancels its query), not to us."""
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main else None
    try:
        return subprocess.run(list(argv), env=env, check=False).returncode  # noqa: S603 - our own psql argv
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)


# --------------------------------------------------------------------------- DuckDB
@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    source: str


class DuckDbSql:
    """Runs statements on the DuckDB reporting data (see module docstring for which file)."""

    def __init__(self, settings: Settings, read_only: bool = True) -> None:
        self.settings = settings
        self.read_only = read_only
        self._session: OpenedDuckDb | None = None
        if not read_only:
            self._session = open_reporting_duckdb(settings, read_only=False)

    def _open(self) -> OpenedDuckDb:
        return self._session or open_reporting_duckdb(self.settings, read_only=True)

    def run(self, sql: str) -> QueryResult:
        opened = self._open()
        try:
            cur = opened.conn.execute(sql)
            columns = [d[0] for d in cur.description] if cur.description else []
            rows = cur.fetchall() if cur.description else []
            return QueryResult(columns, rows, opened.note)
        finally:
            if opened is not self._session:
                opened.close()

    def list_relations(self) -> QueryResult:
        schemas = ", ".join(f"'{s}'" for s in BI_SCHEMAS)
        return self.run(
            "SELECT table_schema AS schema, table_name AS name, lower(replace(table_type, 'BASE ', '')) AS type "
            f"FROM information_schema.tables WHERE table_schema IN ({schemas}) ORDER BY 1, 2")

    def describe(self, name: str) -> QueryResult:
        return self.run(f"DESCRIBE {name}")

    def close(self) -> None:
        if self._session:
            self._session.close()
            self._session = None


class DuckLakeSql(DuckDbSql):
    """Runs statements on the DuckLake (its engine, read-only unless asked otherwise): committed data while the
    stream writes, or the whole lake as of a past time (`as_of`, DuckLake's SNAPSHOT_TIME)."""

    def __init__(self, settings: Settings, read_only: bool = True, as_of: str | None = None) -> None:
        from pipelines.apply.ducklake_backend import DuckLakeBackend
        from pipelines.apply.runner import ducklake_target

        self.settings = settings
        self.read_only = read_only
        target = ducklake_target(settings)
        if not target.may_exist():
            raise ReportingDbUnavailable(f"no DuckLake {target.label} yet (run the pipeline first)")
        self.lake = DuckLakeBackend(target, read_only=read_only, as_of=as_of)
        self.source = f"DuckLake {target.label}" + (f" as of {as_of}" if as_of else "")

    def run(self, sql: str) -> QueryResult:
        columns, rows = self.lake.query_described(sql)
        return QueryResult(columns, rows, self.source)

    def close(self) -> None:
        self.lake.close()


def _cell(value: object) -> Text:
    return Text("" if value is None else str(value))


def print_result(result: QueryResult, console: Console) -> None:
    if not result.columns or (result.columns == ["Success"] and not result.rows):  # DuckDB's answer to DDL
        console.print("OK", highlight=False)
        return
    table = Table(header_style="bold")
    for i, column in enumerate(result.columns):
        values = [row[i] for row in result.rows if row[i] is not None]
        numeric = bool(values) and all(isinstance(v, int | float | Decimal) and not isinstance(v, bool)
                                       for v in values)
        table.add_column(Text(column), justify="right" if numeric else "left")
    for row in result.rows:
        table.add_row(*(_cell(v) for v in row))
    console.print(table)
    console.print(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})", highlight=False)


def _console(out: TextIO) -> Console:
    tty = hasattr(out, "isatty") and out.isatty()
    return Console(file=out, width=None if tty else 10_000, highlight=False, soft_wrap=not tty)


def _duckdb_command(sql: DuckDbSql, command: str, console: Console, errors: Console) -> int:
    try:
        text = command.strip()
        if text.startswith("\\"):
            return _meta(sql, text, console, errors)
        result = sql.run(text)
        if result.source.startswith("replica"):
            errors.print(f"-- {result.source} (the stream holds the main file)", highlight=False, markup=False)
        print_result(result, console)
        return 0
    except (duckdb.Error, ReportingDbUnavailable) as exc:
        errors.print(f"ERROR: {str(exc).splitlines()[0]}", highlight=False, markup=False)
        return 1


def _meta(sql: DuckDbSql, text: str, console: Console, errors: Console) -> int:
    word, _, arg = text.partition(" ")
    if word == "\\dt":
        print_result(sql.list_relations(), console)
    elif word == "\\d" and arg.strip():
        print_result(sql.describe(arg.strip().rstrip(";")), console)
    elif word in ("\\?", "\\h", "\\help"):
        console.print(HELP, highlight=False, markup=False)
    else:
        errors.print(f"unknown command {word} (\\? for help)", highlight=False, markup=False)
        return 1
    return 0


def _read_statement(prompt: str) -> str | None:
    """One meta command, or lines up to a terminating ';'. None at end of input."""
    lines: list[str] = []
    while True:
        try:
            line = input(prompt if not lines else "... ")
        except EOFError:
            return None if not lines else "\n".join(lines)
        if not lines and line.strip().startswith("\\"):
            return line.strip()
        if not lines and not line.strip():
            continue
        lines.append(line)
        if line.rstrip().endswith(";"):
            return "\n".join(lines)


def _duckdb_prompt(sql: DuckDbSql, settings: Settings, console: Console, errors: Console) -> int:
    try:
        import readline
    except ImportError:  # pragma: no cover - not on Debian
        readline = None  # type: ignore[assignment]
    history = settings.state_dir / "sql_history"
    if readline is not None:
        try:
            readline.read_history_file(history)
        except OSError:
            pass
    mode = "read-only" if sql.read_only else "read-write"
    console.print(f"reporting sql (duckdb, {mode}, {settings.duckdb_path}); \\? for help, \\q to quit",
                  highlight=False, markup=False)
    try:
        while True:
            try:
                statement = _read_statement("reporting=> ")
            except KeyboardInterrupt:
                console.print("")
                continue
            if statement is None or statement.strip() in ("\\q", "quit", "exit"):
                return 0
            try:
                _duckdb_command(sql, statement, console, errors)
            except KeyboardInterrupt:
                errors.print("cancelled", highlight=False)
    finally:
        if readline is not None:
            try:
                history.parent.mkdir(parents=True, exist_ok=True)
                readline.write_history_file(history)
            except OSError:
                pass


# --------------------------------------------------------------------------- entry point
def open_sql(settings: Settings | None = None, read_only: bool = True, command: str | None = None,
             out: TextIO | None = None, err: TextIO | None = None, as_of: str | None = None) -> int:
    """`reporting sql [--read-only/--read-write] [-c SQL]`: run one statement, or an interactive prompt.

    Returns the exit code (0 success; 1 SQL error; psql's own codes on PostgreSQL). Raises
    ReportingDbUnavailable (one readable line) when the reporting data cannot be opened at all.
    """
    if as_of is not None and settings.backend != "ducklake":
        raise ReportingDbUnavailable(f"--as-of needs the ducklake backend (history); this estate uses {settings.backend}")
    if settings.backend == "postgres":
        argv, env = psql_invocation(settings, read_only, command)
        if command is not None:
            done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)  # noqa: S603
            (out or sys.stdout).write(done.stdout)
            (err or sys.stderr).write(done.stderr)
            return done.returncode
        return _run_foreground(argv, env)
    if settings.backend not in ("duckdb", "ducklake"):
        raise ReportingDbUnavailable(f"REPORTING_BACKEND={settings.backend!r}: expected 'duckdb', 'postgres' or "
                                     "'ducklake'")
    console, errors = _console(out or sys.stdout), _console(err or sys.stderr)
    sql = (DuckLakeSql(settings, read_only=read_only, as_of=as_of) if settings.backend == "ducklake"
           else DuckDbSql(settings, read_only=read_only))
    try:
        if command is not None:
            return _duckdb_command(sql, command, console, errors)
        return _duckdb_prompt(sql, settings, console, errors)
    finally:
        sql.close()
