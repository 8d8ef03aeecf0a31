"""`--format table|csv|json` of the commands that print rows, at 80 columns and through a pipe (CliRunner).

Every value comes out whole: csv/json hold the raw values (numbers as numbers), the table layout never
cuts a cell, and nothing piped carries an ANSI escape code.
"""

from __future__ import annotations

import csv
import io
import json

import duckdb
import pytest

from pipelines.apply.slots import SlotStatus
from pipelines.connect.client import ConnectorState
from pipelines.reconcile.diff import ColumnDifference, RowDifference, TableReconciliation

pytestmark = pytest.mark.unit

LONG_ERROR = ('column "customer_reference_identifier" of relation "customers_v1" violates a not-null constraint '
              "while applying offset 1323456789 of customers.public.customers")
LONG_TOPIC = "customers.public.customers_with_a_rather_long_topic_name_for_80_columns"
BIG_OFFSET = 1323456789
LONG_REASON = ("validate: order_lines_v1.unit_price_cents: value -1323 is below the contract's minimum 0 "
               "(source column unit_price_cents, projection connectors/orders/projection.yaml:42)")
LONG_TRACE = ("org.apache.kafka.connect.errors.ConnectException: An exception occurred in the change event "
              "producer. This connector will be stopped.\n\tat io.debezium.pipeline.ErrorHandler.setProducerThrowable"
              "(ErrorHandler.java:67)\nCaused by: org.postgresql.util.PSQLException: FATAL: terminating connection")


def _clean(result) -> str:
    assert "\x1b[" not in result.output, "ANSI escape codes in piped output"
    assert "…" not in result.stdout, "a value was cut"
    return result.stdout


NOTES = ("Kafka not reachable", "replication slot unknown")


def _widest_table_line(out: str) -> int:
    """Width of the widest line of the tables (notes are single lines: a terminal wraps them)."""
    return max((len(line) for line in out.splitlines() if not line.startswith(NOTES)), default=0)


def _json(result):
    return json.loads(_clean(result))


def _csv_blocks(result) -> list[list[list[str]]]:
    """CSV output as blocks (several tables are separated by an empty line), each [header, rows...]."""
    blocks: list[list[list[str]]] = [[]]
    for row in csv.reader(io.StringIO(_clean(result))):
        if row:
            blocks[-1].append(row)
        else:
            blocks.append([])
    return blocks


def _csv(result) -> list[dict[str, str]]:
    [block] = _csv_blocks(result)
    return [dict(zip(block[0], row, strict=True)) for row in block[1:]]


# ------------------------------------------------------------------------------------------ reporting status
@pytest.fixture
def busy_db(reporting_db, monkeypatch):
    """A table with a long last error, a stored offset with a long topic and a big offset, a dead letter;
    Kafka unreachable, one replication slot far over the WAL threshold and one source down."""
    con = duckdb.connect(str(reporting_db))
    con.execute("INSERT INTO _pipeline.table_status (physical_name, newest_source_ts, last_applied_at, last_error) "
                "VALUES ('customers_v1', now(), now(), ?)", [LONG_ERROR])
    con.execute("INSERT INTO _pipeline.offsets (consumer_group, topic, kafka_partition, next_offset, updated_at) "
                "VALUES ('reporting-pipeline', ?, 3, ?, now())", [LONG_TOPIC, BIG_OFFSET])
    for offset, target in ((BIG_OFFSET, "order_lines_v1"), (7, "customers_v1")):
        con.execute("INSERT INTO _pipeline.dead_letters (topic, kafka_partition, kafka_offset, stage, reason, "
                    "source_table, target_table, first_seen_at) VALUES (?, 0, ?, 'validate', ?, ?, ?, now())",
                    [f"{target.split('_v')[0]}.public.x", offset, LONG_REASON, "public.x", target])
    con.close()

    def no_kafka(_settings):
        raise ConnectionError("kafka is down")

    monkeypatch.setattr("pipelines.kafka.security.client_config", no_kafka)
    monkeypatch.setattr("pipelines.apply.slots.slot_statuses", lambda _settings: (
        [SlotStatus("customers", "debezium_customers_slot_with_a_long_name", False, 5 * 2**30)],
        ["orders (127.0.0.1:55433): connection refused [Errno 111]"]))
    return reporting_db


