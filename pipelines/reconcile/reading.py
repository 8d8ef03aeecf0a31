"""Reading for reconciliation (the thin I/O edge): source tables and contract tables, streamed in chunks.

Source side: only the columns the projection declares are selected, inside one read-only, repeatable
read transaction (a consistent snapshot), through a server-side cursor (PostgreSQL, psycopg 3) or an
unbuffered cursor (MariaDB, PyMySQL), so a million rows never sit in memory at once. PostgreSQL numeric
and json/jsonb are read as text (what Debezium sends); MariaDB runs with `time_zone = '+00:00'` so a
TIMESTAMP column is read in UTC.

Reporting side: the canonical SQL expressions of pipelines.reconcile.canonical, live rows only
(`_deleted_at IS NULL` under soft delete semantics). DuckDB is read through Arrow, PostgreSQL through
a server-side cursor.

Operational note: DuckDB allows one writing process per file; while `reporting stream` runs, open the
file read-only elsewhere fails. Reconcile when the stream is stopped (or on the PostgreSQL backend).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from pipelines.contract.ddl import qualified_name
from pipelines.contract.model import Contract
from pipelines.projection.loader import IDENTIFIER_RE
from pipelines.projection.model import TableProjection
from pipelines.reconcile.canonical import RowCanon

__all__ = [
    "MariaDbSource",
    "PostgresSource",
    "SourceReader",
    "fetch_stored",
    "iter_stored",
    "open_source",
    "reporting_table_exists",
    "source_select_list",
]

DEFAULT_BATCH = 20_000
_cursor_ids = itertools.count(1)


class SourceReader(Protocol):
    """A connection to one service database that streams a source table's declared columns."""

    def rows(self, table: TableProjection, columns: Sequence[str], batch: int = DEFAULT_BATCH
             ) -> Iterator[list[tuple[Any, ...]]]: ...

    def close(self) -> None: ...


def _checked(name: str) -> str:
    if not IDENTIFIER_RE.fullmatch(name):
        raise ValueError(f"refusing to put {name!r} into SQL: not a plain identifier")
    return name


# Conversions to the Debezium representation done by the source database itself, where Python would
# be slow (building datetime objects only to format them again). The Python encoders (native.py) pass
# these values through unchanged and convert every other column.
_PG_SELECT = {
    "timestamptz": """to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""",
}
_MARIADB_SELECT = {
    "timestamptz": "DATE_FORMAT({c}, '%Y-%m-%dT%H:%i:%s.%fZ')",  # TIMESTAMP, read with time_zone UTC
    "timestamp": "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {c})",
    "timestamp_ms": "CAST(FLOOR(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {c}) / 1000) AS SIGNED)",
    "date": "DATEDIFF({c}, '1970-01-01')",
    "decimal": "CAST({c} AS CHAR)",
}


def source_select_list(table: TableProjection, columns: Sequence[str]) -> list[str]:
    """SQL expressions selecting `columns` of the source table, some already in Debezium's representation."""
    if table.engine == "postgresql":
        quoted, special = (lambda c: f'"{_checked(c)}"'), _PG_SELECT
    else:
        quoted, special = (lambda c: f"`{_checked(c)}`"), _MARIADB_SELECT
    out = []
    for c in columns:
        template = special.get(table.column_types[c], "{c}")
        out.append(template.format(c=quoted(c)))
    return out


class PostgresSource:
    """A PostgreSQL service database (psycopg 3)."""

    def __init__(self, conninfo: str) -> None:
        import psycopg
        from psycopg.types.string import TextLoader

        self.conn = psycopg.connect(conninfo, autocommit=False)
        for type_name in ("numeric", "json", "jsonb"):
            self.conn.adapters.register_loader(type_name, TextLoader)

    def rows(self, table: TableProjection, columns: Sequence[str], batch: int = DEFAULT_BATCH
             ) -> Iterator[list[tuple[Any, ...]]]:
        schema, name = (_checked(p) for p in table.source_table.split("."))
        cols = ", ".join(source_select_list(table, columns))
        conn = self.conn
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            with conn.cursor(name=f"reconcile_{next(_cursor_ids)}") as cur:
                cur.itersize = batch
                cur.execute(f'SELECT {cols} FROM "{schema}"."{name}"')
                while chunk := cur.fetchmany(batch):
                    yield chunk

    def close(self) -> None:
        self.conn.close()


