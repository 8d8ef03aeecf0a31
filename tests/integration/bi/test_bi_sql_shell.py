"""`reporting sql -c`: psql as bi_reader / reporting_writer on PostgreSQL; the DuckDB prompt on the
main file when free, on the replica while a writer holds the main file."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import pytest

from pipelines.bi.reader import ReportingDbUnavailable
from pipelines.bi.replica import publish_replica
from pipelines.bi.sql_shell import open_sql, psql_invocation
from pipelines.settings import Settings
from tests.integration.bi.conftest import duckdb_held
from tests.support.estate import settings_for

pytestmark = pytest.mark.integration


def run(settings: Settings, command: str, read_only: bool = True) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = open_sql(settings, read_only=read_only, command=command, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------- PostgreSQL
def test_psql_gets_the_password_from_the_environment_never_the_command_line(reporting_server, tmp_path):
    settings = reporting_server.settings(tmp_path / "state")
    for read_only, role, password in ((True, "bi_reader", reporting_server.bi_password),
                                      (False, "reporting_writer", reporting_server.writer_password)):
        argv, env = psql_invocation(settings, read_only=read_only, command="select 1")
        assert not any(password in arg for arg in argv)
        assert env["PGPASSWORD"] == password and env["PGUSER"] == role and env["PGDATABASE"] == "reporting"


def test_sql_c_on_postgres_reads_as_bi_reader(reporting_server, tmp_path):
    settings = reporting_server.settings(tmp_path / "state")
    with reporting_server.connect("reporting_writer") as writer:
        orders = writer.execute("select count(*) from reporting.orders_v2").fetchone()[0]
    code, out, err = run(settings, "select current_user, count(*) as orders from reporting.orders_v2")
    assert code == 0, err
    assert "bi_reader" in out and f" {orders}\n" in out and "(1 row)" in out


def test_sql_c_on_postgres_read_only_cannot_write_nor_read_pipeline(reporting_server, tmp_path):
    settings = reporting_server.settings(tmp_path / "state")
    code, _out, err = run(settings, "delete from reporting.orders_v2")
    assert code != 0 and "read-only transaction" in err
    code, _out, err = run(settings, "select * from _pipeline.offsets")
    assert code != 0 and "permission denied for schema _pipeline" in err


def test_sql_c_on_postgres_read_write_is_the_writer(reporting_server, tmp_path):
    settings = reporting_server.settings(tmp_path / "state")
    code, out, err = run(settings, "select current_user", read_only=False)
    assert code == 0, err
    assert "reporting_writer" in out


# --------------------------------------------------------------------------- DuckDB
def duck_settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path, **{"state_dir": str(tmp_path), "reporting.backend": "duckdb",
                                     "reporting.duckdb.path": str(tmp_path / "reportingdb.duckdb")})


def seed(settings: Settings, orders: int) -> None:
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS reporting; CREATE SCHEMA IF NOT EXISTS _pipeline")
        con.execute("CREATE OR REPLACE TABLE reporting.orders_v2 AS "
                    "SELECT range AS order_id, '[PAID]' AS order_status FROM range(?)", [orders])
        con.execute("CREATE OR REPLACE TABLE _pipeline.offsets AS SELECT 1 AS next_offset")


def test_sql_c_on_duckdb_reads_the_main_file_when_no_writer_holds_it(tmp_path):
    settings = duck_settings(tmp_path)
    seed(settings, 3)
    code, out, err = run(settings, "select count(*) as orders, min(order_status) as status from reporting.orders_v2")
    assert code == 0, err
    assert "orders" in out and "3" in out and "[PAID]" in out and "(1 row)" in out  # cells are not rich markup
    assert err == ""
    # the file is free again afterwards: a writer can open it
    duckdb.connect(str(settings.duckdb_path)).close()


def test_sql_c_on_duckdb_reads_the_replica_while_a_writer_holds_the_main_file(tmp_path):
    settings = duck_settings(tmp_path)
    seed(settings, 5)
    with duckdb.connect(str(settings.duckdb_path)) as writer:
        publish_replica(writer, tmp_path / "replica" / "reportingdb.duckdb")
    with duckdb_held(settings.duckdb_path):
        code, out, err = run(settings, "select count(*) as orders from reporting.orders_v2")
        assert code == 0, err
        assert "5" in out and "replica published at" in err
        code, _out, err = run(settings, "select * from _pipeline.offsets")  # not in the replica
        assert code == 1 and "ERROR: Catalog Error" in err


def test_sql_c_on_duckdb_explains_a_held_file_without_a_replica(tmp_path):
    settings = duck_settings(tmp_path)
    seed(settings, 1)
    with duckdb_held(settings.duckdb_path) as holder:
        code, out, err = run(settings, "select 1")
        assert code == 1 and out == ""
        assert f"held by PID {holder.pid} (normally `reporting stream`) and no read replica exists" in err
        with pytest.raises(ReportingDbUnavailable, match="writing needs it stopped"):
            run(settings, "select 1", read_only=False)


def test_sql_c_on_duckdb_read_write_when_the_stream_is_stopped(tmp_path):
    settings = duck_settings(tmp_path)
    seed(settings, 1)
    code, out, err = run(settings, "create table reporting.note as select 'hello' as word", read_only=False)
    assert (code, err) == (0, "")
    code, out, err = run(settings, "drop table reporting.orders_v2", read_only=False)
    assert (code, out.strip(), err) == (0, "OK", "")
    code, out, _err = run(settings, "select word from reporting.note")
    assert "hello" in out
    code, _out, err = run(settings, "create table reporting.nope (x int)")  # read-only by default
    assert code == 1 and "read-only" in err


def test_duckdb_meta_commands_and_the_interactive_prompt(tmp_path, monkeypatch):
    settings = duck_settings(tmp_path)
    seed(settings, 2)
    code, out, _err = run(settings, "\\dt")
    assert code == 0 and "orders_v2" in out and "_pipeline" not in out
    code, out, _err = run(settings, "\\d reporting.orders_v2")
    assert code == 0 and "order_status" in out
    monkeypatch.setattr("sys.stdin", io.StringIO("select count(*)\n  as n from reporting.orders_v2;\n\\dt\n\\q\n"))
    out = io.StringIO()
    assert open_sql(settings, command=None, out=out, err=io.StringIO()) == 0
    assert "n" in out.getvalue() and "2" in out.getvalue() and "orders_v2" in out.getvalue()
