"""The reporting database of a test stack, read (and, where a test must, written) on whichever backend the
settings select: the DuckDB file, a DuckLake or PostgreSQL.

- DuckDB: the file opened read-only with `duckdb.connect` (a writer that holds the file makes that fail, as
  it should in a test that expects the stream to be stopped).
- DuckLake: the product's own reader, `DuckLakeBackend(ducklake_target(settings), read_only=True)`: the
  catalog attached read-only by the DuckLake engine in its venv, as `reporting sql` and `reporting status`
  read it. Errors come back as the product's duckdb exception classes (duckdb.CatalogException, ...).
- PostgreSQL: the product's operator reading (the writer role, every transaction read-only).

Every reader answers `query(sql, params=None) -> list[tuple]`, so the product's read helpers
(`list_dead_letters`, ...) take one too. Each `query()` call opens and closes its own reader; use `reader()`
for several queries in a row.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import duckdb

from pipelines.settings import Settings


class _DuckDbFileReader:
    def __init__(self, path: Path) -> None:
        self.conn = duckdb.connect(str(path), read_only=True)

    def query(self, sql: str, params=None) -> list[tuple]:
        cur = self.conn.execute(sql, list(params)) if params is not None else self.conn.execute(sql)
        return cur.fetchall()

    def close(self) -> None:
        self.conn.close()


def _open_reader(settings: Settings):
    if settings.backend == "duckdb":
        return _DuckDbFileReader(settings.duckdb_path)
    if settings.backend == "ducklake":
        from pipelines.apply.ducklake_backend import DuckLakeBackend
        from pipelines.apply.runner import ducklake_target

        return DuckLakeBackend(ducklake_target(settings), read_only=True)
    if settings.backend == "postgres":
        from pipelines.bi.reader import open_operator_reading

        return open_operator_reading(settings).backend
    raise ValueError(f"reporting backend {settings.backend!r}: expected duckdb, ducklake or postgres")


@contextlib.contextmanager
def reader(settings: Settings) -> Iterator:
    """A read-only reader of the reporting database (see the module docstring), closed at the end."""
    r = _open_reader(settings)
    try:
        yield r
    finally:
        r.close()


def query(settings: Settings, sql: str, params=None) -> list[tuple]:
    """The rows of one read-only query on the reporting database."""
    with reader(settings) as r:
        return r.query(sql, params)


def exists(settings: Settings) -> bool:
    """Whether the reporting database was created yet (the DuckDB file, the DuckLake's SQLite catalog file; a
    DuckLake catalog in PostgreSQL and the PostgreSQL backend always exist)."""
    if settings.backend == "duckdb":
        return settings.duckdb_path.exists()
    if settings.backend == "ducklake":
        catalog = settings.ducklake.catalog
        return catalog is None or catalog.exists()
    return True


def table_exists(settings: Settings, schema: str, table: str) -> bool:
    """Whether `schema.table` exists (False, not an error, when the database does not exist yet)."""
    if not exists(settings):
        return False
    return bool(query(settings, "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                                "AND table_name = ?", [schema, table])[0][0])


def _open_writer(settings: Settings):
    if settings.backend == "duckdb":
        from pipelines.apply.duckdb_backend import DuckDbBackend

        return DuckDbBackend(settings.duckdb_path)
    from pipelines.apply.runner import open_backend

    return open_backend(settings)  # DuckLake: the writer's engine; PostgreSQL: the writer role


@contextlib.contextmanager
def writer(settings: Settings) -> Iterator:
    """The product's read-write backend on the reporting database (for a test that resets offsets, spoils
    rows or replays dead letters), closed at the end. Nothing else may write meanwhile on DuckDB."""
    b = _open_writer(settings)
    try:
        yield b
    finally:
        b.close()


def separate(settings: Settings, folder: Path) -> Settings:
    """The same settings with a reporting database of their own under `folder` (a DuckDB file, or a DuckLake
    with its SQLite catalog and data folder there), empty until the pipeline writes to it: its stored offsets
    start at 0, so a pipeline run on it reads every topic from the start."""
    reporting = settings.estate.reporting
    if settings.backend == "duckdb":
        from pipelines.config.model import DuckDbBackend

        path = Path(folder) / "reportingdb.duckdb"  # not reporting.duckdb: its catalog would shadow the schema
        duck = reporting.duckdb.model_copy(update={"path": path}) if reporting.duckdb else DuckDbBackend(path=path)
        reporting = reporting.model_copy(update={"duckdb": duck})
    elif settings.backend == "ducklake":
        lake = reporting.ducklake.model_copy(update={"catalog": Path(folder) / "lake" / "catalog.sqlite",
                                                     "data_path": Path(folder) / "lake" / "data",
                                                     "postgres_catalog": None})
        reporting = reporting.model_copy(update={"ducklake": lake})
    else:
        raise ValueError(f"reporting backend {settings.backend!r}: no separate database in a folder")
    return dataclasses.replace(settings, estate=settings.estate.model_copy(update={"reporting": reporting}))
