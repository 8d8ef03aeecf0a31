"""dbt sources generated from the reporting contracts, and the check that they still agree. Pure + a CLI.

`dbt_project/models/staging/__sources.yml` declares the source `reporting`: one table per LIVE contract
table (the latest major whose status is active or deprecated; `orders` reads `orders_v2`), with the
contract's columns and types, provenance columns, dbt tests derived from the contract (not_null for
required columns, accepted_values for enums, unique primary key) and source freshness from
`_ingested_at` against the contract's freshness objective.

The file is generated (`python -m pipelines.dbt_sources`) and committed; `--check` (and a unit test)
fails when it drifts from the contracts, naming the table and column.

Operational warning: freshness is measured on `max(_ingested_at)`, so a table whose source simply
had no changes looks stale; read a freshness warning together with the pipeline's lag.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from pipelines.contract.ddl import SCHEMA, provenance_columns
from pipelines.contract.model import Column, Contract, load_contracts

SOURCE_NAME = "reporting"
LIVE_STATUSES = ("active", "deprecated")
"""Statuses of a contract table the pipeline populates (proposed/draft are not there yet, retired may be gone)."""
ERROR_AFTER_FACTOR = 2
"""Source freshness errors after this multiple of the contract's freshness objective (warns at 1x)."""
OPS = ("r", "c", "u", "d")
HEADER = (
    "# GENERATED from reporting_schema/ by `python -m pipelines.dbt_sources`: do not edit by hand.\n"
    "# The live contract tables (latest active/deprecated major of each table) as the dbt source `reporting`.\n"
    "# CI runs `python -m pipelines.dbt_sources --check` (and tests/unit/dbt) so drift fails the build.\n"
)


def default_path() -> Path:
    """The committed sources file: `dbt_project/models/staging/__sources.yml`."""
    from pipelines.settings import REPO_ROOT

    return REPO_ROOT / "dbt_project" / "models" / "staging" / "__sources.yml"


def live_contracts(contracts: Iterable[Contract]) -> list[Contract]:
    """The latest live major of each table, sorted by table name."""
    latest: dict[str, Contract] = {}
    for c in contracts:
        if c.status in LIVE_STATUSES and (c.table not in latest or c.major > latest[c.table].major):
            latest[c.table] = c
    return [latest[t] for t in sorted(latest)]


