"""Reconcile contract tables with their source tables: wiring of the pure parts and the readers.

For each selected contract table: index its live stored rows (canonical key → digest), then stream its
source table once (for all of that table's selected targets), turn each row into the Debezium
representation, plan it with the pipeline's planner, and feed the expected rows to the differ.
`reconcile(settings)` is what `reporting reconcile` runs; `reconcile_tables` takes its collaborators as
arguments (tests, Dagster checks).

Run it when the pipeline has caught up: a change committed in a source but not yet applied shows up as
a difference (that is what it is, for the moment).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from pipelines.contract.model import Contract
from pipelines.projection.model import TableProjection
from pipelines.reconcile.canonical import RowCanon
from pipelines.reconcile.diff import TableDiffer, TableReconciliation
from pipelines.reconcile.expected import ExpectedRows
from pipelines.reconcile.native import row_encoder
from pipelines.reconcile.reading import (
    DEFAULT_BATCH,
    SourceReader,
    fetch_stored,
    iter_stored,
    open_source,
    reporting_table_exists,
)

__all__ = ["ReconcileError", "open_reporting", "reconcile", "reconcile_tables", "select_targets"]

log = logging.getLogger(__name__)


class ReconcileError(RuntimeError):
    """Reconciliation cannot start (unknown table, reporting DB unreachable); `str()` is one line."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def select_targets(projections: Mapping[str, TableProjection], contracts: Mapping[str, Contract],
                   tables: Sequence[str] | None = None
                   ) -> tuple[list[tuple[TableProjection, list[str]]], list[TableReconciliation]]:
    """Which contract tables to reconcile, grouped by source table.

    `tables`: physical names (`orders_v1`) or contract table names (`orders`: every live major);
    None = every contract. Returns ([(source table projection, [physical names])], not reconcilable),
    where a contract no projection feeds is *skipped* when not asked for by name, an *error* when asked.
    Raises ReconcileError for a name that is no contract.
    """
    feeding: dict[str, TableProjection] = {}
    for tp in projections.values():
        for t in tp.targets:
            feeding[t.physical_name] = tp
    if tables is None:
        wanted = sorted(contracts)
        explicit = False
    else:
        wanted = []
        for name in tables:
            matches = [name] if name in contracts else sorted(p for p, c in contracts.items() if c.table == name)
            if not matches:
                raise ReconcileError(f"unknown contract table {name!r} (known: {', '.join(sorted(contracts))})")
            wanted += [m for m in matches if m not in wanted]
        explicit = True
    groups: dict[str, tuple[TableProjection, list[str]]] = {}
    unfed = []
    for name in wanted:
        tp = feeding.get(name)
        if tp is None:
            owner = contracts[name].owner_service
            reason = f"no projection feeds it (connectors/{owner}/projection.yaml)"
            unfed.append(TableReconciliation(name, error=reason) if explicit else
                         TableReconciliation(name, skipped=reason))
            continue
        groups.setdefault(tp.topic, (tp, []))[1].append(name)
    return list(groups.values()), unfed


def _source_label(tp: TableProjection) -> str:
    return f"{tp.service}:{tp.source_table}"


def _invalid_key(expected: ExpectedRows, canon: RowCanon, row: dict, target: str) -> object | None:
    values = expected.source_key(row, target)
    if values is None:
        return None
    try:
        parts = tuple(canon.canonical_value(k, values[k]) for k in canon.key_names)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None
    return parts[0] if len(parts) == 1 else parts


def _reconcile_group(tp: TableProjection, names: list[str], contracts: Mapping[str, Contract], backend,
                     source: SourceReader, show: int, batch: int) -> list[TableReconciliation]:
    # Millions of short-lived tuples and a growing index of long-lived ones: the cyclic garbage collector
    # would rescan the index again and again (about 10% of the run); nothing here creates cycles.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _reconcile_group_unguarded(tp, names, contracts, backend, source, show, batch)
    finally:
        if gc_was_enabled:
            gc.enable()


def _reconcile_group_unguarded(tp: TableProjection, names: list[str], contracts: Mapping[str, Contract], backend,
                               source: SourceReader, show: int, batch: int) -> list[TableReconciliation]:
    started = time.monotonic()
    results: dict[str, TableReconciliation] = {}
    differs: dict[str, TableDiffer] = {}
    for name in names:
        contract = contracts[name]
        if not reporting_table_exists(backend, contract):
            results[name] = TableReconciliation(name, _source_label(tp), error=f"reporting.{name} does not exist "
                                                "(has the pipeline created it? run `reporting stream` or `ingest`)")
            continue
        differ = TableDiffer(RowCanon(contract), show)
        for chunk in iter_stored(backend, contract, differ.canon):
            differ.add_stored(chunk)
        differs[name] = differ
    if differs:
        expected = ExpectedRows(tp, contracts, list(differs))
        columns = list(tp.column_types)
        encode = row_encoder(tp.column_types, columns)
        for chunk in source.rows(tp, columns, batch):
            per_target = expected.project([encode(r) for r in chunk])
            for name, differ in differs.items():
                target_rows = per_target[name]
                differ.add_expected(target_rows.rows)
                for row, reason in target_rows.invalid:
                    differ.add_invalid(_invalid_key(expected, differ.canon, row, name), reason)
    seconds = time.monotonic() - started
    for name, differ in differs.items():
        contract = contracts[name]
        results[name] = differ.result(
            name, _source_label(tp),
            lambda keys, c=contract, d=differ: fetch_stored(backend, c, d.canon, keys),
            seconds=seconds)
    return [results[n] for n in names]


