"""`bi_reader` on a real PostgreSQL 15: reads the published schemas, also tables created later by the
pipeline and by dbt; cannot read `_pipeline`, write, create, or go anywhere else."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from pipelines.bi.grants import BI_SCHEMAS
from pipelines.stack.postgres import provision_reporting
from tests.integration.bi.conftest import dbt_run

pytestmark = pytest.mark.integration


def read_write(con: psycopg.Connection) -> psycopg.Connection:
    """Switch off the role's default read-only transactions, so what is left is privileges alone."""
    con.execute("SET default_transaction_read_only = off")
    return con


def test_bi_reader_reads_contract_tables_the_pipeline_created_after_provisioning(reporting_server):
    with reporting_server.connect("bi_reader") as bi:
        assert bi.execute("SELECT count(*) FROM reporting.orders_v2").fetchone()[0] > 0
        assert bi.execute("SELECT count(*) FROM reporting.customers_v1").fetchone()[0] > 0
        assert bi.execute("SELECT current_user").fetchone()[0] == "bi_reader"


def test_bi_reader_reads_tables_and_views_the_writer_creates_later_in_every_bi_schema(reporting_server):
    name = f"probe_{uuid.uuid4().hex[:8]}"
    with reporting_server.connect("reporting_writer") as writer:
        for schema in BI_SCHEMAS:
            # dbt's table swap: build under a temporary name, rename over the old one
            writer.execute(f"CREATE TABLE {schema}.{name}__dbt_tmp AS SELECT 42 AS answer")
            writer.execute(f"ALTER TABLE {schema}.{name}__dbt_tmp RENAME TO {name}")
            writer.execute(f"CREATE VIEW {schema}.{name}_view AS SELECT answer + 1 AS answer FROM {schema}.{name}")
    with reporting_server.connect("bi_reader") as bi:
        for schema in BI_SCHEMAS:
            assert bi.execute(f"SELECT answer FROM {schema}.{name}").fetchone() == (42,)
            assert bi.execute(f"SELECT answer FROM {schema}.{name}_view").fetchone() == (43,)


def test_bi_reader_cannot_read_pipeline_bookkeeping(reporting_server):
    with reporting_server.connect("bi_reader") as bi:
        for table in ("offsets", "dead_letters", "table_status", "batches"):
            with pytest.raises(errors.InsufficientPrivilege, match="permission denied for schema _pipeline"):
                bi.execute(f"SELECT * FROM _pipeline.{table}")


@pytest.mark.parametrize("statement", [
    "INSERT INTO reporting.orders_v1 (order_id) VALUES (-1)",
    "UPDATE reporting.orders_v1 SET currency = 'XXX'",
    "DELETE FROM reporting.orders_v1",
    "TRUNCATE reporting.orders_v1",
    "UPDATE _pipeline.offsets SET next_offset = 0",
    "CREATE TABLE reporting.bi_made (x int)",
    "CREATE TABLE marts.bi_made (x int)",
    "CREATE VIEW staging.bi_made AS SELECT 1 AS x",
    "CREATE TABLE public.bi_made (x int)",
    "CREATE TEMP TABLE bi_made (x int)",
    "CREATE SCHEMA bi_made",
    "ALTER TABLE reporting.orders_v1 ADD COLUMN bi_made int",
    "DROP TABLE reporting.orders_v1",
])
def test_bi_reader_cannot_write_or_create_even_in_a_read_write_transaction(reporting_server, statement):
    with read_write(reporting_server.connect("bi_reader")) as bi:
        with pytest.raises((errors.InsufficientPrivilege, errors.WrongObjectType)) as caught:
            bi.execute(statement)
        assert "permission denied" in str(caught.value) or "must be owner" in str(caught.value)


def test_bi_reader_cannot_pass_its_access_on(reporting_server):
    with read_write(reporting_server.connect("bi_reader")) as bi:
        bi.execute("GRANT SELECT ON reporting.orders_v1 TO PUBLIC")  # PostgreSQL only warns: no grant option
    with reporting_server.connect("reporting_writer") as writer:
        assert writer.execute("SELECT has_table_privilege('public', 'reporting.orders_v1', 'SELECT')").fetchone() \
            == (False,)


