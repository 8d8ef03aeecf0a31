"""Small builders for reconciliation unit tests: contracts with chosen column types, no YAML."""

from __future__ import annotations

from pipelines.contract.model import Column, Contract
from pipelines.contract.sqltypes import LOGICAL_TYPES


def col(name: str, base: str, *, required: bool = False, pk: bool = False, length: int | None = None,
        precision: int | None = None, scale: int | None = None) -> Column:
    physical = base
    if base == "varchar":
        physical = f"varchar({length or 32})"
        length = length or 32
    if base == "decimal":
        precision, scale = precision or 12, 2 if scale is None else scale
        physical = f"decimal({precision},{scale})"
    return Column(name=name, logical_type=LOGICAL_TYPES[base][0], physical_type=physical, base_type=base,
                  length=length, precision=precision, scale=scale, required=required or pk, primary_key=pk,
                  classification="public", description=name)


def contract(table: str, columns: list[Column], *, major: int = 1, delete: str = "soft",
             status: str = "active", deprecation=None, freshness: int = 300, owner: str = "orders") -> Contract:
    return Contract(table=table, major=major, version=f"{major}.0.0", owner_service=owner, description=table,
                    grain=f"one row per {table}", primary_key=tuple(c.name for c in columns if c.primary_key),
                    columns=tuple(columns), delete_semantics=delete, freshness_seconds=freshness, status=status,
                    deprecation_date=deprecation)


ALL_TYPES = [
    col("id", "bigint", pk=True),
    col("small", "smallint"),
    col("num", "integer"),
    col("flag", "boolean"),
    col("code", "varchar", length=8),
    col("note", "text"),
    col("amount", "decimal", precision=12, scale=2),
    col("wide", "decimal", precision=30, scale=4),
    col("ratio", "double"),
    col("day", "date"),
    col("clock", "time"),
    col("wall", "timestamp"),
    col("instant", "timestamptz"),
    col("doc", "json"),
    col("ref", "uuid"),
]
