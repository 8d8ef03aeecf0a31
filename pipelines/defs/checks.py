"""Asset checks on the contract tables: conformance, freshness, dead letters, reconciliation.

The rules are pure functions (`conformance_problems`, `freshness_verdict`, `dead_letter_summary`) tested
directly; the check definitions only read the reporting database and turn verdicts into results.
Every check that reads the reporting DB is in the `reporting_db_writer` pool: with DuckDB, reading
while another process writes the file is impossible, so checks take their turn like writers do.
"""


import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import dagster as dg

from pipelines.config.model import Estate
from pipelines.contract.ddl import provenance_columns
from pipelines.contract.model import Column, Contract
from pipelines.defs.resources import POOL, ReportingResource

CONFORMANCE_CHECK = "contract_conformance"
FRESHNESS_CHECK = "freshness_objective"
DEAD_LETTER_CHECK = "no_dead_letters"
RECONCILE_CHECK = "matches_source"


def table_key(physical_name: str) -> dg.AssetKey:
    return dg.AssetKey(["reporting", physical_name])


# --------------------------------------------------------------------------- conformance (pure)
@dataclass(frozen=True)
class ActualColumn:
    """One column as information_schema.columns describes it (DuckDB or PostgreSQL)."""

    name: str
    data_type: str
    char_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    nullable: bool = True


_ACTUAL_ALIASES = {
    "character varying": "varchar", "numeric": "decimal", "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp", "time without time zone": "time", "double precision": "double",
    "jsonb": "json", "int": "integer", "int4": "integer", "int8": "bigint", "int2": "smallint", "bool": "boolean",
    "float8": "double", "string": "varchar",
}
_PARAMS_RE = re.compile(r"^(?P<name>[a-z ]+?)\s*(?:\((?P<a>\d+)\s*(?:,\s*(?P<b>\d+))?\))?$")


def actual_type(col: ActualColumn) -> tuple[str, int | None, int | None, int | None]:
    """(base, length, precision, scale) of a reported column; DuckDB spells `DECIMAL(12,2)` and
    `VARCHAR` (it keeps no length), PostgreSQL `numeric` + numeric_precision and `character varying`."""
    m = _PARAMS_RE.match(" ".join(col.data_type.lower().split()))
    name = m["name"].strip() if m else col.data_type.lower()
    base = _ACTUAL_ALIASES.get(name, name)
    a = int(m["a"]) if m and m["a"] else None
    b = int(m["b"]) if m and m["b"] else None
    if base == "varchar":
        return base, col.char_length if col.char_length is not None else a, None, None
    if base == "decimal":
        return base, None, a if a is not None else col.precision, b if b is not None else col.scale
    return base, None, None, None


def _expected_text(col: Column) -> str:
    return col.physical_type + (" not null" if col.required else "")


def conformance_problems(contract: Contract, actual: Sequence[ActualColumn]) -> tuple[list[str], list[str]]:
    """(problems, extra columns) of the physical table against the contract plus provenance columns.

    A problem is a missing column, another type, another varchar length or decimal precision/scale
    (when the database reports one), or other nullability. Extra columns are listed separately: they
    break no reader, but nothing in the contract explains them.
    """
    where = contract.physical_name
    by_name = {c.name: c for c in actual}
    problems: list[str] = []
    expected = list(contract.columns) + list(provenance_columns(contract))
    for col in expected:
        got = by_name.get(col.name)
        if got is None:
            problems.append(f"{where}.{col.name}: missing (contract: {_expected_text(col)})")
            continue
        base, length, precision, scale = actual_type(got)
        if base != col.base_type:
            problems.append(f"{where}.{col.name}: type is {got.data_type.lower()}, contract says {col.physical_type}")
        elif base == "varchar" and length is not None and length != col.length:
            problems.append(f"{where}.{col.name}: varchar({length}), contract says {col.physical_type}")
        elif base == "decimal" and (precision, scale) != (col.precision, col.scale):
            problems.append(f"{where}.{col.name}: decimal({precision},{scale}), contract says {col.physical_type}")
        if col.required and got.nullable:
            problems.append(f"{where}.{col.name}: nullable, contract says required")
        elif not col.required and not got.nullable:
            problems.append(f"{where}.{col.name}: NOT NULL, contract says nullable")
    known = {c.name for c in expected}
    extra = [f"{where}.{c.name}: not in the contract" for c in actual if c.name not in known]
    return problems, extra