def test_status_json(cli, busy_db):
    result = cli("status", "--format", "json")
    assert result.exit_code == 0, result.output
    out = _json(result)
    assert set(out) == {"tables", "drift", "lags", "slots", "events"}
    tables = {t["contract_table"]: t for t in out["tables"]}
    assert "stock_levels_v1" in tables and "order_lines_v1" in tables
    assert tables["customers_v1"]["last_error"] == LONG_ERROR
    assert tables["customers_v1"]["live_rows"] == 0 and isinstance(tables["customers_v1"]["freshness_s"], float)
    assert tables["order_lines_v1"]["dead_letters"] == 1 and tables["order_lines_v1"]["freshness_s"] is None
    assert out["lags"] == [{"topic": LONG_TOPIC, "partition": 3, "next_offset": BIG_OFFSET, "end_offset": None,
                            "lag": None}]
    [slot] = out["slots"]
    assert slot["slot"] == "debezium_customers_slot_with_a_long_name" and slot["retained_bytes"] == 5 * 2**30
    assert slot["active"] is False and "INACTIVE" in slot["warning"]
    assert out["events"][0]["consumer_group"] == "reporting-pipeline"
    assert out["events"][0]["events_per_second"] == 0
    assert "Kafka not reachable" in result.stderr and "[Errno 111]" in result.stderr  # notes beside the rows


def test_status_csv(cli, busy_db):
    result = cli("status", "--format", "csv")
    assert result.exit_code == 0, result.output
    tables, drift, lags, slots, events = _csv_blocks(result)
    assert drift == [["source_table", "topic", "first_position", "first_seen_at", "dead_letters", "reason"]]
    assert tables[0] == ["contract_table", "live_rows", "freshness_s", "fresh", "objective_s", "dead_letters",
                         "last_error"]
    assert [r for r in tables if r[0] == "customers_v1"][0][-1] == LONG_ERROR
    assert lags == [["topic", "partition", "next_offset", "end_offset", "lag"], [LONG_TOPIC, "3", str(BIG_OFFSET),
                                                                               "", ""]]
    assert slots[1][:4] == ["customers", "debezium_customers_slot_with_a_long_name", "false", str(5 * 2**30)]
    assert events[0] == ["consumer_group", "window_s", "events_per_second"]


def test_status_table_at_80_columns(cli, busy_db):
    result = cli("status")
    assert result.exit_code == 0, result.output
    out = _clean(result)
    for value in ("stock_levels_v1", "order_lines_v1", "customers_v1", "1,323,456,789",
                  "debezium_customers_slot_with_a_long_name"):
        assert value in out
    assert _widest_table_line(out) <= 80
    flat = "".join(out.split())
    assert "".join(LONG_TOPIC.split()) in flat.replace("│", "")


