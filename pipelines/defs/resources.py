"""Dagster resources: the estate's configuration, read when a run or a sensor tick starts, never at import.

`ReportingResource.settings()` is an edge: it builds the one typed configuration (`Settings.load`) from
the estate file the resource names (empty: REPORTING_ESTATE, else the bundled example) and the
environment's documented overrides. It never writes the environment; its `backend` field overrides
the estate's reporting backend through the mapping handed to `Settings.load`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import dagster as dg

from pipelines.settings import Settings

POOL = "reporting_db_writer"
"""Dagster concurrency pool of everything that opens the reporting database. Its limit is 1 in the
instance that `reporting ui` configures: DuckDB allows ONE process to open a file for writing (and,
while it does, no other process may even read it), so runs that touch the file take turns."""


def writer_pool(backend: str) -> str | None:
    """The pool a step that opens the reporting database of `backend` claims: POOL on DuckDB (one process
    per file) and PostgreSQL (kept there: runs stay comparable); none on DuckLake, whose writers commit
    side by side (a conflicting commit is refused and retried) and whose readers never wait."""
    return None if backend == "ducklake" else POOL


class ReportingDbBusy(RuntimeError):
    """The DuckDB reporting file is held by another process (a run, `reporting stream`)."""


def wait_writable(settings: Settings, timeout: float = 60.0, say=print) -> None:
    """Before a step writes the DuckDB file: wait until no other process holds it (a sensor's short
    read-only look, `reporting stream`), so the step does not fail on DuckDB's file lock. PostgreSQL and
    DuckLake: nothing to wait for. Raises ReportingDbBusy after `timeout` seconds."""
    if settings.backend != "duckdb" or not settings.duckdb_path.exists():
        return
    import duckdb

    deadline = time.monotonic() + timeout
    told = False
    while True:
        try:
            duckdb.connect(str(settings.duckdb_path)).close()
            return
        except duckdb.Error as exc:
            if time.monotonic() > deadline:
                raise ReportingDbBusy(f"{settings.duckdb_path} stayed locked by another process for {timeout:.0f}s "
                                      f"(is `reporting stream` running?): {str(exc).splitlines()[0]}") from exc
            if not told:
                say(f"waiting for {settings.duckdb_path}: another process holds DuckDB's file lock")
                told = True
            time.sleep(0.5)


class ReportingResource(dg.ConfigurableResource):
    """Where the reporting DB, Kafka, Kafka Connect and the state folder are: the estate file's
    declarations (pipelines/settings.py), resolved when a run or a sensor tick starts. Empty fields
    take the estate's values."""

    estate: str = ""
    """Path of the estate file; empty = REPORTING_ESTATE, else the bundled reporting.yaml."""
    backend: str = ""
    """'duckdb', 'postgres' or 'ducklake': overrides the estate's reporting.backend (and REPORTING_BACKEND);
    empty = REPORTING_BACKEND when set, else the estate's."""
    consumer_group: str = ""
    """Kafka consumer group of the pipeline (offsets are stored per group in the reporting DB);
    empty = the estate's pipeline.consumer_group."""
    planners: int = -1
    """Planner processes for the ingest run (apply/planner_pool.py): 0 = plan in the run's process,
    2 = catch up a large backlog faster on 2 cores; -1 = the estate's pipeline.planners."""

    def settings(self) -> Settings:
        """The configuration of this run or tick (read now; the environment is not modified)."""
        environ = {**os.environ, "REPORTING_BACKEND": self.backend} if self.backend else None
        return Settings.load(self.estate or None, environ=environ)

    def group(self, settings: Settings) -> str:
        """The pipeline's Kafka consumer group: this resource's, else the estate's."""
        return self.consumer_group or settings.estate.pipeline.consumer_group

    def planner_count(self, settings: Settings) -> int:
        """Planner processes of an ingest run: this resource's, else the estate's pipeline.planners."""
        return self.planners if self.planners >= 0 else settings.estate.pipeline.planners

    @contextlib.contextmanager
    def writer(self, settings: Settings | None = None) -> Iterator:
        """The reporting backend opened for writing (hold the pool: one writer at a time)."""
        from pipelines.apply.runner import open_backend

        backend = open_backend(settings or self.settings())
        try:
            yield backend
        finally:
            backend.close()

    @contextlib.contextmanager
    def reader(self, settings: Settings | None = None) -> Iterator:
        """The reporting backend for reading: DuckDB and DuckLake read-only. Raises ReportingDbBusy when
        another process writes the DuckDB file, FileNotFoundError when the pipeline has not created the
        file or the lake yet."""
        settings = settings or self.settings()
        if settings.backend == "ducklake":  # read-only attach: committed data, also while a writer commits
            from pipelines.apply.ducklake_backend import DuckLakeBackend
            from pipelines.apply.runner import ducklake_target

            target = ducklake_target(settings)
            if not target.may_exist():
                raise FileNotFoundError(f"no DuckLake {target.label} yet (materialize the contract tables first)")
            backend = DuckLakeBackend(target, read_only=True)
        elif settings.backend == "duckdb":
            import duckdb

            from pipelines.apply.duckdb_backend import DuckDbBackend

            if not settings.duckdb_path.exists():
                raise FileNotFoundError(f"no reporting database at {settings.duckdb_path} yet "
                                        "(materialize the contract tables first)")
            try:
                backend = DuckDbBackend(settings.duckdb_path, read_only=True)
            except duckdb.Error as exc:
                raise ReportingDbBusy(f"{settings.duckdb_path} is locked by another process (a run or "
                                      f"`reporting stream` is writing it): {str(exc).splitlines()[0]}") from exc
        else:
            from pipelines.apply.runner import open_backend

            backend = open_backend(settings)
        try:
            yield backend
        finally:
            backend.close()

    def connect_client(self, settings: Settings | None = None):
        """A client of the estate's Kafka Connect cluster (basic auth when the estate declares it)."""
        from pipelines.connect.client import client_for

        return client_for(settings or self.settings())