def read_actual_columns(backend, physical_name: str, schema: str = "reporting") -> list[ActualColumn]:
    rows = backend.query(
        "SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale, is_nullable "
        "FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, physical_name])
    return [ActualColumn(n, t, int(cl) if cl is not None else None, int(p) if p is not None else None,
                         int(s) if s is not None else None, str(nl).upper() in ("YES", "TRUE"))
            for n, t, cl, p, s, nl in rows]


def conformance_result(contract: Contract, actual: Sequence[ActualColumn]) -> dg.AssetCheckResult:
    key = table_key(contract.physical_name)
    if not actual:
        return dg.AssetCheckResult(asset_key=key, check_name=CONFORMANCE_CHECK, passed=False,
                                   description=f"reporting.{contract.physical_name} does not exist",
                                   metadata={"problems": 1})
    problems, extra = conformance_problems(contract, actual)
    listing = "\n".join(f"- {p}" for p in problems + extra) or "every column matches"
    return dg.AssetCheckResult(
        asset_key=key, check_name=CONFORMANCE_CHECK, passed=not problems and not extra,
        severity=dg.AssetCheckSeverity.ERROR if problems else dg.AssetCheckSeverity.WARN,
        description=(problems + extra)[0] if problems or extra else f"{len(actual)} columns match contract "
                                                                    f"{contract.table} v{contract.version}",
        metadata={"problems": len(problems), "extra_columns": len(extra), "columns": len(actual),
                  "contract_version": contract.version, "details": dg.MetadataValue.md(listing)})


# --------------------------------------------------------------------------- freshness (pure)
def freshness_verdict(objective_s: int, newest_source_ts: dt.datetime | None,
                      now: dt.datetime | None = None) -> tuple[bool, float | None, str]:
    """(passed, age in seconds, description): the newest applied change must be younger than the
    contract's freshness objective. Note: a service with no changes looks stale too; read the
    result together with consumer lag."""
    now = now or dt.datetime.now(dt.UTC)
    if newest_source_ts is None:
        return False, None, "no change applied yet (is a projection feeding this table? has ingest run?)"
    if newest_source_ts.tzinfo is None:
        newest_source_ts = newest_source_ts.replace(tzinfo=dt.UTC)
    age = (now - newest_source_ts).total_seconds()
    verdict = "within" if age <= objective_s else "beyond"
    return age <= objective_s, age, (f"newest change is {age:,.0f}s old, {verdict} the objective of "
                                     f"{objective_s}s")


def read_newest_source_ts(backend) -> dict[str, dt.datetime | None]:
    return {name: ts for name, ts in backend.query(
        "SELECT physical_name, newest_source_ts FROM _pipeline.table_status")}


def freshness_result(contract: Contract, newest: dt.datetime | None, now: dt.datetime | None = None
                     ) -> dg.AssetCheckResult:
    passed, age, text = freshness_verdict(contract.freshness_seconds, newest, now)
    meta: dict = {"objective_s": contract.freshness_seconds}
    if age is not None:
        meta["age_s"] = round(age, 1)
        meta["newest_source_ts"] = str(newest)
    return dg.AssetCheckResult(asset_key=table_key(contract.physical_name), check_name=FRESHNESS_CHECK,
                               passed=passed, description=text, metadata=meta,
                               severity=dg.AssetCheckSeverity.WARN if newest is None else dg.AssetCheckSeverity.ERROR)


# --------------------------------------------------------------------------- dead letters (pure + query)
@dataclass(frozen=True)
class DeadLetterSummary:
    count: int
    newest_reason: str
    newest_at: object


def dead_letter_summary(rows: Iterable[tuple[str | None, str | None, str, str, object]],
                        feeds: Mapping[str, Sequence[str]]) -> dict[str, DeadLetterSummary]:
    """Pending dead letters per contract table from rows (target_table, source_table, topic, reason,
    first_seen_at), ordered oldest first. A dead letter without a target table (it failed before
    projection) counts for every table its source table or topic feeds (`feeds`)."""
    counts: dict[str, int] = {}
    newest: dict[str, tuple[str, object]] = {}
    for target, source, topic, reason, seen in rows:
        tables = [target] if target else list(feeds.get(source or "", feeds.get(topic, [])))
        for t in tables:
            counts[t] = counts.get(t, 0) + 1
            newest[t] = (reason, seen)
    return {t: DeadLetterSummary(n, newest[t][0], newest[t][1]) for t, n in counts.items()}


def read_dead_letters(backend, feeds: Mapping[str, Sequence[str]]) -> dict[str, DeadLetterSummary]:
    rows = backend.query("SELECT target_table, source_table, topic, reason, first_seen_at FROM _pipeline.dead_letters "
                         "WHERE replayed_at IS NULL ORDER BY id")
    return dead_letter_summary(rows, feeds)


def projection_feeds(estate: Estate) -> dict[str, list[str]]:
    """Source table and topic → the contract tables its projection feeds (the estate's projections)."""
    from pipelines.projection import load_estate_projections

    feeds: dict[str, list[str]] = {}
    for topic, tp in load_estate_projections(estate).items():
        names = [t.physical_name for t in tp.targets]
        feeds[topic] = names
        feeds[tp.source_table] = names
    return feeds


def dead_letter_metadata(summary: DeadLetterSummary | None) -> dict:
    if summary is None:
        return {"dead_letters": 0}
    return {"dead_letters": summary.count, "newest_reason": summary.newest_reason[:2000],
            "newest_at": str(summary.newest_at)}


def dead_letter_description(physical_name: str, summary: DeadLetterSummary | None) -> str:
    if summary is None:
        return f"no pending dead letters for {physical_name}"
    return (f"{summary.count} pending dead letter(s) for {physical_name}; newest: {summary.newest_reason}"
            f" (list: reporting dlq list --table {physical_name}; after a fix run replay_dead_letters_job)")[:1000]


def dead_letter_evaluation(physical_name: str, summary: DeadLetterSummary | None) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(asset_key=table_key(physical_name), check_name=DEAD_LETTER_CHECK,
                                   passed=summary is None, metadata=dead_letter_metadata(summary),
                                   description=dead_letter_description(physical_name, summary))


# --------------------------------------------------------------------------- reconciliation
def reconcile_metadata(result) -> dict:
    meta: dict = {"status": result.status, "source_table": result.source_table, "source_rows": result.source_rows,
                  "reporting_rows": result.reporting_rows, "missing": result.missing, "extra": result.extra,
                  "different": result.different, "invalid": result.invalid, "seconds": round(result.seconds, 2)}
    samples = []
    for kind in ("missing", "extra", "different", "invalid"):
        for s in result.samples(kind)[:5]:
            cols = "; ".join(f"{c.column}: expected {c.expected}, stored {c.actual}" for c in s.columns)
            samples.append(f"- {kind}: {s.key_text}{' — ' + cols if cols else ''}{' — ' + s.reason if s.reason else ''}")
    if samples:
        meta["samples"] = dg.MetadataValue.md("\n".join(samples))
    return meta


def reconcile_description(result) -> str:
    if result.error is not None:
        return f"{result.table}: not reconciled: {result.error}"
    if result.differences == 0:
        return f"{result.table}: {result.reporting_rows} live rows match {result.source_table}"
    return (f"{result.table}: {result.differences} difference(s) with {result.source_table} (missing {result.missing}, "
            f"extra {result.extra}, different {result.different}, invalid {result.invalid})")


# --------------------------------------------------------------------------- definitions
def build_contract_checks(contracts: list[Contract], reconcilable: Iterable[str]) -> list[dg.AssetChecksDefinition]:
    """The multi-asset checks (one op each, subsettable: one table's check can run alone)."""
    by_name = {c.physical_name: c for c in contracts}

    def selected(context: dg.AssetCheckExecutionContext, check: str) -> list[Contract]:
        keys = context.selected_asset_check_keys
        return [c for c in contracts if dg.AssetCheckKey(table_key(c.physical_name), check) in keys]

    @dg.multi_asset_check(
        specs=[dg.AssetCheckSpec(CONFORMANCE_CHECK, asset=table_key(c.physical_name),
                                 description="Columns, types and nullability in the reporting DB match the contract "
                                             "(information_schema).") for c in contracts],
        name="contract_conformance", can_subset=True, pool=POOL)
    def contract_conformance(context: dg.AssetCheckExecutionContext, reporting: ReportingResource):
        with reporting.reader() as backend:
            for c in selected(context, CONFORMANCE_CHECK):
                yield conformance_result(c, read_actual_columns(backend, c.physical_name))

    @dg.multi_asset_check(
        specs=[dg.AssetCheckSpec(FRESHNESS_CHECK, asset=table_key(c.physical_name),
                                 description=f"The newest applied change is younger than the contract's freshness "
                                             f"objective ({c.freshness_seconds}s).") for c in contracts],
        name="freshness_objective", can_subset=True, pool=POOL)
    def freshness_objective(context: dg.AssetCheckExecutionContext, reporting: ReportingResource):
        with reporting.reader() as backend:
            newest = read_newest_source_ts(backend)
        for c in selected(context, FRESHNESS_CHECK):
            yield freshness_result(c, newest.get(c.physical_name))

    @dg.multi_asset_check(
        specs=[dg.AssetCheckSpec(DEAD_LETTER_CHECK, asset=table_key(c.physical_name),
                                 description="No pending dead letters for this table (the dead-letter sensor reports "
                                             "this check as soon as one arrives).") for c in contracts],
        name="no_dead_letters", can_subset=True, pool=POOL)
    def no_dead_letters(context: dg.AssetCheckExecutionContext, reporting: ReportingResource):
        settings = reporting.settings()
        with reporting.reader(settings) as backend:
            summary = read_dead_letters(backend, projection_feeds(settings.estate))
        for c in selected(context, DEAD_LETTER_CHECK):
            s = summary.get(c.physical_name)
            yield dg.AssetCheckResult(asset_key=table_key(c.physical_name), check_name=DEAD_LETTER_CHECK,
                                      passed=s is None, metadata=dead_letter_metadata(s),
                                      description=dead_letter_description(c.physical_name, s))

    checks = [contract_conformance, freshness_objective, no_dead_letters]
    fed = [n for n in reconcilable if n in by_name]
    if fed:
        @dg.multi_asset_check(
            specs=[dg.AssetCheckSpec(RECONCILE_CHECK, asset=table_key(n),
                                     description="Row count and per-row digest of the table equal the source table "
                                                 "projected like the pipeline does (pipelines.reconcile). Run after "
                                                 "ingest has caught up.") for n in fed],
            name="matches_source", can_subset=True, pool=POOL)
        def matches_source(context: dg.AssetCheckExecutionContext, reporting: ReportingResource):
            from pipelines.reconcile import ReconcileError, TableReconciliation, reconcile

            names = [n for n in fed if dg.AssetCheckKey(table_key(n), RECONCILE_CHECK)
                     in context.selected_asset_check_keys]
            try:
                results = reconcile(reporting.settings(), tables=names, show=5)
            except ReconcileError as exc:
                results = [TableReconciliation(n, error=str(exc)) for n in names]
            for r in results:
                context.log.info(reconcile_description(r))
                yield dg.AssetCheckResult(asset_key=table_key(r.table), check_name=RECONCILE_CHECK, passed=r.ok,
                                          metadata=reconcile_metadata(r), description=reconcile_description(r))

        checks.append(matches_source)
    return checks


def reconcilable_tables(estate: Estate) -> list[str]:
    """Contract tables a projection of the estate feeds (only those can be compared with a source)."""
    return sorted({n for names in projection_feeds(estate).values() for n in names})
