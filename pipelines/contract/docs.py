"""A Markdown catalog of the reporting contracts, for BI users. Pure (returns text).

Deterministic (no timestamps), so the rendered catalog can be committed or diffed.
"""

from __future__ import annotations

from pipelines.contract.ddl import DELETED_AT, PROVENANCE_COLUMNS, SCHEMA
from pipelines.contract.model import Column, Contract


def _cell(text: object) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


def _status(c: Contract, latest: dict[str, int]) -> str:
    if c.status in ("deprecated", "retired"):
        text = f"{c.status} (may be dropped after {c.deprecation_date})"
        if latest[c.table] > c.major:
            text += f", use {c.table}_v{latest[c.table]}"
        return text
    return c.status


def _column_row(col: Column) -> str:
    flags = ", ".join(f for f, on in (("PK", col.primary_key), ("required", col.required)) if on) or "nullable"
    values = ", ".join(f"`{v}`" for v in col.enum) if col.enum else ""
    return (f"| `{col.name}` | `{col.physical_type}` | {flags} | {col.classification} | "
            f"{_cell(values)} | {_cell(col.description)} |")


def render_catalog(contracts: list[Contract]) -> str:
    """The Markdown catalog: an index of tables, then per table its grain, keys, owner and columns."""
    contracts = sorted(contracts, key=lambda c: (c.table, c.major))
    latest: dict[str, int] = {}
    for c in contracts:
        latest[c.table] = max(latest.get(c.table, 0), c.major)
    out = [
        "# Reporting data catalog",
        "",
        f"Tables in schema `{SCHEMA}` of the reporting database, generated from `reporting_schema/`. Each is a "
        "versioned contract: a breaking change ships as a new major table (`<table>_v<N+1>`) next to the old one, "
        "which stays populated until its deprecation date.",
        "",
        "| table | version | status | grain | owner | freshness |",
        "|---|---|---|---|---|---|",
    ]
    for c in contracts:
        out.append(f"| [`{c.physical_name}`](#{c.physical_name}) | {c.version} | {_cell(_status(c, latest))} | "
                   f"{_cell(c.grain)} | {c.owner_service} | {_duration(c.freshness_seconds)} |")
    for c in contracts:
        deletes = ("soft: deleted rows stay, with `_deleted_at` set; filter `_deleted_at IS NULL` for current rows"
                   if c.delete_semantics == "soft" else "hard: deleted source rows are removed")
        out += [
            "",
            f"## {c.physical_name}",
            "",
            _cell(c.description),
            "",
            f"- **Table:** `{SCHEMA}.{c.physical_name}` (contract {c.table} v{c.version})",
            f"- **Grain:** {_cell(c.grain)}",
            f"- **Primary key:** {', '.join(f'`{k}`' for k in c.primary_key)}",
            f"- **Owner:** {c.owner_service} service",
            f"- **Status:** {_cell(_status(c, latest))}",
            f"- **Freshness objective:** changes visible within {_duration(c.freshness_seconds)}",
            f"- **Deletes:** {deletes}",
            "",
            "| column | type | constraints | classification | allowed values | description |",
            "|---|---|---|---|---|---|",
            *(_column_row(col) for col in c.columns),
        ]
    out += [
        "",
        "## Provenance columns (every table)",
        "",
        "| column | type | description |",
        "|---|---|---|",
        *(f"| `{col.name}` | `{col.physical_type}` | {_cell(col.description)} |"
          for col in (*PROVENANCE_COLUMNS, DELETED_AT)),
        "",
        "`_deleted_at` exists only on tables with soft deletes. Classification: `public` may be shared "
        "freely inside the company, `internal` stays within operations teams, `pii` is personal data "
        "(access restricted, never exported).",
        "",
    ]
    return "\n".join(out)