def reconcile_tables(projections: Mapping[str, TableProjection], contracts: Mapping[str, Contract], backend,
                     open_source_for: Callable[[str], SourceReader], tables: Sequence[str] | None = None,
                     show: int = 10, batch: int = DEFAULT_BATCH) -> list[TableReconciliation]:
    """Reconcile with explicit collaborators.

    `projections`: {topic: TableProjection} (load_projections); `contracts`: {physical name: Contract};
    `backend`: an open reporting backend (DuckDbBackend / PostgresBackend); `open_source_for(service)`:
    a SourceReader for a service's database. One table's failure (source unreachable, table missing)
    becomes that table's `error`; the others go on. Results are sorted by physical name.
    """
    groups, results = select_targets(projections, contracts, tables)
    sources: dict[str, SourceReader | BaseException] = {}
    try:
        for tp, names in groups:
            source = sources.get(tp.service)
            if source is None:
                try:
                    source = sources[tp.service] = open_source_for(tp.service)
                except Exception as exc:  # noqa: BLE001 - reported per table, the others go on
                    log.debug("cannot connect to %s", tp.service, exc_info=True)
                    source = sources[tp.service] = exc
            if isinstance(source, BaseException):
                # a ReconcileError already names the service, address and user in one line
                reason = (str(source) if isinstance(source, ReconcileError)
                          else f"cannot connect to the {tp.service} database: {_one_line(source)}")
                results += [TableReconciliation(n, _source_label(tp), error=reason) for n in names]
                continue
            try:
                results += _reconcile_group(tp, names, contracts, backend, source, show, batch)
            except Exception as exc:  # noqa: BLE001 - reported per table, the others go on
                log.debug("reconciling %s failed", tp.source_table, exc_info=True)
                results += [TableReconciliation(n, _source_label(tp), error=_one_line(exc)) for n in names]
    finally:
        for source in sources.values():
            if not isinstance(source, BaseException):
                try:
                    source.close()
                except Exception:  # noqa: BLE001 - closing a read-only connection cannot lose anything
                    log.debug("closing a source connection failed", exc_info=True)
    return sorted(results, key=lambda r: r.table)


def open_reporting(settings, read_only: bool = True):
    """The configured reporting backend for reading; raises ReconcileError (one line).

    read_only (the default): never a writer, never DDL (pipelines/bi/reader.py `open_operator_reading`):
    DuckDB: the main file read-only, or, while `reporting stream` holds it, the read replica and the
    `_pipeline` replica it publishes; a one-line note says so and when they were published (`announce`:
    printed by the command that asked for it through `read_notes`, else logged). PostgreSQL: the writer
    role in read-only transactions. read_only=False: the DuckDB main file read-write (stream stopped), or
    the PostgreSQL reporting server as the writer.
    """
    if settings.backend == "duckdb":
        path = Path(settings.duckdb_path)
        if not path.exists():
            raise ReconcileError(f"no reporting database at {path} (run the pipeline first, or set "
                                 f"REPORTING_DUCKDB_PATH)")
        if not read_only:
            import duckdb

            from pipelines.apply.duckdb_backend import DuckDbBackend

            try:
                return DuckDbBackend(path)
            except duckdb.Error as exc:
                raise ReconcileError(f"cannot open {path}: {_one_line(exc)} (DuckDB allows one writing process: "
                                     "is `reporting stream` running?)") from exc
    elif not read_only:
        from pipelines.apply.runner import open_backend

        try:
            return open_backend(settings)
        except Exception as exc:
            raise ReconcileError(f"cannot open the {settings.backend} reporting database: {_one_line(exc)}") from exc
    from pipelines.bi.reader import ReportingDbUnavailable, announce, open_operator_reading

    try:
        reading = open_operator_reading(settings)
    except ReportingDbUnavailable as exc:
        raise ReconcileError(str(exc)) from exc
    except Exception as exc:
        raise ReconcileError(f"cannot open the {settings.backend} reporting database: {_one_line(exc)}") from exc
    reading.backend.read_note = reading.note  # where the figures come from (None: the main file / server)
    if reading.note:
        announce(reading.note)
    return reading.backend


def reconcile(settings, tables: list[str] | None = None, show: int = 10) -> list[TableReconciliation]:
    """Compare every contract table (or `tables`) with its source database, as the pipeline would project it.

    Reads the service databases as their declared readers (estate file), and the
    reporting database configured by `settings` read-only (DuckDB: the main file, or the read replica
    while `reporting stream` holds it; see open_reporting).
    Raises ReconcileError when it cannot start; per-table problems are in each result's `error`.
    """
    from pipelines.contract.model import load_contracts
    from pipelines.projection import load_estate_projections

    contracts = {c.physical_name: c for c in load_contracts(settings.estate.contracts) if c.status != "retired"}
    projections = load_estate_projections(settings.estate)
    select_targets(projections, contracts, tables)  # unknown names fail before any connection is made
    backend = open_reporting(settings)
    try:
        def open_for(service: str) -> SourceReader:
            if service not in settings.estate.service_names:
                raise ReconcileError(f"no database known for service {service!r} in {settings.estate.path}")
            try:
                url = settings.service_url(service)
            except LookupError as exc:
                raise ReconcileError(str(exc)) from exc
            try:
                return open_source(url)
            except Exception as exc:  # noqa: BLE001 - one line naming the service; detail in the log
                svc = settings.estate.service(service)
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ReconcileError(f"service {service}: cannot connect to {svc.host}:{svc.port}/{svc.database} "
                                     f"as {svc.reader.user}: {first}") from exc

        return reconcile_tables(projections, contracts, backend, open_for, tables, show)
    finally:
        backend.close()


def exit_code(results: Iterable[TableReconciliation]) -> int:
    """0: every reconciled table matches its source; 1: any difference; 2: a table could not be reconciled."""
    code = 0
    for r in results:
        if r.error is not None:
            return 2
        if r.differences:
            code = 1
    return code
