"""The DuckLake backend's pure parts: constraint-free DDL, the single-UPDATE MERGE, MERGE upserts for the
keyless bookkeeping, the engine's error mapping and `--as-of` parsing. The SQL runs in an in-memory DuckDB
(2.0, the product's): DuckDB accepts what DuckLake accepts here; the DuckLake engine itself is exercised by the
integration suites (tests/integration/apply, backend `ducklake`)."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.apply import sql as apply_sql
from pipelines.apply.pipeline_schema import deleted_keys_ddl, pipeline_ddl
from pipelines.contract.ddl import create_table_sql
from pipelines.contract.model import load_contracts
from pipelines.ducklake.client import remote_error

pytestmark = pytest.mark.unit

CONTRACTS = {c.physical_name: c for c in load_contracts()}


def soft_contract():
    return next(c for c in CONTRACTS.values() if c.delete_semantics == "soft")


def test_ducklake_ddl_declares_no_key_constraint_and_no_sequence():
    contract = soft_contract()
    statements = pipeline_ddl("ducklake") + create_table_sql(contract, "ducklake") + [deleted_keys_ddl(contract, "ducklake")]
    text = "\n".join(statements)
    assert "PRIMARY KEY" not in text and "SEQUENCE" not in text and "nextval" not in text
    assert "PRIMARY KEY" in "\n".join(pipeline_ddl("duckdb") + create_table_sql(contract, "duckdb"))
    con = duckdb.connect()
    for stmt in statements:
        con.execute(stmt)
    key = contract.primary_key[0]
    nullable = con.execute("SELECT is_nullable FROM information_schema.columns WHERE table_schema = 'reporting' "
                           "AND table_name = ? AND column_name = ?", [contract.physical_name, key]).fetchone()[0]
    assert nullable == "NO"  # key columns stay NOT NULL


def test_keyless_soft_delete_merge_has_one_update_action_and_the_same_effect():
    contract = soft_contract()
    keyed = apply_sql.apply_statements(contract, "s", [], has_deletes=True)
    keyless = apply_sql.apply_statements(contract, "s", [], has_deletes=True, keyless=True)
    assert keyed[0].count("THEN UPDATE") == 2
    assert keyless[0].count("THEN UPDATE") == 1  # DuckLake: one UPDATE action per MERGE
    assert "ON CONFLICT" in keyed[-1] and "ON CONFLICT" not in keyless[-1] and keyless[-1].startswith("MERGE INTO")


def _apply_both(contract, rows_before, staged_rows):
    """Apply `staged_rows` onto `rows_before` with the keyed and the keyless statements; both tables' rows."""
    results = []
    for keyless in (False, True):
        con = duckdb.connect()
        dialect = "ducklake" if keyless else "duckdb"
        for stmt in pipeline_ddl(dialect) + create_table_sql(contract, dialect) + [deleted_keys_ddl(contract, dialect)]:
            con.execute(stmt)
        con.execute(f"CREATE TABLE s AS SELECT * FROM ({staged_rows})")
        con.execute(f'INSERT INTO reporting."{contract.physical_name}" BY NAME SELECT * FROM ({rows_before})')
        for stmt in apply_sql.apply_statements(contract, "s", [], has_deletes=True, keyless=keyless):
            con.execute(stmt)
        table = f'reporting."{contract.physical_name}"'
        results.append((con.execute(f'SELECT * EXCLUDE ("_ingested_at") FROM {table} ORDER BY ALL').fetchall(),
                        con.execute(f'SELECT * FROM _pipeline."{contract.physical_name}__deleted" ORDER BY ALL').fetchall()))
    return results


def test_keyless_statements_store_what_the_keyed_ones_store():
    contract = soft_contract()
    key = contract.primary_key[0]
    cols = [c for c in contract.columns if c.name != key]
    # the stored row: every column NULL but the key and what NOT NULL needs
    def values(k, pos, op, is_delete, has_values):
        parts = [f"{k} AS \"{key}\""]
        for c in cols:
            parts.append(f"CAST(NULL AS {_type(c)}) AS \"{c.name}\"" if not c.required else f"{_sample(c)} AS \"{c.name}\"")
        parts += [f"CAST({pos} AS BIGINT) AS \"_source_position\"", "TIMESTAMPTZ '2026-12-01 10:00:00+00' AS \"_source_ts\"",
                  f"'{op}' AS \"_op\"", f"{is_delete} AS \"_is_delete\"", f"{has_values} AS \"_has_values\""]
        return "SELECT " + ", ".join(parts)

    before = (f"SELECT {1} AS \"{key}\", " + ", ".join(
        (f"{_sample(c)} AS \"{c.name}\"" if c.required else f"CAST(NULL AS {_type(c)}) AS \"{c.name}\"") for c in cols)
        + ", CAST(5 AS BIGINT) AS \"_source_position\", now() AS \"_ingested_at\", 'c' AS \"_op\"")
    staged = " UNION ALL ".join([values(1, 9, "d", True, False),   # deletes the stored key 1 (soft)
                                 values(2, 9, "c", False, True),   # a new key
                                 values(3, 9, "d", True, True)])   # a delete with its last image, key not stored
    keyed, keyless = _apply_both(contract, before, staged)
    assert keyed == keyless
    assert len(keyed[0]) == 3 and len(keyed[1]) == 2


def _type(column) -> str:
    from pipelines.contract.ddl import sql_type

    return sql_type(column, "duckdb")


def _sample(column) -> str:
    samples = {"varchar": "'x'", "text": "'x'", "bigint": "1", "integer": "1", "smallint": "1", "boolean": "true",
               "decimal": "1", "double": "1", "date": "DATE '2026-12-01'", "timestamp": "TIMESTAMP '2026-12-01'",
               "timestamptz": "TIMESTAMPTZ '2026-12-01 00:00:00+00'", "uuid": "uuid()", "json": "'{}'",
               "time": "TIME '10:00'"}
    return f"CAST({samples[column.base_type]} AS {_type(column)})"


def test_keyless_truncate_record_keeps_the_newest_position():
    contract = soft_contract()
    con = duckdb.connect()
    for stmt in pipeline_ddl("ducklake") + create_table_sql(contract, "ducklake"):
        con.execute(stmt)
    for position in (50, 40, 60):
        for sql, params in apply_sql.truncate_statements(contract, position, None, 0, keyless=True):
            con.execute(sql, params)
    assert con.execute('SELECT physical_name, "_source_position" FROM _pipeline.truncates').fetchall() == [
        (contract.physical_name, 60)]


def test_engine_errors_are_raised_as_the_products_duckdb_classes():
    assert isinstance(remote_error("TransactionException", "conflict"), duckdb.TransactionException)
    assert isinstance(remote_error("BinderException", "no column"), duckdb.BinderException)
    assert type(remote_error("NotADuckDbName", "x")) is duckdb.Error
    assert type(remote_error("ValueError", "x")) is duckdb.Error  # only duckdb classes are rebuilt


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-30T23:59:59Z", "2026-11-30 23:59:59.000000+00"),
    ("2026-12-01T01:59:59+02:00", "2026-11-30 23:59:59.000000+00"),
    ("2026-11-30 23:59:59", "2026-11-30 23:59:59.000000+00"),
])
def test_as_of_times_are_utc(text, expected):
    from pipelines.cli import _timestamp

    assert _timestamp(text) == expected


def test_as_of_refuses_what_is_not_a_time():
    from pipelines.cli import _timestamp

    with pytest.raises(ValueError, match="--as-of 'last month'"):
        _timestamp("last month")
