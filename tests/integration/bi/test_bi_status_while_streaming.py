"""`reporting status`, `dlq list` and `reconcile` while another process holds the DuckDB file (as
`reporting stream` does): they read the replicas the stream publishes and say when those were published.
`status` opens no writer and runs no DDL, on DuckDB (the file is untouched) and on PostgreSQL (a role
without CREATE, read-only transactions); tables the pipeline has not created are reported as such.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import stat
from pathlib import Path

import duckdb
import psycopg
import pytest
from typer.testing import CliRunner

from pipelines.apply.duckdb_backend import DuckDbBackend
from pipelines.apply.postgres_backend import PostgresBackend
from pipelines.bi.reader import (
    ReportingDbUnavailable,
    open_operator_reading,
    open_replica,
    read_notes,
    replica_age_note,
)
from pipelines.bi.replica import (
    PIPELINE_SCHEMA,
    ReplicaPublisher,
    pipeline_replica_path,
    publish_from_file,
    replica_path,
)
from pipelines.contract.model import load_contracts
from pipelines.projection import load_estate_projections
from pipelines.reconcile.run import ReconcileError, open_reporting, reconcile_tables
from pipelines.settings import Settings
from tests.integration.bi.conftest import duckdb_held, load_musiccorp_duckdb
from tests.integration.dbt import musiccorp_dataset
from tests.support.databases import temp_postgres
from tests.support.estate import bundled_estate, write_estate

pytestmark = pytest.mark.integration

GROUP = "reporting-pipeline"
TOPIC = "orders.public.orders"
NOTE = re.compile(r"figures from the read replica published at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC \((\d+)s ago\)"
                  r": .*reportingdb\.duckdb is held by PID (\d+)")


def live_contracts():
    return [c for c in load_contracts(bundled_estate().contracts) if c.status != "retired"]


def add_pipeline_facts(path: Path, dead_letters: int, next_offset: int) -> None:
    """Offsets, a batch (and one too old for the replica), table status, `dead_letters` dead letters of
    orders_v2 with their raw record, and a delete position, as the apply step writes them."""
    con = duckdb.connect(str(path))
    try:
        con.execute("INSERT INTO _pipeline.offsets VALUES (?, ?, 0, ?, now()) ON CONFLICT DO UPDATE SET "
                    "next_offset = excluded.next_offset, updated_at = excluded.updated_at", [GROUP, TOPIC, next_offset])
        con.execute("INSERT INTO _pipeline.batches VALUES (?, now(), 30, 30, 0), (?, now() - INTERVAL 2 HOUR, 5, 5, 0)",
                    [GROUP, GROUP])
        con.execute("INSERT INTO _pipeline.table_status (physical_name, newest_source_ts, last_applied_at, rows_applied)"
                    " VALUES ('orders_v2', now(), now(), 6) ON CONFLICT DO UPDATE SET rows_applied = 6")
        start = con.execute("SELECT count(*) FROM _pipeline.dead_letters").fetchone()[0]
        for offset in range(start, start + dead_letters):
            con.execute("INSERT INTO _pipeline.dead_letters (topic, kafka_partition, kafka_offset, stage, reason, "
                        "source_table, target_table, record_key, record_value, first_seen_at) "
                        "VALUES (?, 0, ?, 'validate', 'order_status: not in the closed set', 'public.orders', "
                        "'orders_v2', 'k'::BLOB, 'secret raw record'::BLOB, now())", [TOPIC, offset])
        con.execute("INSERT INTO _pipeline.orders_v2__deleted VALUES (5007, 42) ON CONFLICT DO NOTHING")
    finally:
        con.close()


def add_orders(path: Path, first: int, n: int) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("INSERT INTO reporting.orders_v2 (order_id, customer_id, order_status, total_amount, currency, "
                    "order_placed_at, updated_at, sales_channel, _source_position, _source_ts, _ingested_at, _op) "
                    "SELECT range, 1001, 'PAID', 1, 'EUR', now(), now(), 'web', range, now(), now(), 'c' "
                    "FROM range(?, ?)", [first, first + n])
    finally:
        con.close()


def live_orders(path_or_con) -> int:
    return path_or_con.execute("SELECT count(*) FROM reporting.orders_v2 WHERE _deleted_at IS NULL").fetchone()[0]


@pytest.fixture
def quiet(monkeypatch):
    """Kafka and the service databases unreachable without waiting for them (status says so in a note)."""
    def no_kafka(_settings):
        raise ConnectionError("kafka is down")

    monkeypatch.setattr("pipelines.kafka.security.client_config", no_kafka)
    monkeypatch.setattr("pipelines.apply.slots.slot_statuses", lambda _settings: ([], []))


def make_cli(estate: Path):
    from pipelines.cli import app

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, ["--estate", str(estate), *args], env={"COLUMNS": "200"})

    return run


@pytest.fixture
def duck(tmp_path, quiet):
    """An estate on a private DuckDB file with the MusicCorp data and pipeline facts, its replicas published,
    then MORE data in the main file than in the replicas (so a figure tells where it was read)."""
    main = tmp_path / "reportingdb.duckdb"
    estate = write_estate(tmp_path, **{"reporting.backend": "duckdb", "reporting.duckdb.path": str(main),
                                       "connect.urls": ["http://127.0.0.1:9"]})
    settings = Settings.load(estate, environ={})
    load_musiccorp_duckdb(main)
    add_pipeline_facts(main, dead_letters=2, next_offset=30)
    published = publish_from_file(main, replica_path(settings))
    add_orders(main, 90_000, 25)  # after the publication: only in the main file
    add_pipeline_facts(main, dead_letters=3, next_offset=55)
    return settings, estate, main, published


def test_the_pipeline_replica_is_a_private_file_beside_the_bi_replica_with_what_operators_read(duck):
    settings, _estate, main, _published = duck
    bi, ops = replica_path(settings), pipeline_replica_path(settings)
    assert ops == bi.with_name("reportingdb_pipeline.duckdb") and ops.parent == main.parent / "replica"
    assert stat.S_IMODE(ops.stat().st_mode) == 0o600  # the operator's file only
    assert sorted(os.listdir(bi.parent)) == ["reportingdb.duckdb", "reportingdb_pipeline.duckdb"]  # no leftovers
    reader = open_replica(bi)
    try:  # BI's replica: never `_pipeline` (as bi_reader on PostgreSQL)
        assert PIPELINE_SCHEMA not in {r[0] for r in reader.execute("SELECT schema_name FROM duckdb_schemas()").fetchall()}
    finally:
        reader.close()
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{ops}' AS ops (READ_ONLY)")
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'ops' "
                                            "AND schema_name = '_pipeline'").fetchall()}
        assert {"offsets", "batches", "table_status", "dead_letters"} <= tables
        assert not [t for t in tables if t.endswith("__deleted")]  # the delete positions stay in the main file
        columns = {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE database_name = 'ops' "
                                             "AND table_name = 'dead_letters'").fetchall()}
        assert {"id", "topic", "stage", "reason", "retries", "replayed_at"} <= columns
        assert not columns & {"record_key", "record_value"}  # the raw records stay in the main file
        assert con.execute("SELECT count(*) FROM ops._pipeline.dead_letters").fetchone() == (2,)
        assert con.execute("SELECT count(*) FROM ops._pipeline.batches").fetchone() == (1,)  # the last hour only
        assert con.execute("SELECT next_offset FROM ops._pipeline.offsets").fetchall() == [(30,)]
        assert con.execute("SELECT published_at IS NOT NULL FROM ops._replica.info").fetchone() == (True,)
    finally:
        con.close()


def test_status_reads_the_replicas_while_another_process_holds_the_file(duck):
    settings, estate, main, published = duck
    cli = make_cli(estate)
    with duckdb_held(main) as holder:
        with pytest.raises(duckdb.IOException, match="Could not set lock"):
            duckdb.connect(str(main), read_only=True)
        result = cli("status", "--format", "json")
        assert result.exit_code == 0, result.output
        out = json.loads(result.stdout)
        note = NOTE.search(result.stderr)
        assert note, result.stderr
        assert int(note.group(3)) == holder.pid and int(note.group(2)) < 120
        stated = dt.datetime.fromisoformat(note.group(1) + "+00:00")
        assert abs(stated - published.published_at) < dt.timedelta(seconds=5)
        tables = {t["contract_table"]: t for t in out["tables"]}
        assert set(tables) == {c.physical_name for c in live_contracts()}
        assert tables["orders_v2"]["live_rows"] == 6  # the replica's figure; the main file has 31 by now
        assert tables["orders_v2"]["dead_letters"] == 2 and isinstance(tables["orders_v2"]["freshness_s"], float)
        assert out["lags"] == [{"topic": TOPIC, "partition": 0, "next_offset": 30, "end_offset": None, "lag": None}]
        assert out["events"][0]["events_per_second"] == 0.5  # 30 events in the last minute; the old batch is not copied

        table = cli("status")  # the note comes first, above the tables
        assert table.exit_code == 0, table.output
        assert NOTE.search(table.stdout.splitlines()[0]), table.stdout[:400]
    assert live_orders(duckdb.connect(str(main), read_only=True)) == 31


def test_dlq_list_reads_the_pipeline_replica_while_another_process_holds_the_file(duck):
    settings, estate, main, _published = duck
    cli = make_cli(estate)
    with duckdb_held(main):
        result = cli("dlq", "list", "--format", "json")
        assert result.exit_code == 0, result.output
        rows = json.loads(result.stdout)
        assert [(r["offset"], r["table"], r["stage"]) for r in rows] == [(0, "orders_v2", "validate"),
                                                                          (1, "orders_v2", "validate")]
        assert NOTE.search(result.stderr), result.stderr
        by_table = json.loads(cli("dlq", "list", "--table", "orders", "--format", "json").stdout)
        assert len(by_table) == 2
        assert json.loads(cli("dlq", "list", "--table", "customers_v1", "--format", "json").stdout) == []
        table = cli("dlq", "list")
        assert table.exit_code == 0 and NOTE.search(table.stdout.splitlines()[0]), table.output
    # with the file free again: the main file, 5 dead letters, no note
    free = cli("dlq", "list", "--format", "json")
    assert free.exit_code == 0 and len(json.loads(free.stdout)) == 5 and "replica" not in free.stderr


class EmptySource:
    """A source database with no rows: every stored row is `extra`, so the counts show what was read."""

    closed = False

    def rows(self, _tp, _columns, _batch):
        return iter(())

    def close(self) -> None:
        self.closed = True


def test_reconcile_reads_the_replica_while_another_process_holds_the_file(duck):
    settings, _estate, main, _published = duck
    contracts = {c.physical_name: c for c in live_contracts()}
    projections = load_estate_projections(settings.estate)
    notes: list[str] = []
    with duckdb_held(main) as holder:
        with read_notes(notes.append):
            backend = open_reporting(settings)
        try:
            [result] = reconcile_tables(projections, contracts, backend, lambda _svc: EmptySource(),
                                        tables=["orders_v2"])
        finally:
            backend.close()
        assert result.error is None, result.error
        assert (result.reporting_rows, result.extra, result.source_rows) == (6, 6, 0)  # the replica's 6, not 31
        [note] = notes
        assert NOTE.search(note) and f"PID {holder.pid}" in note and backend.read_note == note
    backend = open_reporting(settings)  # the stream stopped: the main file, read-only, no note
    try:
        assert backend.read_note is None and live_orders(backend.conn) == 31
        with pytest.raises(duckdb.Error, match="read-only"):
            backend.execute("CREATE TABLE reporting.x (i INTEGER)")
    finally:
        backend.close()


def test_reconcile_command_states_the_replica_and_its_age(duck, tmp_path, monkeypatch):
    settings, _estate, main, _published = duck
    secrets = tmp_path / "secrets.env"
    secrets.write_text("".join(f"{s.reader.password.env}=x\n" for s in bundled_estate().services))
    estate = write_estate(tmp_path / "with-secrets", **{"reporting.backend": "duckdb",
                                                       "reporting.duckdb.path": str(main), "env_file": str(secrets)})
    monkeypatch.setattr("pipelines.reconcile.run.open_source", lambda _url: EmptySource())
    with duckdb_held(main):
        result = make_cli(estate)("reconcile", "--table", "orders_v2", "--format", "json")
    assert result.exit_code == 1, result.output  # differences: the empty source has none of the 6 rows
    assert NOTE.search(result.stderr), result.stderr
    [row] = json.loads(result.stdout)["tables"]
    assert row["table"] == "orders_v2" and row["extra"] == 6


def test_operator_commands_without_a_replica_say_why_in_one_line(tmp_path, quiet):
    main = tmp_path / "reportingdb.duckdb"
    estate = write_estate(tmp_path, **{"reporting.backend": "duckdb", "reporting.duckdb.path": str(main)})
    load_musiccorp_duckdb(main)
    settings = Settings.load(estate, environ={})
    with duckdb_held(main) as holder:
        with pytest.raises(ReportingDbUnavailable, match=f"held by PID {holder.pid}.*no read replica exists"):
            open_operator_reading(settings)
        with pytest.raises(ReconcileError, match="no read replica exists"):
            open_reporting(settings)
        result = make_cli(estate)("status")
        assert result.exit_code == 2 and "no read replica exists" in result.stderr, result.output


def test_status_opens_no_writer_and_leaves_the_file_untouched(duck):
    settings, estate, main, _published = duck
    cli = make_cli(estate)
    def files() -> list[str]:  # beside the main file (the command's log folder .state/logs aside)
        return sorted(set(os.listdir(main.parent)) - {".state"})

    before = files()
    stamp = (main.stat().st_mtime_ns, main.stat().st_size)
    for args in (("status", "--format", "json"), ("dlq", "list"), ("contract", "status", "--format", "json")):
        result = cli(*args)
        assert result.exit_code == 0, (args, result.output)
        assert "replica" not in result.stderr  # the file was free: the main file was read
    assert json.loads(cli("status", "--format", "json").stdout)["tables"][3]["live_rows"] is not None
    assert (main.stat().st_mtime_ns, main.stat().st_size) == stamp
    assert files() == before  # no WAL, no new file


def test_status_says_not_created_yet_and_creates_nothing(tmp_path, quiet):
    main = tmp_path / "reportingdb.duckdb"
    estate = write_estate(tmp_path, **{"reporting.backend": "duckdb", "reporting.duckdb.path": str(main)})
    cli = make_cli(estate)
    result = cli("status", "--format", "json")  # no file at all
    assert result.exit_code == 0, result.output
    tables = json.loads(result.stdout)["tables"]
    assert tables and all(t["live_rows"] is None for t in tables)
    assert "not created yet: " in result.stderr and f"no reporting file at {main} yet" in result.stderr
    assert not main.exists()
    dlq = cli("dlq", "list", "--format", "json")
    assert dlq.exit_code == 0 and json.loads(dlq.stdout) == [] and "not created yet" in dlq.stderr
    assert not main.exists()

    # an older pipeline created only some tables: the others are said to be missing, nothing is created
    some = [c for c in live_contracts() if c.table != "orders"]
    backend = DuckDbBackend(main)
    try:
        backend.ensure_schema(some)
    finally:
        backend.close()
    stamp = (main.stat().st_mtime_ns, main.stat().st_size)
    result = cli("status")
    assert result.exit_code == 0, result.output
    assert re.search(r"not created yet: orders_v1, orders_v2 \(", " ".join(result.stdout.split())), result.stdout
    assert re.search(r"orders_v2\s+│\s+not created yet", result.stdout), result.stdout
    assert (main.stat().st_mtime_ns, main.stat().st_size) == stamp
    with duckdb.connect(str(main), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'orders_v2'"
                           ).fetchone() == (0,)


def test_replica_age_note_is_one_line():
    published = dt.datetime(2026, 5, 1, 10, 0, 5, tzinfo=dt.UTC)
    assert replica_age_note(published, published + dt.timedelta(seconds=7), "x is held by PID 1") == (
        "figures from the read replica published at 2026-05-01 10:00:05 UTC (7s ago): x is held by PID 1")
    assert "(3m 20s ago)" in replica_age_note(published, published + dt.timedelta(seconds=200))
    assert "(2h 0m ago)" in replica_age_note(published, published + dt.timedelta(hours=2))


# ------------------------------------------------------------------------------------------ PostgreSQL
@pytest.fixture(scope="module")
def pg_reporting():
    """A PostgreSQL reporting database whose schema the superuser created, read by `status_ro`: a login
    with USAGE and SELECT only (no CREATE anywhere), declared as the estate's writer; and an empty database."""
    with temp_postgres("status") as (cluster, superuser):
        cluster.psql("CREATE DATABASE reporting;\nCREATE DATABASE reporting_empty;\n"
                     "CREATE ROLE status_ro LOGIN PASSWORD 'status-ro-secret';\n")
        contracts = live_contracts()
        backend = PostgresBackend(superuser.replace("dbname=postgres", "dbname=reporting"))
        try:
            backend.ensure_schema(contracts)
            musiccorp_dataset.load(lambda sql, params: backend.conn.execute(sql, params), contracts, "postgres",
                                   dt.datetime.now(dt.UTC))
            backend.execute("INSERT INTO _pipeline.offsets VALUES (%s, %s, 0, 30, now())", (GROUP, TOPIC))
            backend.execute("INSERT INTO _pipeline.dead_letters (topic, kafka_partition, kafka_offset, stage, reason, "
                            "target_table, first_seen_at) VALUES (%s, 0, 3, 'validate', 'bad', 'orders_v2', now())",
                            (TOPIC,))
        finally:
            backend.close()
        cluster.psql("GRANT USAGE ON SCHEMA reporting, _pipeline TO status_ro;\n"
                     "GRANT SELECT ON ALL TABLES IN SCHEMA reporting, _pipeline TO status_ro;\n", db="reporting")
        yield cluster


