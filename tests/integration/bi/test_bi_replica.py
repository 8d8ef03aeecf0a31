"""The DuckDB read replica: what it contains, that it is one snapshot, that another process reads it
while a writer process keeps writing, and how long publishing takes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.apply.duckdb_backend import DuckDbBackend
from pipelines.bi.reader import open_replica
from pipelines.bi.replica import ReplicaPublisher, publish_from_file, publish_replica
from pipelines.contract.model import load_contracts
from pipelines.settings import REPO_ROOT
from tests.integration.bi.conftest import dbt_run, load_musiccorp_duckdb
from tests.support.estate import settings_for

pytestmark = pytest.mark.integration


def reporting_file(tmp_path: Path) -> Path:
    """A DuckDB reporting file as the pipeline and dbt leave it: contract tables, _pipeline, staging, marts."""
    path = tmp_path / "reportingdb.duckdb"
    backend = DuckDbBackend(path)
    try:
        backend.ensure_schema([c for c in load_contracts() if c.status != "retired"])
        con = backend.conn
        con.execute("INSERT INTO reporting.order_lines_v1 (order_id, line_number, sku, quantity, unit_price, line_amount,"
                    " _source_position, _source_ts, _ingested_at, _op) SELECT range, 1, 'VIN-001', 1, 9.99, 9.99, range,"
                    " now(), now(), 'r' FROM range(1, 501)")
        con.execute("INSERT INTO _pipeline.offsets VALUES ('g', 'orders.public.orders', 0, 500, now())")
        con.execute("CREATE SCHEMA staging; CREATE SCHEMA marts")
        con.execute("CREATE VIEW staging.stg_order_lines AS SELECT order_id, line_amount FROM reporting.order_lines_v1"
                    " WHERE _deleted_at IS NULL")
        con.execute("CREATE TABLE marts.fct_sales_v1 (order_id BIGINT NOT NULL PRIMARY KEY, amount DECIMAL(12,2))")
        con.execute("INSERT INTO marts.fct_sales_v1 SELECT order_id, sum(line_amount) FROM staging.stg_order_lines"
                    " GROUP BY ALL")
        # a view over a view that sorts before the view it depends on
        con.execute("CREATE VIEW marts.fct_sales AS SELECT * FROM marts.fct_sales_v1")
        con.execute("CREATE VIEW marts.a_latest AS SELECT * FROM marts.fct_sales")
    finally:
        backend.close()
    return path


def test_replica_holds_the_bi_schemas_with_their_types_and_never_pipeline(tmp_path):
    main = reporting_file(tmp_path)
    target = tmp_path / "replica" / "reportingdb.duckdb"
    with duckdb.connect(str(main)) as writer:
        info = publish_replica(writer, target)
        expected_columns = writer.execute(
            "SELECT table_schema, table_name, column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema IN ('reporting', 'staging', 'marts') ORDER BY ALL").fetchall()
    assert info.tables == 1 + len([c for c in load_contracts() if c.status != "retired"]) and info.views == 3
    assert info.rows == 1000 and info.size_bytes > 0
    assert sorted(os.listdir(target.parent)) == ["reportingdb.duckdb"]  # no temporary file, no WAL left
    with duckdb.connect(str(target), read_only=True) as reader:
        assert reader.execute("SELECT current_database()").fetchone() == ("reportingdb",)  # same catalog name
        schemas = {r[0] for r in reader.execute("SELECT schema_name FROM duckdb_schemas() WHERE NOT internal").fetchall()}
        assert "_pipeline" not in schemas and {"reporting", "staging", "marts", "_replica"} <= schemas
        assert reader.execute(
            "SELECT table_schema, table_name, column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema IN ('reporting', 'staging', 'marts') ORDER BY ALL").fetchall() == expected_columns
        assert reader.execute("SELECT count(*), sum(amount) FROM reportingdb.marts.a_latest").fetchone()[0] == 500
        assert reader.execute("SELECT count(*) FROM staging.stg_order_lines").fetchone() == (500,)
        published, tables, rows = reader.execute("SELECT published_at, tables, rows FROM _replica.info").fetchone()
        assert (tables, rows) == (info.tables, 1000) and published is not None


def test_every_table_of_a_replica_comes_from_one_snapshot_while_a_writer_commits(tmp_path):
    """Writer thread commits orders + 2 lines per order in one transaction; replicas never see half a batch."""
    main = tmp_path / "reportingdb.duckdb"
    target = tmp_path / "replica" / "reportingdb.duckdb"
    conn = duckdb.connect(str(main))
    conn.execute("CREATE SCHEMA reporting; CREATE TABLE reporting.orders_v1 (order_id BIGINT, batch INTEGER);"
                 "CREATE TABLE reporting.order_lines_v1 (order_id BIGINT, line_number INTEGER, batch INTEGER)")
    stop = threading.Event()

    def write() -> None:
        cur = conn.cursor()
        batch = 0
        while not stop.is_set():
            batch += 1
            cur.execute("BEGIN TRANSACTION")
            cur.execute("INSERT INTO reporting.orders_v1 SELECT range, ? FROM range(?, ?)",
                        [batch, batch * 1000, batch * 1000 + 1000])
            cur.execute("INSERT INTO reporting.order_lines_v1 SELECT o.range, l.range, ? FROM range(?, ?) o, range(2) l",
                        [batch, batch * 1000, batch * 1000 + 1000])
            cur.execute("COMMIT")
        cur.close()

    writer = threading.Thread(target=write)
    writer.start()
    seen = []
    try:
        deadline = time.monotonic() + 60
        while len(set(seen)) < 5 and time.monotonic() < deadline:
            publish_replica(conn, target)
            with duckdb.connect(str(target), read_only=True) as reader:
                orders, lines, batches = reader.execute(
                    "SELECT (SELECT count(*) FROM reporting.orders_v1), (SELECT count(*) FROM reporting.order_lines_v1),"
                    " (SELECT max(batch) FROM reporting.orders_v1)").fetchone()
            assert lines == 2 * orders, f"replica mixes snapshots: {orders} orders, {lines} lines"
            assert orders == 1000 * (batches or 0)
            seen.append(orders)
    finally:
        stop.set()
        writer.join(timeout=60)
        conn.close()
    assert len(set(seen)) >= 5 and seen == sorted(seen), seen


def test_another_process_reads_the_replica_while_the_writer_process_writes(tmp_path):
    main = tmp_path / "reportingdb.duckdb"
    target = tmp_path / "replica" / "reportingdb.duckdb"
    proc = subprocess.Popen([sys.executable, "-m", "tests.integration.bi.duckdb_writer", str(main), str(target),  # noqa: S603
                             "0.2"], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    observed: list[int] = []
    kept_open = None
    try:
        assert proc.stdout.readline().strip() == "writing", proc.stderr.read()
        deadline = time.monotonic() + 60
        while len(set(observed)) < 4 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            if not target.exists():
                continue
            with pytest.raises(duckdb.IOException, match="Could not set lock"):
                duckdb.connect(str(main), read_only=True)  # the writer holds the main file all along
            reader = open_replica(target)  # what `reporting sql` does: the file as it is now
            orders, lines = reader.execute("SELECT (SELECT count(*) FROM reporting.orders_v1),"
                                           " (SELECT count(*) FROM reporting.order_lines_v1)").fetchone()
            assert lines == 2 * orders
            observed.append(orders)
            if kept_open is None and orders:
                kept_open = (reader, orders)  # a BI session that stays open across publications
            else:
                reader.close()
        # the long-lived session still reads its own (old) file, undisturbed by the swaps
        reader, orders_then = kept_open
        assert reader.execute("SELECT count(*) FROM reporting.orders_v1").fetchone() == (orders_then,)
        reader.close()
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped after" in out
    assert len(set(observed)) >= 4 and observed == sorted(observed), observed
    # the last publication happened at stop: the replica has every committed batch
    with duckdb.connect(str(main), read_only=True) as con:
        final = con.execute("SELECT count(*) FROM reporting.orders_v1").fetchone()[0]
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM reporting.orders_v1").fetchone()[0] == final


def test_publisher_publishes_when_due_and_only_when_the_pipeline_applied_something(tmp_path):
    main = reporting_file(tmp_path)
    target = tmp_path / "replica" / "reportingdb.duckdb"
    publisher = ReplicaPublisher(target, every_s=0, max_share=1.0)  # due again as soon as one is done
    with duckdb.connect(str(main)) as writer:
        assert publisher.maybe_publish(writer) is not None
        assert publisher.maybe_publish(writer) is None  # nothing applied since
        writer.execute("UPDATE _pipeline.offsets SET next_offset = 501, updated_at = now()")
        assert publisher.maybe_publish(writer) is not None
        slow = ReplicaPublisher(target, every_s=3600)
        assert slow.maybe_publish(writer) is not None  # the first call always publishes
        writer.execute("UPDATE _pipeline.offsets SET next_offset = 502, updated_at = now()")
        assert slow.maybe_publish(writer) is None  # not due yet
        assert slow.close(writer) is not None  # the stream stops: last publication


def test_a_publication_that_took_more_than_its_share_of_the_time_spaces_the_next_ones(tmp_path, caplog):
    main = reporting_file(tmp_path)
    target = tmp_path / "replica" / "reportingdb.duckdb"
    publisher = ReplicaPublisher(target, every_s=0.001, max_share=1e-6)  # any real copy takes more than that
    with duckdb.connect(str(main)) as writer, caplog.at_level(logging.INFO, logger="pipelines.bi.replica"):
        assert publisher.maybe_publish(writer) is not None
        assert publisher.spacing_s > 1000 and "the next ones are" in caplog.text
        writer.execute("UPDATE _pipeline.offsets SET next_offset = 501, updated_at = now()")
        assert publisher.maybe_publish(writer, applied=True) is None  # changed, but not due under the share
        assert publisher.close(writer) is not None  # a stop still publishes
    roomy = ReplicaPublisher(target, every_s=0, max_share=1.0)
    with duckdb.connect(str(main)) as writer:
        assert roomy.maybe_publish(writer) is not None
        writer.execute("UPDATE _pipeline.offsets SET next_offset = 502, updated_at = now()")
        assert roomy.maybe_publish(writer, applied=True) is not None  # a share of 1: due again at once


def test_a_failed_publication_keeps_the_old_replica_and_leaves_nothing_behind(tmp_path, caplog):
    main = reporting_file(tmp_path)
    target = tmp_path / "replica" / "reportingdb.duckdb"
    with duckdb.connect(str(main)) as writer:
        publish_replica(writer, target)
        before = target.stat().st_ino
        blocked = tmp_path / "blocked" / "reportingdb.duckdb"
        blocked.mkdir(parents=True)  # a directory where the file should go: os.replace fails
        with pytest.raises(OSError):
            publish_replica(writer, blocked)
        assert os.listdir(blocked.parent) == ["reportingdb.duckdb"]
        assert ReplicaPublisher(blocked, every_s=0).maybe_publish(writer) is None  # logged, the stream goes on
        assert "publishing the DuckDB read replica failed" in caplog.text
    assert target.stat().st_ino == before


def test_publish_from_file_when_no_stream_holds_it(tmp_path):
    main = reporting_file(tmp_path)
    target = tmp_path / "replica" / "reportingdb.duckdb"
    info = publish_from_file(main, target)
    assert info.rows == 1000
    with duckdb.connect(str(target), read_only=True) as reader:
        assert reader.execute("SELECT count(*) FROM marts.fct_sales").fetchone() == (500,)


def test_publish_time_for_100k_rows(tmp_path):
    """Measurement (figures in docs/bi.md): a contract-shaped table of 100k rows plus a mart."""
    main = tmp_path / "reportingdb.duckdb"
    target = tmp_path / "replica" / "reportingdb.duckdb"
    backend = DuckDbBackend(main)
    try:
        backend.ensure_schema([c for c in load_contracts() if c.status != "retired"])
        backend.conn.execute(
            "INSERT INTO reporting.orders_v2 (order_id, customer_id, order_status, total_amount, currency, "
            "order_placed_at, updated_at, sales_channel, _source_position, _source_ts, _ingested_at, _op) "
            "SELECT range, range % 5000, 'PAID', (range % 10000) / 100, 'EUR', now(), now(), 'web', range, now(), "
            "now(), 'c' FROM range(100000)")
        timings = [publish_replica(backend.conn, target) for _ in range(3)]
    finally:
        backend.close()
    best = min(t.seconds for t in timings)
    print(f"\npublish 100k rows: best {best:.3f}s of {[round(t.seconds, 3) for t in timings]}, "
          f"{timings[0].size_bytes / 1e6:.1f} MB")
    assert timings[0].rows == 100_000
    assert best < 10, "publishing 100k rows should take well under a second; see docs/bi.md"


def test_replica_of_a_dbt_built_file_answers_the_mart_queries(tmp_path):
    """Real dbt output (staging views, swapped mart tables, the latest-version view) survives the copy."""
    main = tmp_path / "reportingdb.duckdb"
    load_musiccorp_duckdb(main)
    dbt_run("duckdb", tmp_path / "dbt", REPORTING_DUCKDB_PATH=str(main))
    target = tmp_path / "replica" / "reportingdb.duckdb"
    query = ("SELECT order_status, currency, count(*), sum(total_amount) FROM marts.fct_orders "
             "GROUP BY ALL ORDER BY ALL")
    views = "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal ORDER BY ALL"
    with duckdb.connect(str(main)) as writer:
        expected = writer.execute(query).fetchall()
        expected_views = writer.execute(views).fetchall()
        info = publish_replica(writer, target)
    assert ("marts", "fct_orders") in expected_views and ("staging", "stg_orders") in expected_views
    assert info.views == len(expected_views)
    reader = open_replica(target)
    try:
        assert reader.execute(views).fetchall() == expected_views
        assert reader.execute(query).fetchall() == expected and len(expected) == 5
        assert reader.execute("SELECT count(*) FROM staging.stg_customers").fetchone() == (4,)
        assert reader.execute("SELECT count(*) FROM marts.dim_customers").fetchone() == (4,)
    finally:
        reader.close()


def test_publisher_from_settings(tmp_path):
    main = tmp_path / "reportingdb.duckdb"
    duck = settings_for(tmp_path / "default", **{"reporting.backend": "duckdb", "reporting.duckdb.path": str(main)})
    publisher = ReplicaPublisher.from_settings(duck)
    assert publisher.every_s == 10 and publisher.target_path == tmp_path / "replica" / "reportingdb.duckdb"
    assert ReplicaPublisher.from_settings(duck, every_s=2.5).every_s == 2.5
    declared = settings_for(tmp_path / "declared", **{"reporting.backend": "duckdb", "reporting.duckdb.path": str(main),
                                                      "pipeline.replica_every_s": 4.5})
    assert ReplicaPublisher.from_settings(declared).every_s == 4.5
    off = settings_for(tmp_path / "off", **{"reporting.backend": "duckdb", "reporting.duckdb.path": str(main),
                                            "pipeline.replica_every_s": 0})
    assert ReplicaPublisher.from_settings(off) is None
    # the replica always lives beside the main file: <duckdb dir>/replica/<file name>
    elsewhere = settings_for(tmp_path / "elsewhere", **{"reporting.backend": "duckdb",
                                                        "reporting.duckdb.path": str(tmp_path / "bi" / "other.duckdb")})
    assert ReplicaPublisher.from_settings(elsewhere, every_s=1).target_path == tmp_path / "bi" / "replica" / "other.duckdb"
    postgres = settings_for(tmp_path / "postgres", **{"reporting.backend": "postgres", "reporting.duckdb.path": str(main)})
    assert ReplicaPublisher.from_settings(postgres, every_s=1) is None