# ------------------------------------------------------------------------------------------ contract status
def test_contract_status_json_and_csv(cli):
    result = cli("contract", "status", "--format", "json")
    assert result.exit_code == 0, result.output
    records = {r["table"]: r for r in _json(result)}
    assert {"customers_v1", "order_lines_v1", "orders_v1", "orders_v2", "stock_levels_v1"} <= set(records)
    v1 = records["orders_v1"]
    assert v1["status"] == "deprecated" and v1["deprecation_date"] == "2027-06-30"
    assert isinstance(v1["days_to_deprecation"], int) and v1["live_rows"] == 0 and v1["exists"] is True
    assert isinstance(v1["freshness_objective_seconds"], int) and v1["freshness"] == "unknown"

    result = cli("contract", "status", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = {r["table"]: r for r in _csv(result)}
    assert set(rows) == set(records)
    assert rows["orders_v1"]["deprecation_date"] == "2027-06-30" and rows["orders_v1"]["live_rows"] == "0"
    assert rows["stock_levels_v1"]["owner_service"] == "warehouse"


def test_contract_status_table_at_80_columns(cli):
    result = cli("contract", "status")
    assert result.exit_code == 0, result.output
    out = _clean(result)
    for value in ("stock_levels_v1", "order_lines_v1", "warehouse", "deprecated", "2027-06-30"):
        assert value in out
    assert _widest_table_line(out) <= 80


def test_contract_status_without_database_is_one_line(cli, reporting_db):
    reporting_db.unlink()
    result = cli("contract", "status", "--format", "json")
    assert result.exit_code == 2
    assert result.stdout == "" and "no reporting database" in result.stderr
    assert "Traceback" not in result.output


# ------------------------------------------------------------------------------------------ reconcile
def test_reconcile_with_sources_down_reports_each_table(cli):
    result = cli("reconcile", "--format", "json")
    assert result.exit_code == 2, result.output  # no source can be read: every table is an error
    out = _json(result)
    assert set(out) == {"tables", "differences"}
    assert {"customers_v1", "stock_levels_v1"} <= {t["table"] for t in out["tables"]}
    for t in out["tables"]:
        assert t["status"] == "error" and t["error"] and t["source_rows"] is None
    assert out["differences"] == []


@pytest.fixture
def reconciled(monkeypatch):
    results = [
        TableReconciliation("customers_v1", "customers:public.customers", source_rows=5, reporting_rows=5,
                            seconds=0.25),
        TableReconciliation(
            "stock_levels_v1", "warehouse:warehouse.bin_stock_by_distribution_centre", source_rows=1323456789,
            reporting_rows=1323456788, missing=1, different=1, seconds=12.345,
            missing_samples=[RowDifference("missing", (("sku", "SKU-000123456789"),
                                                       ("site", "north-west-distribution-centre")))],
            different_samples=[RowDifference("different", (("sku", "SKU-1"), ("site", "s")),
                                             (ColumnDifference("on_hand", "1323456", "1323455"),))]),
        TableReconciliation("shipments_v1", skipped="no projection feeds it (connectors/x/projection.yaml)"),
    ]
    monkeypatch.setattr("pipelines.reconcile.run.reconcile", lambda settings, tables, show: results)
    return results


def test_reconcile_json(cli, reconciled):
    result = cli("reconcile", "--format", "json")
    assert result.exit_code == 1, result.output
    out = _json(result)
    tables = {t["table"]: t for t in out["tables"]}
    stock = tables["stock_levels_v1"]
    assert stock["source_table"] == "warehouse:warehouse.bin_stock_by_distribution_centre"
    assert (stock["source_rows"], stock["reporting_rows"], stock["missing"], stock["different"]) == \
        (1323456789, 1323456788, 1, 1)
    assert stock["status"] == "differences" and stock["seconds"] == 12.345 and stock["differences"] == 2
    assert tables["shipments_v1"]["status"] == "skipped" and tables["shipments_v1"]["missing"] is None
    assert tables["shipments_v1"]["skipped"].startswith("no projection feeds it")
    missing, different = out["differences"]
    assert missing == {"table": "stock_levels_v1", "kind": "missing",
                       "key": {"sku": "SKU-000123456789", "site": "north-west-distribution-centre"},
                       "columns": [], "reason": None}
    assert different["columns"] == [{"column": "on_hand", "expected": "1323456", "stored": "1323455"}]


def test_reconcile_csv(cli, reconciled):
    result = cli("reconcile", "--format", "csv")
    assert result.exit_code == 1, result.output
    tables, differences = _csv_blocks(result)
    header = tables[0]
    stock = dict(zip(header, [r for r in tables if r[0] == "stock_levels_v1"][0], strict=True))
    assert stock["source_rows"] == "1323456789" and stock["seconds"] == "12.345"
    assert differences[0] == ["table", "kind", "key", "columns", "reason"]
    assert json.loads(differences[1][2]) == {"sku": "SKU-000123456789", "site": "north-west-distribution-centre"}


def test_reconcile_table_at_80_columns(cli, reconciled):
    result = cli("reconcile")
    assert result.exit_code == 1, result.output
    out = _clean(result)
    for value in ("stock_levels_v1", "1,323,456,789", "customers_v1", "skipped", "SKU-000123456789",
                  "north-west-distribution-centre"):
        assert value in out
    assert "warehouse:warehouse.bin_stock_by_distribution_centre" in "".join(out.split()).replace("│", "")
    assert _widest_table_line(out) <= 80


# ------------------------------------------------------------------------------------------ stack status
def test_stack_status_with_the_stack_down(cli):
    result = cli("stack", "status", "--format", "json")
    assert result.exit_code == 1, result.output  # exit 1: components are down
    records = _json(result)
    assert {"kafka", "connect"} <= {r["component"] for r in records}
    assert all(r["up"] is False for r in records)
    connect = [r for r in records if r["component"] == "connect"][0]
    assert connect["detail"].startswith("http://127.0.0.1:9 log=")

    rows = _csv(cli("stack", "status", "--format", "csv"))
    assert [r["component"] for r in rows] == [r["component"] for r in records]
    assert {r["up"] for r in rows} == {"false"} and rows[0]["detail"] == records[0]["detail"]

    result = cli("stack", "status")
    assert result.exit_code == 1
    out = _clean(result)
    assert "down" in out and "postgres:customers" in out and "mariadb:warehouse" in out
    assert _widest_table_line(out) <= 80


# ------------------------------------------------------------------------------------------ connectors status
@pytest.fixture
def connect(monkeypatch):
    class FakeConnect:
        def status(self, name):
            if name.startswith("customers"):
                return ConnectorState(name, "FAILED", ((0, "FAILED"), (1, "RUNNING")), LONG_TRACE)
            return ConnectorState(name, "RUNNING", ((0, "RUNNING"),))

    monkeypatch.setattr("pipelines.connect.client.client_for", lambda settings: FakeConnect())


def test_connectors_status(cli, connect):
    result = cli("connectors", "status", "--format", "json")
    assert result.exit_code == 1, result.output  # one connector is not running
    records = {r["connector"]: r for r in _json(result)}
    failed = [r for name, r in records.items() if name.startswith("customers")][0]
    assert failed["state"] == "FAILED" and failed["trace"] == LONG_TRACE
    assert failed["tasks"] == [{"id": 0, "state": "FAILED"}, {"id": 1, "state": "RUNNING"}]
    assert len(records) == 4

    rows = _csv(cli("connectors", "status", "--format", "csv"))
    failed = [r for r in rows if r["connector"].startswith("customers")][0]
    assert failed["trace"] == LONG_TRACE and json.loads(failed["tasks"])[0] == {"id": 0, "state": "FAILED"}

    out = _clean(cli("connectors", "status"))
    assert "0:FAILED, 1:RUNNING" in out
    first_line = LONG_TRACE.splitlines()[0]
    assert "".join(first_line.split()) in "".join(out.split()).replace("│", "")


def test_connectors_status_with_connect_down_is_one_line(cli):
    result = cli("connectors", "status", "--format", "json")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.output
    assert result.stdout == ""


# ------------------------------------------------------------------------------------------ dlq list
def test_dlq_list(cli, busy_db):
    result = cli("dlq", "list", "--format", "json")
    assert result.exit_code == 0, result.output
    records = _json(result)
    assert [r["table"] for r in records] == ["order_lines_v1", "customers_v1"]
    first = records[0]
    assert first["reason"] == LONG_REASON and first["offset"] == BIG_OFFSET and first["partition"] == 0
    assert first["retries"] == 0 and isinstance(first["id"], int) and first["first_seen_at"]
    assert "2 dead letter(s) shown" in result.stderr

    rows = _csv(cli("dlq", "list", "--format", "csv"))
    assert rows[0]["reason"] == LONG_REASON and rows[0]["offset"] == str(BIG_OFFSET)

    result = cli("dlq", "list")
    out = _clean(result)
    assert f"order_lines.public.x[0]@{BIG_OFFSET}" in out and "2 dead letter(s) shown" in out
    assert "".join(LONG_REASON.split()) in "".join(out.split()).replace("│", "")
    assert _widest_table_line(out) <= 80


def test_dlq_list_by_contract_table(cli, busy_db):
    records = _json(cli("dlq", "list", "--table", "customers", "--format", "json"))
    assert [r["table"] for r in records] == ["customers_v1"]
    records = _json(cli("dlq", "list", "--table", "order_lines_v1", "--format", "json"))
    assert [r["table"] for r in records] == ["order_lines_v1"]
    assert _json(cli("dlq", "list", "--table", "orders.public.orders", "--format", "json")) == []


# ------------------------------------------------------------------------------------------ colours
def test_no_color_on_a_terminal(cli):
    forced = cli("stack", "status", env={"FORCE_COLOR": "1"})
    assert "\x1b[" in forced.output  # the check below can fail: a terminal gets colours
    plain = cli("stack", "status", env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert plain.exit_code == 1 and "\x1b[" not in plain.output and "down" in plain.stdout
