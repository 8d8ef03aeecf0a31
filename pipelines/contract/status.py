"""`reporting contract status`: every contract version, its lifecycle and how its table is doing.

Per contract version (`<table>_v<major>`): status (active, deprecated...) and deprecation date from the
contract; from the reporting database: live row count (soft-deleted rows excluded), newest `_source_ts`,
and freshness against the contract's objective. Freshness is the age of the newest change applied to the
table: `_pipeline.table_status.newest_source_ts` when the pipeline has recorded it, else the table's own
max(`_source_ts`). A source that simply has no new changes also ages, so "stale" means "look": lag and
dead letters (`reporting status`) and `reporting reconcile` tell whether anything is actually missing.

`build_status` is pure (contracts + facts read from the database + now); `contract_status(settings)`
reads the facts (DuckDB read-only: fails while `reporting stream` holds the file).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipelines.contract.ddl import qualified_name
from pipelines.contract.model import Contract

__all__ = ["COLUMNS", "ContractStatus", "TableFacts", "build_status", "contract_status", "read_facts",
           "render_status", "status_command", "status_rows"]


@dataclass(frozen=True)
class TableFacts:
    """What the reporting database says about one contract table."""

    exists: bool
    live_rows: int | None = None
    deleted_rows: int | None = None
    newest_source_ts: dt.datetime | None = None
    """max(_source_ts) over the table (including soft-deleted rows: a delete is a change too)."""
    pipeline_newest_source_ts: dt.datetime | None = None
    """_pipeline.table_status.newest_source_ts, when present."""
    last_applied_at: dt.datetime | None = None
    last_error: str | None = None
    backfill_requested_at: dt.datetime | None = None
    """When the pipeline asked for a snapshot to fill this table (apply/backfill.py), if it did."""
    backfill_source_rows: int | None = None
    """The source table's rows at that moment: the table is backfilled once it holds as many."""


@dataclass(frozen=True)
class ContractStatus:
    table: str
    """Physical name, `<table>_v<major>` in schema `reporting`."""
    version: str
    owner_service: str
    status: str
    """The contract's lifecycle status: active, deprecated, retired, draft, proposed."""
    deprecation_date: dt.date | None
    days_to_deprecation: int | None
    """Negative once the date has passed (the table may then be dropped)."""
    exists: bool
    live_rows: int | None
    deleted_rows: int | None
    newest_source_ts: dt.datetime | None
    last_applied_at: dt.datetime | None
    freshness_objective_seconds: int
    age_seconds: float | None
    """Age of the newest applied change (now - newest source commit time)."""
    freshness: str
    """'fresh' (age within the objective), 'stale', 'unknown' (no change applied yet), 'missing' (no table)."""
    last_error: str | None = None
    backfill: str | None = None
    """'backfilling N of M rows since T', 'backfilled (requested T)', or None (never needed)."""


def build_status(contracts: Iterable[Contract], facts: Mapping[str, TableFacts], now: dt.datetime
                 ) -> list[ContractStatus]:
    """Combine contracts and the facts read from the reporting DB (pure). Sorted by table, then major."""
    out = []
    for c in sorted(contracts, key=lambda c: (c.table, c.major)):
        f = facts.get(c.physical_name, TableFacts(exists=False))
        newest = max((t for t in (f.pipeline_newest_source_ts, f.newest_source_ts) if t is not None), default=None)
        age = (now - newest).total_seconds() if newest is not None else None
        if not f.exists:
            freshness = "missing"
        elif age is None:
            freshness = "unknown"
        else:
            freshness = "fresh" if age <= c.freshness_seconds else "stale"
        days = (c.deprecation_date - now.date()).days if c.deprecation_date else None
        backfill = None
        if f.backfill_requested_at is not None:
            have = (f.live_rows or 0) + (f.deleted_rows or 0)
            since = f.backfill_requested_at.isoformat(timespec="seconds")
            if f.backfill_source_rows is not None and have < f.backfill_source_rows:
                backfill = f"backfilling {have:,} of {f.backfill_source_rows:,} rows since {since}"
            else:
                backfill = f"backfilled (requested {since})"
        out.append(ContractStatus(
            table=c.physical_name, version=c.version, owner_service=c.owner_service, status=c.status,
            deprecation_date=c.deprecation_date, days_to_deprecation=days, exists=f.exists,
            live_rows=f.live_rows, deleted_rows=f.deleted_rows, newest_source_ts=newest,
            last_applied_at=f.last_applied_at, freshness_objective_seconds=c.freshness_seconds,
            age_seconds=age, freshness=freshness, last_error=f.last_error, backfill=backfill))
    return out


