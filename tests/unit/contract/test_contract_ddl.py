"""DDL from contracts, executed in a real in-memory DuckDB (no files, no network)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb
import pytest

from pipelines.contract.ddl import (
    DELETED_AT,
    PROVENANCE_COLUMNS,
    create_table_sql,
    provenance_columns,
    quote_ident,
    sql_type,
)
from pipelines.contract.model import Column, load_contracts

pytestmark = pytest.mark.unit

CONTRACTS = {c.physical_name: c for c in load_contracts()}


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, tuple[str, str]]:
    rows = con.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'reporting' AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return {name: (dtype, nullable) for name, dtype, nullable in rows}


def test_every_contract_creates_its_table_in_duckdb_idempotently() -> None:
    con = duckdb.connect(":memory:")
    for contract in CONTRACTS.values():
        for _ in range(2):  # IF NOT EXISTS: running twice is harmless
            for statement in create_table_sql(contract, "duckdb"):
                con.execute(statement)
        columns = _columns(con, contract.physical_name)
        assert list(columns) == [*contract.column_names, *(c.name for c in provenance_columns(contract))]
        for col in contract.columns:
            assert columns[col.name][1] == ("NO" if col.required else "YES"), f"{contract.physical_name}.{col.name}"


def test_duckdb_types_nullability_and_primary_key() -> None:
    con = duckdb.connect(":memory:")
    contract = CONTRACTS["order_lines_v1"]
    for statement in create_table_sql(contract, "duckdb"):
        con.execute(statement)
    columns = _columns(con, "order_lines_v1")
    assert columns["unit_price"] == ("DECIMAL(12,2)", "NO")
    assert columns["_source_position"] == ("BIGINT", "NO")
    assert columns["_source_ts"] == ("TIMESTAMP WITH TIME ZONE", "YES")
    assert columns["_op"][1] == "NO" and "_deleted_at" in columns
    row = [1, 1, "SKU-1", 2, 9.99, 19.98, 10, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime.now(dt.UTC), "c", None]
    con.execute("INSERT INTO reporting.order_lines_v1 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    with pytest.raises(duckdb.ConstraintException):  # composite primary key enforced
        con.execute("INSERT INTO reporting.order_lines_v1 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    with pytest.raises(duckdb.ConstraintException):  # required column is NOT NULL
        con.execute("INSERT INTO reporting.order_lines_v1 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [1, 2, None, *row[3:]])


def test_hard_delete_tables_have_no_deleted_at() -> None:
    names = [c.name for c in provenance_columns(CONTRACTS["stock_levels_v1"])]
    assert names == ["_source_position", "_source_ts", "_ingested_at", "_op"]
    assert [c.name for c in PROVENANCE_COLUMNS] == names
    assert DELETED_AT.name == "_deleted_at"
    assert "_deleted_at" not in create_table_sql(CONTRACTS["stock_levels_v1"], "postgres")[1]


def test_postgres_ddl_text() -> None:
    statements = create_table_sql(CONTRACTS["orders_v2"], "postgres")
    assert statements[0] == 'CREATE SCHEMA IF NOT EXISTS "reporting"'
    ddl = statements[1]
    assert ddl.startswith('CREATE TABLE IF NOT EXISTS "reporting"."orders_v2" (')
    assert '"order_status" VARCHAR(16) NOT NULL' in ddl
    assert '"total_amount" DECIMAL(12,2) NOT NULL' in ddl
    assert '"sales_channel" VARCHAR(32),' in ddl
    assert '"_source_position" BIGINT NOT NULL' in ddl
    assert '"_op" VARCHAR(1) NOT NULL' in ddl
    assert '"_deleted_at" TIMESTAMPTZ' in ddl
    assert ddl.rstrip().endswith('PRIMARY KEY ("order_id")\n)')


@pytest.mark.parametrize(
    ("physical", "duck", "pg"),
    [("double", "DOUBLE", "DOUBLE PRECISION"), ("json", "JSON", "JSONB"), ("uuid", "UUID", "UUID"),
     ("smallint", "SMALLINT", "SMALLINT"), ("text", "TEXT", "TEXT"), ("date", "DATE", "DATE"),
     ("time", "TIME", "TIME"), ("timestamp", "TIMESTAMP", "TIMESTAMP"), ("boolean", "BOOLEAN", "BOOLEAN")],
)
def test_sql_type_per_dialect(physical: str, duck: str, pg: str) -> None:
    col = Column("x", "string", physical, physical, None, None, None, False, False, "public", "x")
    assert (sql_type(col, "duckdb"), sql_type(col, "postgres")) == (duck, pg)


def test_all_base_types_create_in_duckdb() -> None:
    contract = CONTRACTS["products_v1"]
    extra = tuple(
        Column(f"c_{base}", "string", base, base, None, None, None, False, False, "public", base)
        for base in ("smallint", "double", "text", "date", "time", "timestamp", "json", "uuid")
    )
    wide = dataclasses.replace(contract, columns=contract.columns + extra)
    con = duckdb.connect(":memory:")
    for statement in create_table_sql(wide, "duckdb"):
        con.execute(statement)
    assert set(_columns(con, "products_v1")) >= {c.name for c in extra}


def test_identifiers_are_validated_before_reaching_sql() -> None:
    assert quote_ident("status") == '"status"'
    for bad in ('x"; DROP TABLE y; --', "Upper", "a b", "", "1abc"):
        with pytest.raises(ValueError):
            quote_ident(bad)
    with pytest.raises(ValueError):
        sql_type(PROVENANCE_COLUMNS[0], "oracle")  # type: ignore[arg-type]