def _period(seconds: int) -> dict[str, Any]:
    """A dbt freshness threshold (`count` + `period`) no shorter than `seconds`."""
    if seconds % 86400 == 0:
        return {"count": seconds // 86400, "period": "day"}
    if seconds % 3600 == 0:
        return {"count": seconds // 3600, "period": "hour"}
    return {"count": -(-seconds // 60), "period": "minute"}


def _column_tests(col: Column, contract: Contract) -> list[Any]:
    tests: list[Any] = []
    if col.required:
        tests.append("not_null")
    if contract.primary_key == (col.name,):
        tests.append("unique")
    if col.enum:
        tests.append({"accepted_values": {"arguments": {"values": list(col.enum)}}})
    if col.name == "_op":
        tests.append({"accepted_values": {"arguments": {"values": list(OPS)}}})
    return tests


def _column(col: Column, contract: Contract) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": col.name,
        "data_type": col.physical_type,
        "description": col.description,
        "config": {"meta": {"classification": col.classification, "required": col.required}},
    }
    tests = _column_tests(col, contract)
    if tests:
        entry["data_tests"] = tests
    return entry


def _table(contract: Contract) -> dict[str, Any]:
    meta = {
        "contract_version": contract.version,
        "owner_service": contract.owner_service,
        "status": contract.status,
        "grain": contract.grain,
        "primary_key": list(contract.primary_key),
        "delete_semantics": contract.delete_semantics,
        "freshness_objective_seconds": contract.freshness_seconds,
    }
    if contract.deprecation_date is not None:
        meta["deprecation_date"] = contract.deprecation_date.isoformat()
    table: dict[str, Any] = {
        "name": contract.table,
        "identifier": contract.physical_name,
        "description": f"{contract.description} Grain: {contract.grain}",
        "config": {
            "loaded_at_field": "_ingested_at",
            "freshness": {
                "warn_after": _period(contract.freshness_seconds),
                "error_after": _period(contract.freshness_seconds * ERROR_AFTER_FACTOR),
            },
            "meta": meta,
        },
    }
    if len(contract.primary_key) > 1:
        table["data_tests"] = [
            {"unique_combination_of_columns": {"arguments": {"combination_of_columns": list(contract.primary_key)}}}
        ]
    table["columns"] = [_column(col, contract) for col in contract.columns + provenance_columns(contract)]
    return table


def sources_document(contracts: Iterable[Contract]) -> dict[str, Any]:
    """The sources file as data (what `render_sources` dumps)."""
    return {
        "version": 2,
        "sources": [
            {
                "name": SOURCE_NAME,
                "description": (
                    "The reporting contract tables (schema reporting), fed by CDC from the services. "
                    "Each table here is the latest live major of its contract; the physical table is "
                    "<table>_v<major>."
                ),
                "schema": SCHEMA,
                "tables": [_table(c) for c in live_contracts(contracts)],
            }
        ],
    }


class _Dumper(yaml.SafeDumper):
    """Block style, with list items indented under their key (dbt/jaffle-shop look)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:  # noqa: ARG002
        super().increase_indent(flow, False)


def render_sources(contracts: Iterable[Contract]) -> str:
    """The full text of `__sources.yml` for `contracts` (deterministic: same contracts, same bytes)."""
    body = yaml.dump(sources_document(contracts), Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=110)
    return HEADER + "\n" + body


def _by_name(items: Any) -> dict[str, Any]:
    return {i.get("name"): i for i in items or [] if isinstance(i, dict)}


def _compare_table(name: str, want: dict[str, Any], have: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if have.get("identifier") != want["identifier"]:
        problems.append(f"{name}: identifier is {have.get('identifier')!r}, the live contract table is "
                        f"{want['identifier']!r}")
    for key in ("description", "config", "data_tests"):
        if have.get(key) != want.get(key):
            problems.append(f"{name}: table {key} differs from contract {want['identifier']}")
    want_cols, have_cols = _by_name(want["columns"]), _by_name(have.get("columns"))
    for col in want_cols:
        if col not in have_cols:
            problems.append(f"{name}.{col}: column missing from the sources file (contract {want['identifier']})")
    for col in have_cols:
        if col not in want_cols:
            problems.append(f"{name}.{col}: column not in contract {want['identifier']}")
    for col, spec in want_cols.items():
        got = have_cols.get(col)
        if got is None:
            continue
        for key in sorted(set(spec) | set(got)):
            if spec.get(key) != got.get(key):
                problems.append(f"{name}.{col}: {key} is {got.get(key)!r}, contract {want['identifier']} says "
                                f"{spec.get(key)!r}")
    if not problems and list(want_cols) != list(have_cols):
        problems.append(f"{name}: columns are not in contract order")
    return problems


def check_sources(path: Path | str, contracts: Sequence[Contract]) -> list[str]:
    """Differences between the sources file at `path` and the contracts (empty list: in sync).

    Each message names the table (and column) that drifted; formatting-only drift is reported too,
    since the committed file must be byte-identical to the rendering.
    """
    path = Path(path)
    if not path.is_file():
        return [f"{path}: sources file missing (run `python -m pipelines.dbt_sources`)"]
    text = path.read_text(encoding="utf-8")
    try:
        have_doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        return [f"{path}: not valid YAML ({str(exc).splitlines()[0]})"]
    want_doc = sources_document(contracts)
    want_tables = _by_name(want_doc["sources"][0]["tables"])
    have_source = _by_name(have_doc.get("sources") if isinstance(have_doc, dict) else None).get(SOURCE_NAME)
    if have_source is None:
        return [f"{path}: no source named {SOURCE_NAME!r}"]
    problems: list[str] = []
    if have_source.get("schema") != SCHEMA:
        problems.append(f"source {SOURCE_NAME}: schema is {have_source.get('schema')!r}, expected {SCHEMA!r}")
    have_tables = _by_name(have_source.get("tables"))
    for name, want in want_tables.items():
        if name not in have_tables:
            problems.append(f"{name}: live contract table {want['identifier']} missing from the sources file")
        else:
            problems.extend(_compare_table(name, want, have_tables[name]))
    for name, have in have_tables.items():
        if name not in want_tables:
            problems.append(f"{name}: source table {have.get('identifier', name)!r} is not a live contract table")
    if not problems and text != render_sources(contracts):
        problems.append(f"{path}: content matches the contracts but the text differs from the rendering")
    return [f"{path.name}: {p}" if not p.startswith(str(path)) else p for p in problems]


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pipelines.dbt_sources [--check]`: write the sources file, or check it (exit 1 on drift)."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.dbt_sources", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on drift")
    parser.add_argument("--estate", type=Path, default=None,
                        help="estate file whose contracts and dbt project to use (default: REPORTING_ESTATE or the "
                             "bundled reporting.yaml)")
    parser.add_argument("--contracts", type=Path, default=None, help="contract folder (default: the estate's)")
    parser.add_argument("--path", type=Path, default=None, help="sources file (default: the estate's dbt project's)")
    args = parser.parse_args(argv)
    from pipelines.config.load import load_estate

    estate = load_estate(args.estate)
    contracts = load_contracts(args.contracts or estate.contracts)
    path = args.path or estate.dbt_project / "models" / "staging" / "__sources.yml"
    if args.check:
        problems = check_sources(path, contracts)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print(f"{len(problems)} difference(s); regenerate with `python -m pipelines.dbt_sources`", file=sys.stderr)
            return 1
        print(f"{path}: in sync with {len(live_contracts(contracts))} live contract tables")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_sources(contracts), encoding="utf-8")
    print(f"wrote {path} ({len(live_contracts(contracts))} tables)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
