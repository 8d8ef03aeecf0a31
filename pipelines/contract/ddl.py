"""DDL for the physical contract tables, for DuckDB, PostgreSQL and DuckLake, from one model. Pure (returns SQL text).

DuckLake has no PRIMARY KEY/UNIQUE constraints: its tables are declared without one (key columns stay NOT NULL)
and the pipeline's writes keep keys unique themselves (MERGE on the key, one change per key per batch).

`reporting.<table>_v<major>` holds the contract columns plus provenance columns written by the
pipeline. Only identifiers that passed IDENTIFIER_RE are ever placed in SQL, and they are
double-quoted as well (reserved words such as `status` or `format` stay harmless).
"""

from __future__ import annotations

from typing import Literal

from pipelines.contract.model import Column, Contract
from pipelines.contract.sqltypes import LOGICAL_TYPES, PhysicalType, is_identifier

Dialect = Literal["duckdb", "postgres", "ducklake"]
DIALECTS: tuple[str, ...] = ("duckdb", "postgres", "ducklake")
SCHEMA = "reporting"


def _meta(name: str, base: str, required: bool, description: str, length: int | None = None) -> Column:
    ptype = PhysicalType(base, length=length)
    return Column(name=name, logical_type=LOGICAL_TYPES[base][0], physical_type=ptype.text, base_type=base,
                  length=length, precision=None, scale=None, required=required, primary_key=False,
                  classification="internal", description=description)


PROVENANCE_COLUMNS: tuple[Column, ...] = (
    _meta("_source_position", "bigint", True,
          "Sortable 64-bit encoding of the source position (LSN, binlog position) of the change; newer wins."),
    _meta("_source_ts", "timestamptz", False, "Commit time of the change in the source database."),
    _meta("_ingested_at", "timestamptz", True, "When the pipeline wrote the row to the reporting database."),
    _meta("_op", "varchar", True, "Last change applied: r (snapshot read), c (create), u (update), d (delete).", 1),
)
"""Provenance columns present on every contract table, in this order, after the contract columns."""

DELETED_AT = _meta("_deleted_at", "timestamptz", False,
                   "When the source row was deleted (soft delete semantics); null while it exists.")
"""Extra provenance column of tables whose deleteSemantics is soft."""


def provenance_columns(contract: Contract) -> tuple[Column, ...]:
    """The provenance columns of `contract`'s table (with `_deleted_at` when deletes are soft)."""
    return PROVENANCE_COLUMNS + ((DELETED_AT,) if contract.delete_semantics == "soft" else ())


def quote_ident(name: str) -> str:
    """Double-quote a validated identifier; ValueError for anything that is not a plain identifier."""
    if not is_identifier(name):
        raise ValueError(f"refusing to put {name!r} into SQL: not a plain SQL identifier")
    return f'"{name}"'


def sql_type(column: Column, dialect: Dialect) -> str:
    """The column's SQL type in `dialect` (varchar length and decimal precision kept)."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r} (supported: {', '.join(DIALECTS)})")
    base = column.base_type
    if base == "varchar":
        return f"VARCHAR({int(column.length)})"
    if base == "decimal":
        return f"DECIMAL({int(column.precision)},{int(column.scale)})"
    simple = {
        "smallint": "SMALLINT", "integer": "INTEGER", "bigint": "BIGINT", "boolean": "BOOLEAN",
        "text": "TEXT", "date": "DATE", "time": "TIME", "timestamp": "TIMESTAMP",
        "timestamptz": "TIMESTAMPTZ", "uuid": "UUID",
        "double": "DOUBLE PRECISION" if dialect == "postgres" else "DOUBLE",
        "json": "JSONB" if dialect == "postgres" else "JSON",
    }
    if base not in simple:
        raise ValueError(f"{column.name}: unsupported base type {base!r}")
    return simple[base]


def qualified_name(contract: Contract) -> str:
    """`"reporting"."<table>_v<major>"`, quoted."""
    return f"{quote_ident(SCHEMA)}.{quote_ident(contract.physical_name)}"


def create_table_sql(contract: Contract, dialect: Dialect) -> list[str]:
    """Idempotent statements creating the schema and the contract's physical table.

    Required contract columns are NOT NULL; the primary key is the contract's (none on DuckLake). Existing tables are
    left untouched (IF NOT EXISTS): a compatible minor change that adds a column needs a migration,
    which is not generated here.
    """
    lines = []
    for col in contract.columns + provenance_columns(contract):
        null = " NOT NULL" if col.required else ""
        lines.append(f"  {quote_ident(col.name)} {sql_type(col, dialect)}{null}")
    if dialect != "ducklake":
        lines.append(f"  PRIMARY KEY ({', '.join(quote_ident(k) for k in contract.primary_key)})")
    body = ",\n".join(lines)
    return [
        f"CREATE SCHEMA IF NOT EXISTS {quote_ident(SCHEMA)}",
        f"CREATE TABLE IF NOT EXISTS {qualified_name(contract)} (\n{body}\n)",
    ]