class MariaDbSource:
    """A MariaDB service database (PyMySQL, unbuffered cursor)."""

    def __init__(self, host: str, port: int, user: str, password: str, database: str) -> None:
        import pymysql
        import pymysql.cursors

        self.conn = pymysql.connect(host=host, port=port, user=user, password=password, database=database,
                                    charset="utf8mb4", cursorclass=pymysql.cursors.SSCursor, autocommit=True)
        with self.conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")

    def rows(self, table: TableProjection, columns: Sequence[str], batch: int = DEFAULT_BATCH
             ) -> Iterator[list[tuple[Any, ...]]]:
        db, name = (_checked(p) for p in table.source_table.split("."))
        cols = ", ".join(source_select_list(table, columns))
        with self.conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            try:
                cur.execute(f"SELECT {cols} FROM `{db}`.`{name}`")
                while chunk := cur.fetchmany(batch):
                    yield list(chunk)
            finally:
                cur.close()
                with self.conn.cursor() as end:
                    end.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


def open_source(url: str) -> SourceReader:
    """Connect to a service database from its SQLAlchemy-style URL (pipelines.stack.bootstrap.service_urls):
    `postgresql[+psycopg]://...` or `mysql[+pymysql]://...` / `mariadb[+pymysql]://...`."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme in ("postgresql", "postgres"):
        return PostgresSource(parts._replace(scheme="postgresql").geturl())
    if scheme in ("mysql", "mariadb"):
        return MariaDbSource(parts.hostname or "127.0.0.1", parts.port or 3306, unquote(parts.username or ""),
                             unquote(parts.password or ""), parts.path.lstrip("/"))
    raise ValueError(f"unsupported source database URL scheme {parts.scheme!r} (postgresql or mysql/mariadb)")


# --- reporting side ---------------------------------------------------------------------------------

def _live_filter(contract: Contract) -> str:
    return ' WHERE "_deleted_at" IS NULL' if contract.delete_semantics == "soft" else ""


def reporting_table_exists(backend: Any, contract: Contract) -> bool:
    mark = "?" if backend.dialect == "duckdb" else "%s"
    rows = backend.query("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'reporting' "
                         f"AND table_name = {mark}", (contract.physical_name,))
    return bool(rows and rows[0][0])


def iter_stored(backend: Any, contract: Contract, canon: RowCanon, batch: int = 100_000
                ) -> Iterator[list[tuple[Any, ...]]]:
    """Live rows of the contract table, selected in canonical form, in chunks."""
    sql = f"SELECT {', '.join(canon.select_list(backend.dialect))} FROM {qualified_name(contract)}" \
          + _live_filter(contract)
    if getattr(backend, "keyless", False):  # DuckLake: rows come over the engine's pipe in one answer
        rows = backend.query(sql)
        for start in range(0, len(rows), batch):
            yield rows[start:start + batch]
        return
    if backend.dialect == "duckdb":
        reader = backend.conn.sql(sql).to_arrow_reader(batch)
        for record_batch in reader:
            columns = [col.to_pylist() for col in record_batch.columns]
            yield list(zip(*columns, strict=True))
        return
    conn = backend.conn
    with conn.transaction(), conn.cursor(name=f"reconcile_{next(_cursor_ids)}") as cur:
        cur.itersize = batch
        cur.execute(sql)
        while chunk := cur.fetchmany(batch):
            yield chunk


def fetch_stored(backend: Any, contract: Contract, canon: RowCanon, keys: Sequence[Any]) -> dict[Any, tuple]:
    """The live stored rows of `keys` (canonical keys), canonical, by key. Meant for a few sampled keys."""
    if not keys:
        return {}
    mark = "?" if backend.dialect == "duckdb" else "%s"
    key_sql = canon.key_sql(backend.dialect)
    one = "(" + " AND ".join(f"{expr} = {mark}" for expr in key_sql) + ")"
    where = " OR ".join([one] * len(keys))
    live = ' AND "_deleted_at" IS NULL' if contract.delete_semantics == "soft" else ""
    sql = (f"SELECT {', '.join(canon.select_list(backend.dialect))} FROM {qualified_name(contract)} "
           f"WHERE ({where}){live}")
    params = [p for k in keys for p in canon.key_parts(k)]
    out = {}
    for row in backend.query(sql, params):
        c = canon.stored(row)
        out[canon.key(c)] = c
    return out