def test_bi_sessions_are_read_only_by_default(reporting_server):
    with reporting_server.connect("bi_reader") as bi:
        assert bi.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        with pytest.raises(errors.ReadOnlySqlTransaction):
            bi.execute("CREATE TEMP TABLE bi_made (x int)")


@pytest.mark.parametrize("db", ["postgres", "template1"])
def test_bi_reader_cannot_connect_to_other_databases(reporting_server, db):
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        reporting_server.connect("bi_reader", db=db).close()


def test_privileges_are_exactly_select_on_the_published_schemas(reporting_server):
    """Catalog-wide: every relation in `reporting` DB, every privilege, as seen by PostgreSQL itself."""
    with psycopg.connect(reporting_server.conninfo("reporting_writer"), autocommit=True) as con:
        rows = con.execute("""
            SELECT n.nspname, c.relname,
                   has_table_privilege('bi_reader', c.oid, 'SELECT'),
                   has_table_privilege('bi_reader', c.oid, 'INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER')
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')
              AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
        """).fetchall()
        schemas = con.execute("""
            SELECT nspname, has_schema_privilege('bi_reader', oid, 'USAGE'), has_schema_privilege('bi_reader', oid, 'CREATE')
            FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' AND nspname <> 'information_schema'
        """).fetchall()
        temp = con.execute("SELECT has_database_privilege('bi_reader', 'reporting', 'CREATE,TEMPORARY')").fetchone()
    assert {s for s, *_ in rows} >= {"reporting", "_pipeline"}
    for schema, table, can_select, can_modify in rows:
        assert can_select == (schema in BI_SCHEMAS), f"{schema}.{table}: SELECT={can_select}"
        assert not can_modify, f"{schema}.{table}: bi_reader may modify it"
    assert {s: (usage, create) for s, usage, create in schemas} == {
        "reporting": (True, False), "staging": (True, False), "marts": (True, False),
        "_pipeline": (False, False), "public": (False, False)}
    assert temp == (False,)


def test_provisioning_again_is_harmless_and_keeps_every_grant(reporting_server):
    provision_reporting(reporting_server.cluster, reporting_server.writer_password, reporting_server.bi_password)
    provision_reporting(reporting_server.cluster, reporting_server.writer_password, reporting_server.bi_password)
    name = f"again_{uuid.uuid4().hex[:8]}"
    with reporting_server.connect("reporting_writer") as writer:
        writer.execute(f"CREATE TABLE marts.{name} AS SELECT 1 AS x")
    with reporting_server.connect("bi_reader") as bi:
        assert bi.execute(f"SELECT x FROM marts.{name}").fetchone() == (1,)
        assert bi.execute("SELECT count(*) FROM reporting.orders_v2").fetchone()[0] > 0
        with pytest.raises(errors.InsufficientPrivilege):
            bi.execute("SELECT * FROM _pipeline.offsets")


def test_marts_built_by_real_dbt_are_readable_by_bi_reader(reporting_server, tmp_path: Path):
    dbt_run("postgres", tmp_path, REPORTING_PG_HOST="127.0.0.1", REPORTING_PG_PORT=str(reporting_server.cluster.port),
            REPORTING_PG_USER="reporting_writer", REPORTING_PG_PASSWORD=reporting_server.writer_password,
            REPORTING_PG_DBNAME="reporting")
    with reporting_server.connect("bi_reader") as bi:
        # tables dbt swapped in, the post-hook view over the latest version, staging views
        assert bi.execute("SELECT count(*) FROM marts.fct_orders_v2").fetchone()[0] == 6
        assert bi.execute("SELECT count(*) FROM marts.fct_orders_v1").fetchone()[0] == 6
        assert bi.execute("SELECT count(*) FROM marts.fct_orders").fetchone()[0] == 6
        assert bi.execute("SELECT count(*) FROM marts.dim_customers").fetchone()[0] == 4
        assert bi.execute("SELECT count(*) FROM staging.stg_orders").fetchone()[0] == 6
