"""PostgreSQL reporting backend (shared server): many readers, several pipeline workers.

Each batch is staged into a temporary table with COPY and merged with MERGE (PostgreSQL 15+),
inside one transaction together with the consumer offsets. Several workers of one consumer
group own disjoint partitions, so their transactions never write the same offset rows.

The staging tables are created once per session and shape (`ON COMMIT DELETE ROWS`), not per batch:
creating and dropping ~8 temporary tables per streaming batch wrote and vacuumed the system catalogs
(pg_class, pg_attribute, pg_type) every batch, and changed the statements' relations, so that the
server could not reuse their plans (docs/benchmarks.md §8). A rollback forgets them (a table created
in the rolled-back transaction is gone), and so does a reconnect.
"""

from __future__ import annotations

import io

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv

from pipelines.apply.backend import Backend
from pipelines.contract.ddl import quote_ident

_PG_TYPES = {
    pa.int16(): "SMALLINT", pa.int32(): "INTEGER", pa.int64(): "BIGINT", pa.float64(): "DOUBLE PRECISION",
    pa.bool_(): "BOOLEAN", pa.string(): "TEXT", pa.date32(): "DATE", pa.time64("us"): "TIME",
    pa.timestamp("us"): "TIMESTAMP", pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
}


def _pg_type(t: pa.DataType) -> str:
    if pa.types.is_decimal(t):
        return f"NUMERIC({t.precision},{t.scale})"
    return _PG_TYPES[t]


class PostgresBackend(Backend):
    dialect = "postgres"

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.before_commit_hooks = []
        self.conn = psycopg.connect(conninfo, autocommit=True)
        self._in_tx = False
        self._staging: dict[str, str] = {}  # staged name -> column definitions of its session temp table
        self._staged_in_tx: set[str] = set()

    def reconnect(self) -> None:
        """After a lost connection (server restart, network): a fresh session; the failed batch is retried."""
        try:
            self.conn.close()
        except psycopg.Error:
            pass
        self._in_tx = False
        self._staging = {}
        self.conn = psycopg.connect(self.conninfo, autocommit=True)

    def execute(self, sql, params=None):
        self.conn.execute(sql.replace("?", "%s") if params is not None else sql, params)

    def query(self, sql, params=None):
        return self.conn.execute(sql.replace("?", "%s") if params is not None else sql, params).fetchall()

    def stage(self, name: str, table: pa.Table) -> str:
        cols = ", ".join(f"{quote_ident(f.name)} {_pg_type(f.type)}" for f in table.schema)
        if self._staging.get(name) != cols:
            # first use in this session, or another shape (TOAST flag columns vary by batch): (re)create
            self.conn.execute(f"DROP TABLE IF EXISTS pg_temp.{quote_ident(name)}")
            self.conn.execute(f"CREATE TEMP TABLE {quote_ident(name)} ({cols}) ON COMMIT DELETE ROWS")
            self._staging[name] = cols
        elif name in self._staged_in_tx:  # staged twice in one transaction: the first rows go
            self.conn.execute(f"DELETE FROM pg_temp.{quote_ident(name)}")
        # otherwise it is empty: every commit deletes its rows, a rollback discards them
        self._staged_in_tx.add(name)
        names = ", ".join(quote_ident(f.name) for f in table.schema)
        # Arrow writes CSV in C: NULL is an unquoted empty field, an empty string is quoted ("")
        buf = io.BytesIO()
        pa_csv.write_csv(table, buf, pa_csv.WriteOptions(include_header=False, quoting_style="needed"))
        with self.conn.cursor().copy(f"COPY {quote_ident(name)} ({names}) FROM STDIN (FORMAT csv)") as cp:
            cp.write(buf.getbuffer())
        return quote_ident(name)

    def unstage(self, name: str) -> None:
        """Nothing to do: the session's staging table is emptied when the transaction ends."""

    def begin(self):
        self.conn.execute("BEGIN")
        self._in_tx = True
        self._staged_in_tx = set()

    def commit(self):
        self.conn.execute("COMMIT")
        self._in_tx = False

    def rollback(self):
        if self._in_tx and not self.conn.closed:
            try:
                self.conn.execute("ROLLBACK")
            except psycopg.Error:
                pass
        self._in_tx = False
        self._staging = {}  # staging tables created in the rolled-back transaction no longer exist

    def close(self):
        self.conn.close()
