"""Source truncates (op t): parsing, planning (pure), the staged batch, the apply SQL and the connector
settings that make Debezium emit them. Apply on real databases: tests/integration/apply/test_truncate_apply.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import orjson
import pytest
from cdc_helpers import REPO, order_row, pg_value, rec

from pipelines.apply import planner_pool
from pipelines.apply import sql as apply_sql
from pipelines.apply.convert import apply_batch, table_batch
from pipelines.cdc.events import Op, Record, parse
from pipelines.cdc.plan import Planner
from pipelines.cdc.position import encode_binlog_position
from pipelines.contract.model import load_contracts
from pipelines.projection import load_projection

pytestmark = pytest.mark.unit

T = "orders.public.orders"
STOCK = "warehouse.warehouse.bin_stock"
TS = 1732528800000


@pytest.fixture()
def planner(orders_projection, contracts):
    return Planner(orders_projection, contracts)


@pytest.fixture(scope="module")
def real_contracts():
    return {c.physical_name: c for c in load_contracts(REPO / "reporting_schema")}


@pytest.fixture(scope="module")
def warehouse_planner(real_contracts):
    return Planner(load_projection(REPO / "connectors" / "warehouse" / "projection.yaml"), real_contracts)


def truncate(offset: int, lsn: int, ts_ms: int = TS, table: str = "orders") -> Record:
    """A PostgreSQL truncate as the connector sends it: no key, no row images."""
    return rec(pg_value("t", table, lsn=lsn, ts_ms=ts_ms), offset, topic=f"orders.public.{table}", key={})


def truncate_record(offset: int, lsn: int, ts_ms: int = TS) -> Record:
    r = truncate(offset, lsn, ts_ms)
    return Record(r.topic, r.partition, r.offset, None, r.value)  # the Kafka key of a truncate is null


def change(op: str, id_: int, offset: int, lsn: int, **row) -> Record:
    image = order_row(id_, **row)
    if op == "d":
        return rec(pg_value("d", before=image, lsn=lsn), offset)
    return rec(pg_value(op, after=image, lsn=lsn), offset)


def mariadb_truncate(offset: int, pos: int) -> Record:
    value = {"before": None, "after": None,
             "source": {"version": "3.5.0.Final", "connector": "mariadb", "name": "warehouse", "ts_ms": TS,
                        "snapshot": "false", "db": "warehouse", "sequence": None, "table": "bin_stock",
                        "server_id": 5401, "gtid": "0-5401-77", "file": "mariadb-bin.000002", "pos": pos,
                        "row": 0, "thread": 12, "query": None},
             "transaction": None, "op": "t", "ts_ms": TS + 20}
    return Record(STOCK, 0, offset, None, orjson.dumps(value))


def stock_change(op: str, sku: str, offset: int, pos: int, on_hand: int = 5) -> Record:
    image = {"sku": sku, "site_code": "BER-1", "qty_on_hand": on_hand, "qty_allocated": 1, "modified_on": TS * 1000}
    value = {"before": image if op == "d" else None, "after": None if op == "d" else image,
             "source": {"version": "3.5.0.Final", "connector": "mariadb", "name": "warehouse", "ts_ms": TS,
                        "snapshot": "false", "db": "warehouse", "table": "bin_stock", "server_id": 5401,
                        "gtid": "0-5401-9", "file": "mariadb-bin.000002", "pos": pos, "row": 0},
             "transaction": None, "op": op, "ts_ms": TS + 20}
    return Record(STOCK, 0, offset, orjson.dumps({"sku": sku, "site_code": "BER-1"}), orjson.dumps(value))


def keys(rows, idx=0):
    return sorted(r[idx] for r in rows)


# --- parsing -------------------------------------------------------------------------------------------

def test_pg_truncate_event_parses_with_its_lsn_and_commit_time():
    r = truncate_record(3, lsn=4242)
    ev = parse(r.topic, r.partition, r.offset, r.key, r.value)
    assert (ev.op, ev.position, ev.source_ts_ms, ev.source_table) == (Op.TRUNCATE, 4242, TS, "public.orders")
    assert ev.before is None and ev.after is None and ev.key is None


def test_mariadb_truncate_event_parses_with_its_binlog_position():
    r = mariadb_truncate(0, pos=8800)
    ev = parse(r.topic, r.partition, r.offset, r.key, r.value)
    assert ev.op is Op.TRUNCATE and ev.source_table == "warehouse.bin_stock"
    assert ev.position == encode_binlog_position("mariadb-bin.000002", 8800, 0)


# --- planning ------------------------------------------------------------------------------------------

def test_truncate_alone_marks_every_target_of_its_source_table(planner):
    plan = planner.plan_records([truncate_record(0, lsn=500)])
    assert plan.dead_letters == []
    assert set(plan.tables) == {"orders_v1", "orders_v2"}  # order_lines is another source table
    for tp in plan.tables.values():
        assert tp.truncates == [(500, datetime.fromtimestamp(TS / 1000, UTC))]
        assert tp.upserts == [] and tp.deletes == []
    assert plan.next_offsets() == {(T, 0): 1}
    assert (plan.records, plan.changes, plan.superseded, plan.skipped) == (1, 1, 0, 0)


def test_truncate_of_another_table_leaves_this_one_alone(planner):
    plan = planner.plan_records([change("c", 1, 0, 10), truncate(0, 20, table="order_lines")])
    assert plan.tables["orders_v1"].truncates == [] and keys(plan.tables["orders_v1"].upserts) == [1]
    assert plan.tables["order_lines_v1"].truncates[-1][0] == 20


def test_changes_before_the_truncate_are_superseded_and_keep_their_last_image(planner):
    plan = planner.plan_records([
        change("c", 1, 0, 10), change("u", 1, 1, 20, state_code=20),  # live at the truncate: last image kept
        change("c", 2, 2, 30),
        change("d", 3, 3, 35),                                         # deleted already: its own delete stays
        truncate(4, 40, ts_ms=TS + 1000),
    ])
    v1 = plan.tables["orders_v1"]
    assert v1.upserts == [] and v1.truncates[-1][0] == 40
    by_key = {k[0]: (pos, ts) for k, pos, ts in v1.deletes}
    at_truncate = datetime.fromtimestamp((TS + 1000) / 1000, UTC)
    assert by_key[1] == (40, at_truncate) and by_key[2] == (40, at_truncate)
    assert by_key[3][0] == 35
    images = {v1.deletes[i][0][0]: dict(zip(v1.columns, row, strict=True)) for i, row in v1.delete_images.items()}
    assert set(images) == {1, 2}
    assert images[1]["status"] == "PAID" and images[1]["_op"] == "d" and images[1]["_source_position"] == 40
    assert plan.dead_letters == []
    assert (plan.changes, plan.superseded) == (5, 3)  # the update superseded the create; the truncate 2 keys


def test_changes_after_the_truncate_are_planned_as_usual(planner):
    plan = planner.plan_records([change("c", 1, 0, 10), truncate(1, 40), change("u", 1, 2, 50, state_code=20),
                                 change("c", 4, 3, 60)])
    v1 = plan.tables["orders_v1"]
    assert v1.truncates[-1][0] == 40
    rows = {r[0]: dict(zip(v1.columns, r, strict=True)) for r in v1.upserts}
    assert sorted(rows) == [1, 4] and rows[1]["_source_position"] == 50 and rows[1]["status"] == "PAID"
    assert v1.deletes == [] and v1.delete_images == {}


def test_delete_after_the_truncate_of_a_key_it_superseded(planner):
    plan = planner.plan_records([change("c", 1, 0, 10), truncate(1, 40), change("c", 1, 2, 50),
                                 change("d", 1, 3, 60)])
    v1 = plan.tables["orders_v1"]
    assert [(k, p) for k, p, _ in v1.deletes] == [((1,), 60)]


def test_an_older_change_arriving_after_the_truncate_is_dropped(planner):
    plan = planner.plan_records([truncate(0, 40), change("c", 5, 1, 30)])  # a replay: older than the truncate
    v1 = plan.tables["orders_v1"]
    assert v1.upserts == [] and v1.deletes == [] and v1.truncates[-1][0] == 40
    assert (plan.changes, plan.superseded) == (2, 1)


def test_a_state_newer_than_the_truncate_is_kept_whatever_the_arrival_order(planner):
    # positions decide (the truncate's own record has no key, so on a multi-partition topic it can
    # arrive after a newer change of another partition)
    plan = planner.plan_records([change("c", 6, 0, 50), truncate(1, 40)])
    v1 = plan.tables["orders_v1"]
    assert keys(v1.upserts) == [6] and v1.deletes == [] and v1.truncates[-1][0] == 40


def test_two_truncates_in_a_batch_each_supersede_what_came_before_them(planner):
    plan = planner.plan_records([change("c", 1, 0, 10), truncate(1, 20), change("c", 2, 2, 30), truncate(3, 40),
                                 change("c", 3, 4, 50)])
    v1 = plan.tables["orders_v1"]
    assert [p for p, _ in v1.truncates] == [20, 40]  # applied in this order, after the rows
    assert sorted((k[0], p) for k, p, _ in v1.deletes) == [(1, 20), (2, 40)]
    assert keys(v1.upserts) == [3]


def test_an_older_or_repeated_truncate_changes_nothing(planner):
    plan = planner.plan_records([truncate(0, 40), change("c", 1, 1, 50), truncate(2, 20), truncate(0, 40)])
    v1 = plan.tables["orders_v1"]
    assert [p for p, _ in v1.truncates] == [40] and keys(v1.upserts) == [1] and v1.deletes == []


def test_planning_is_the_same_in_planner_processes_order(planner):
    records = [change("c", 1, 0, 10), truncate(1, 40), change("c", 2, 2, 50)]
    assert planner.plan_records(records).tables["orders_v1"] == planner.plan(
        [parse(r.topic, r.partition, r.offset, r.key, r.value, False) for r in records]).tables["orders_v1"]


def test_mariadb_truncate_of_a_hard_delete_table(warehouse_planner):
    plan = warehouse_planner.plan_records([stock_change("c", "LP-1", 0, 100), mariadb_truncate(1, 200),
                                           stock_change("c", "LP-2", 2, 300)])
    st = plan.tables["stock_levels_v1"]
    assert plan.dead_letters == []
    assert st.truncates[-1][0] == encode_binlog_position("mariadb-bin.000002", 200, 0)
    assert [k for k, _, _ in st.deletes] == [("LP-1", "BER-1")] and keys(st.upserts) == ["LP-2"]


# --- the staged batch and the apply SQL ----------------------------------------------------------------

def test_the_staged_batch_carries_the_truncate(planner, real_contracts):
    plan = planner.plan_records([change("c", 1, 0, 10), truncate(1, 40), change("c", 2, 2, 50)])
    tb = table_batch(plan.tables["orders_v1"], real_contracts["orders_v1"])
    assert tb.truncates[-1][0] == 40 and len(tb) == 2 and tb.is_delete == [False, True] and tb.has_values == [True, True]
    only = apply_batch(planner.plan_records([truncate_record(0, 40)]), real_contracts)
    assert {(t.contract.physical_name, len(t), t.truncates[-1][0]) for t in only.tables} == {("orders_v1", 0, 40),
                                                                                        ("orders_v2", 0, 40)}
    assert only.tables[0].newest_source_ts == datetime.fromtimestamp(TS / 1000, UTC)


def test_planner_processes_hand_the_truncate_back(planner, real_contracts, monkeypatch):
    monkeypatch.setattr(planner_pool, "_parts", SimpleNamespace(
        plan=lambda records: apply_batch(planner.plan_records(records), real_contracts)))
    out = planner_pool.plan_columns(planner_pool.to_columns([truncate_record(0, 40)]))
    pending = planner_pool.PendingBatch(SimpleNamespace(result=lambda: out), real_contracts)
    batch = pending.result()
    assert sorted((t.contract.physical_name, len(t), t.truncates[-1][0]) for t in batch.tables) == [
        ("orders_v1", 0, 40), ("orders_v2", 0, 40)]


def test_truncate_sql_per_delete_semantics(real_contracts):
    soft, hard = real_contracts["orders_v1"], real_contracts["stock_levels_v1"]
    assert soft.delete_semantics == "soft" and hard.delete_semantics == "hard"
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    (upd, upd_params), (rec_sql, rec_params) = apply_sql.truncate_statements(soft, 40, ts, 3)
    assert upd.startswith("UPDATE \"reporting\".") and '"_deleted_at" IS NULL' in upd and "\"_op\" = 'd'" in upd
    assert upd_params == [ts, 40, ts, 40]
    assert "_pipeline.truncates" in rec_sql and rec_params == ["orders_v1", 40, ts, 3]
    (dele, dele_params), _ = apply_sql.truncate_statements(hard, 40, ts, 3)
    assert dele.startswith("DELETE FROM \"reporting\".") and dele_params == [40]
    assert "_deleted_at" in apply_sql.truncate_count_sql(soft, 40)[0]
    assert "_deleted_at" not in apply_sql.truncate_count_sql(hard, 40)[0]
    # every MERGE drops staged changes not newer than the table's last truncate
    (merge, *_rest) = apply_sql.apply_statements(soft, "staged", [], True)
    assert "_pipeline.truncates WHERE physical_name = 'orders_v1'" in merge
    assert '"orders_v1__deleted" d ON' in merge
    # ... unless the (only) writer knows no truncate and no delete was ever stored for the table
    (merge, *_rest) = apply_sql.apply_statements(soft, "staged", [], True, deletes_stored=False, truncated=False)
    assert "USING staged AS s ON" in merge and "truncates" not in merge and "__deleted\" d" not in merge
    (merge, *_rest) = apply_sql.apply_statements(soft, "staged", [], False, deletes_stored=True, truncated=False)
    assert "truncates" not in merge and '"orders_v1__deleted" d ON' in merge


# --- capture: the connectors must not skip truncates (Debezium's default is skipped.operations=t) ------

@pytest.mark.parametrize("service", ["customers", "orders", "payments", "warehouse"])
def test_bundled_connectors_capture_truncates(service):
    config = json.loads((REPO / "connectors" / service / "connector.json").read_text())["config"]
    assert config.get("skipped.operations") == "none"


@pytest.mark.parametrize("engine", ["postgresql", "mariadb"])
def test_scaffolded_connectors_capture_truncates(engine):
    from pipelines.scaffold import NewService, connector_json

    spec = json.loads(connector_json(NewService("vinyl", engine, 5432, "records", "records")))
    assert spec["config"]["skipped.operations"] == "none"