def _exists(backend, schema: str, table: str) -> bool:
    rows = backend.query("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                         (schema, table))
    return bool(rows and rows[0][0])


def read_facts(backend, contracts: Iterable[Contract]) -> dict[str, TableFacts]:
    """Row counts, newest `_source_ts` and `_pipeline.table_status` per contract table (read-only queries)."""
    pipeline: dict[str, tuple] = {}
    if _exists(backend, "_pipeline", "table_status"):
        for name, newest, applied, error in backend.query(
                "SELECT physical_name, newest_source_ts, last_applied_at, last_error FROM _pipeline.table_status"):
            pipeline[name] = (newest, applied, error)
    backfills: dict[str, tuple] = {}
    if _exists(backend, "_pipeline", "backfills"):
        for name, requested, rows in backend.query(
                "SELECT physical_name, requested_at, source_rows FROM _pipeline.backfills"):
            backfills[name] = (requested, rows)
    facts = {}
    for c in contracts:
        if not _exists(backend, "reporting", c.physical_name):
            facts[c.physical_name] = TableFacts(exists=False)
            continue
        if c.delete_semantics == "soft":
            live, total, newest = backend.query(
                'SELECT count(*) FILTER (WHERE "_deleted_at" IS NULL), count(*), max("_source_ts") '
                f"FROM {qualified_name(c)}")[0]
            deleted = total - live
        else:
            live, newest = backend.query(f'SELECT count(*), max("_source_ts") FROM {qualified_name(c)}')[0]
            deleted = None
        p_newest, applied, error = pipeline.get(c.physical_name, (None, None, None))
        requested, source_rows = backfills.get(c.physical_name, (None, None))
        facts[c.physical_name] = TableFacts(True, int(live), deleted, newest, p_newest, applied, error,
                                            requested, source_rows)
    return facts


def contract_status(settings, now: dt.datetime | None = None) -> list[ContractStatus]:
    """Every contract version (reporting_schema/) with its table's row count and freshness.

    Raises pipelines.reconcile.ReconcileError (one line) when the reporting database cannot be opened.
    """
    from pipelines.contract.model import load_contracts
    from pipelines.reconcile.run import open_reporting
    contracts = load_contracts(settings.estate.contracts)
    backend = open_reporting(settings)
    try:
        facts = read_facts(backend, contracts)
    finally:
        backend.close()
    return build_status(contracts, facts, now or dt.datetime.now(dt.UTC))


def _age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.0f}d"


COLUMNS = ("table", "version", "owner_service", "status", "deprecation_date", "days_to_deprecation", "exists",
           "live_rows", "deleted_rows", "newest_source_ts", "last_applied_at", "age_seconds",
           "freshness_objective_seconds", "freshness", "last_error", "backfill")
"""Stable column names of `contract status --format csv|json` (the fields of ContractStatus)."""


def status_rows(statuses: Iterable[ContractStatus]) -> list[tuple]:
    """One row of raw values per contract version, in COLUMNS order."""
    return [tuple(getattr(s, c) for c in COLUMNS) for s in statuses]


def _cells(row) -> list:
    from rich.text import Text

    s = dict(zip(COLUMNS, row, strict=True))
    colours = {"fresh": "green", "stale": "bold red", "unknown": "yellow", "missing": "bold red"}
    status = Text(s["status"], style="yellow" if s["status"] == "deprecated" else
                  "red" if s["status"] == "retired" else "")
    deprecation = ""
    if s["deprecation_date"]:
        left = s["days_to_deprecation"]
        deprecation = f"{s['deprecation_date']} ({left} days left)" if left >= 0 else \
            f"{s['deprecation_date']} (passed {-left} days ago)"
    rows = "" if s["live_rows"] is None else f"{s['live_rows']:,}"
    if s["deleted_rows"]:
        rows += f" (+{s['deleted_rows']:,} deleted)"
    newest = s["newest_source_ts"]
    newest = newest.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ") if newest else ""
    fresh = Text(s["freshness"] + (" (last error)" if s["last_error"] else "")
                 + (f"; {s['backfill']}" if s["backfill"] else ""), style=colours[s["freshness"]])
    return [s["table"], s["version"], s["owner_service"], status, deprecation, rows, newest, _age(s["age_seconds"]),
            _age(s["freshness_objective_seconds"]), fresh]


def render_status(statuses: Iterable[ContractStatus]):
    """A rich renderable: one line per contract version (a block per version when the width is too small;
    values are never cut)."""
    from pipelines.output import View, renderable

    view = View(["table", "version", "owner", "status", "deprecation", "live rows", "newest _source_ts", "age",
                 "objective", "freshness"], _cells, frozenset({"live rows", "age", "objective"}))
    return renderable(COLUMNS, status_rows(statuses), title="Reporting contracts", view=view)


def status_command(settings, console=None, fmt="table", stream=None, err=None) -> int:
    """`reporting contract status`: print the table (on `console`) or csv/json records (on `stream`,
    default stdout); 0, or 2 when the reporting database cannot be opened.

    Informational: stale or missing tables do not change the exit code (freshness checks and
    `reporting reconcile` are the gates)."""
    import sys

    from rich.text import Text

    from pipelines.output import Format, make_console, write_rows
    from pipelines.reconcile.run import ReconcileError

    fmt = Format(getattr(fmt, "value", fmt))
    try:
        statuses = contract_status(settings)
    except ReconcileError as exc:
        (err or make_console(stderr=True, soft_wrap=True)).print(Text(f"error: {exc}", style="bold red"))
        return 2
    if fmt is Format.table:
        (console or make_console()).print(render_status(statuses))
    else:
        write_rows(COLUMNS, status_rows(statuses), fmt, stream or sys.stdout)
    return 0