def pg_estate(tmp_path: Path, cluster, database: str) -> Path:
    env_file = tmp_path / "secrets.env"
    env_file.write_text("STATUS_RO_PASSWORD=status-ro-secret\n")
    return write_estate(tmp_path, **{
        "state_dir": str(tmp_path / "state"), "env_file": str(env_file), "reporting.backend": "postgres",
        "reporting.postgres.host": "127.0.0.1", "reporting.postgres.port": cluster.port,
        "reporting.postgres.database": database,
        "reporting.postgres.writer": {"user": "status_ro", "password": {"env": "STATUS_RO_PASSWORD"}},
        "reporting.postgres.reader": {"user": "status_ro", "password": {"env": "STATUS_RO_PASSWORD"}}})


def test_postgres_status_and_dlq_as_a_role_without_create_in_read_only_transactions(pg_reporting, tmp_path, quiet):
    estate = pg_estate(tmp_path, pg_reporting, "reporting")
    with psycopg.connect(f"host=127.0.0.1 port={pg_reporting.port} dbname=reporting user=status_ro "
                         "password=status-ro-secret", autocommit=True) as con:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # what `ensure_schema` would hit
            con.execute("CREATE SCHEMA IF NOT EXISTS _pipeline")
    cli = make_cli(estate)
    result = cli("status", "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    tables = {t["contract_table"]: t for t in out["tables"]}
    assert tables["orders_v2"]["live_rows"] == 6 and tables["orders_v2"]["dead_letters"] == 1
    assert out["lags"][0]["next_offset"] == 30 and "replica" not in result.stderr
    dlq = cli("dlq", "list", "--format", "json")
    assert dlq.exit_code == 0 and [r["offset"] for r in json.loads(dlq.stdout)] == [3], dlq.output

    reading = open_operator_reading(Settings.load(estate, environ={}))
    try:
        assert reading.backend.query("SHOW transaction_read_only") == [("on",)]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            reading.backend.execute("DELETE FROM _pipeline.offsets")
    finally:
        reading.close()


def test_postgres_status_on_an_empty_database_says_not_created_yet(pg_reporting, tmp_path, quiet):
    estate = pg_estate(tmp_path, pg_reporting, "reporting_empty")
    result = make_cli(estate)("status", "--format", "json")
    assert result.exit_code == 0, result.output
    assert all(t["live_rows"] is None for t in json.loads(result.stdout)["tables"])
    assert "not created yet: " in result.stderr
    assert pg_reporting.psql("SELECT count(*) FROM pg_namespace WHERE nspname IN ('reporting', '_pipeline')",
                             db="reporting_empty").strip() == "0"


def test_the_stream_publisher_writes_both_replicas(tmp_path):
    main = tmp_path / "reportingdb.duckdb"
    load_musiccorp_duckdb(main)
    add_pipeline_facts(main, dead_letters=1, next_offset=10)
    target = tmp_path / "replica" / "reportingdb.duckdb"
    publisher = ReplicaPublisher(target, every_s=3600)
    with duckdb.connect(str(main)) as writer:
        assert publisher.maybe_publish(writer) is not None
        assert publisher.last_pipeline is not None and publisher.last_pipeline.path == pipeline_replica_path(target)
        assert publisher.last_pipeline.tables >= 4 and publisher.publications == 1
    assert ReplicaPublisher(target, pipeline_path=None).pipeline_path is None
