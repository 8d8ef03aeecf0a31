"""Source truncates applied on a real DuckDB file and PostgreSQL (see conftest): soft and hard delete
semantics, order with the surrounding changes, replays, no resurrection, and batch-boundary independence.

Events go through the pipeline's own planner and converter, exactly as the worker applies them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import orjson
import pytest

from pipelines.apply.backend import ApplyBatch, ArrowTableBatch
from pipelines.apply.convert import apply_batch
from pipelines.apply.pipeline_schema import all_columns
from pipelines.cdc.events import Record
from pipelines.cdc.plan import Planner
from pipelines.contract.ddl import quote_ident
from pipelines.contract.model import load_contracts
from pipelines.projection import load_projection
from pipelines.settings import REPO_ROOT

pytestmark = pytest.mark.integration

ORDERS = "orders.public.orders"
STOCK = "warehouse.warehouse.bin_stock"
TS0 = 1_800_000_000_000  # ms
UTC = dt.UTC


def ts(position: int) -> dt.datetime:
    return dt.datetime.fromtimestamp((TS0 + position * 1000) / 1000, UTC)


@pytest.fixture(scope="module")
def contracts():
    return {c.physical_name: c for c in load_contracts(REPO_ROOT / "reporting_schema")}


@pytest.fixture(scope="module")
def planner(contracts):
    projections = {}
    for service in ("orders", "warehouse"):
        projections.update(load_projection(REPO_ROOT / "connectors" / service / "projection.yaml").by_topic)
    return Planner(projections, contracts)


@pytest.fixture()
def db(backend, contracts):
    backend.ensure_schema([contracts[n] for n in ("orders_v1", "orders_v2", "order_lines_v1", "stock_levels_v1")])
    return backend


# --- events as the connectors send them ------------------------------------------------------------------

def _order(id_: int, state: int, cents: int) -> dict:
    return {"id": id_, "customer_ref": 500 + id_, "state_code": state, "total_cents": cents, "currency_iso": "eur",
            "created_ts": "2026-11-25T09:58:41.5Z", "modified_ts": "2026-11-25T10:00:00.123456Z",
            "terms_snapshot": "terms", "metadata": '{"channel": "web"}'}


def _pg(op: str, position: int, before=None, after=None) -> bytes:
    return orjson.dumps({
        "before": before, "after": after, "op": op, "ts_ms": TS0 + position * 1000 + 5, "transaction": None,
        "source": {"connector": "postgresql", "name": "orders", "ts_ms": TS0 + position * 1000, "db": "orders",
                   "schema": "public", "table": "orders", "txId": 700 + position, "lsn": position,
                   "snapshot": "false"}})


def order(op: str, id_: int, position: int, state: int = 10, cents: int = 1000) -> tuple:
    row = _order(id_, state, cents)
    value = _pg(op, position, before=row) if op == "d" else _pg(op, position, after=row)
    return (ORDERS, orjson.dumps({"id": id_}), value)


def order_truncate(position: int) -> tuple:
    return (ORDERS, None, _pg("t", position))


def _maria(op: str, pos: int, before=None, after=None) -> bytes:
    return orjson.dumps({
        "before": before, "after": after, "op": op, "ts_ms": TS0 + pos * 1000 + 5, "transaction": None,
        "source": {"connector": "mariadb", "name": "warehouse", "ts_ms": TS0 + pos * 1000, "db": "warehouse",
                   "table": "bin_stock", "server_id": 5401, "file": "mariadb-bin.000001", "pos": pos, "row": 0,
                   "snapshot": "false"}})


def stock(op: str, sku: str, pos: int, on_hand: int = 5) -> tuple:
    row = {"sku": sku, "site_code": "DUB", "qty_on_hand": on_hand, "qty_allocated": 0,
           "modified_on": (TS0 + pos * 1000) * 1000}
    value = _maria(op, pos, before=row) if op == "d" else _maria(op, pos, after=row)
    return (STOCK, orjson.dumps({"sku": sku, "site_code": "DUB"}), value)


def stock_truncate(pos: int) -> tuple:
    return (STOCK, None, _maria("t", pos))


class Feed:
    """Kafka offsets per topic, like one partition per topic."""

    def __init__(self) -> None:
        self.next: dict[str, int] = {}

    def records(self, events: Sequence[tuple]) -> list[Record]:
        out = []
        for topic, key, value in events:
            offset = self.next.get(topic, 0)
            self.next[topic] = offset + 1
            out.append(Record(topic, 0, offset, key, value))
        return out


def apply(db, planner, contracts, events, feed: Feed | None = None):
    records = (feed or Feed()).records(events)
    return db.apply("g", apply_batch(planner.plan_records(records), contracts))


def rows(db, table: str, where: str = "TRUE") -> list[tuple]:
    if table.startswith("stock"):
        return db.query(f'SELECT sku, on_hand, "_source_position", "_op" FROM reporting.{table} WHERE {where} ORDER BY 1')
    return db.query(f'SELECT order_id, status, "_source_position", "_op", "_deleted_at" FROM reporting.{table} '
                    f"WHERE {where} ORDER BY 1")


def live(db, table: str = "orders_v1") -> list[int]:
    return [r[0] for r in db.query(f'SELECT order_id FROM reporting.{table} WHERE "_deleted_at" IS NULL ORDER BY 1')]


# --- soft delete semantics ----------------------------------------------------------------------------------

def test_soft_truncate_marks_every_live_row_deleted_at_the_truncate(db, planner, contracts):
    apply(db, planner, contracts, [order("c", 1, 10), order("c", 2, 20), order("c", 3, 30), order("d", 3, 35)])
    result = apply(db, planner, contracts, [order_truncate(40)])
    assert live(db) == [] and live(db, "orders_v2") == []
    assert rows(db, "orders_v1") == [
        (1, "PLACED", 40, "d", ts(40)), (2, "PLACED", 40, "d", ts(40)),
        (3, "PLACED", 35, "d", ts(35)),  # deleted before the truncate: keeps its own delete
    ]
    assert sorted((t.physical_name, t.rows_deleted, t.replayed) for t in result.truncates) == [
        ("orders_v1", 2, False), ("orders_v2", 2, False)]
    assert db.query("SELECT physical_name, \"_source_position\", \"_source_ts\", rows_deleted FROM _pipeline.truncates "
                    "ORDER BY 1") == [("orders_v1", 40, ts(40), 2), ("orders_v2", 40, ts(40), 2)]
    assert db.query("SELECT newest_source_ts FROM _pipeline.table_status WHERE physical_name = 'orders_v1'") == [
        (ts(40),)]


def test_soft_truncate_in_the_middle_of_a_batch(db, planner, contracts):
    apply(db, planner, contracts, [order("c", 1, 10), order("c", 9, 15)])
    apply(db, planner, contracts, [
        order("u", 1, 20, state=20),  # before the truncate: superseded, the row keeps this last image
        order("c", 2, 30),            # first seen in this batch, before the truncate: stored soft-deleted
        order_truncate(40),
        order("c", 3, 50),            # after: applied after it
        order("c", 9, 60, cents=99),  # a key re-created after the truncate is live again
    ])
    assert rows(db, "orders_v1") == [
        (1, "PAID", 40, "d", ts(40)), (2, "PLACED", 40, "d", ts(40)),
        (3, "PLACED", 50, "c", None), (9, "PLACED", 60, "c", None)]


def test_rows_stored_with_a_newer_position_are_kept(db, planner, contracts):
    apply(db, planner, contracts, [order("c", 1, 10), order("c", 2, 60)])
    result = apply(db, planner, contracts, [order_truncate(40)])  # e.g. from another partition, or a replay
    assert live(db) == [2]
    assert {t.rows_deleted for t in result.truncates} == {1}


def test_replayed_truncate_and_replayed_creates_change_nothing(db, planner, contracts):
    history = [order("c", 1, 10), order("u", 1, 20, state=20), order("c", 2, 30), order_truncate(40),
               order("c", 3, 50)]
    apply(db, planner, contracts, history)
    before = rows(db, "orders_v1")
    result = apply(db, planner, contracts, history)  # redelivery of everything, one batch
    assert {(t.rows_deleted, t.replayed) for t in result.truncates} == {(0, True)}
    for event in history:  # ... and one event per batch
        apply(db, planner, contracts, [event])
    assert rows(db, "orders_v1") == before
    # a create older than the truncate, of a key never seen, is not inserted either
    apply(db, planner, contracts, [order("c", 7, 39)])
    assert rows(db, "orders_v1", "order_id = 7") == []
    # a genuinely newer create of a truncated key revives it
    apply(db, planner, contracts, [order("c", 1, 70, cents=5)])
    assert live(db) == [1, 3]


def test_truncate_only_batch_stores_its_offset(db, planner, contracts):
    feed = Feed()
    apply(db, planner, contracts, [order("c", 1, 10)], feed)
    apply(db, planner, contracts, [order_truncate(40)], feed)
    assert db.stored_offsets("g") == {(ORDERS, 0): 2}


# --- hard delete semantics ----------------------------------------------------------------------------------

def test_hard_truncate_removes_rows_and_none_come_back(db, planner, contracts):
    apply(db, planner, contracts, [stock("c", "LP-1", 100), stock("c", "LP-2", 110), stock("c", "LP-3", 120)])
    result = apply(db, planner, contracts, [stock("u", "LP-1", 130, on_hand=9), stock_truncate(200),
                                            stock("c", "LP-4", 210)])
    assert [r[0] for r in rows(db, "stock_levels_v1")] == ["LP-4"]
    assert [(t.physical_name, t.rows_deleted, t.delete_semantics) for t in result.truncates] == [
        ("stock_levels_v1", 3, "hard")]
    # replays: the truncate again, and old creates of truncated keys
    apply(db, planner, contracts, [stock_truncate(200)])
    apply(db, planner, contracts, [stock("c", "LP-1", 100), stock("c", "LP-2", 110)])
    assert [r[0] for r in rows(db, "stock_levels_v1")] == ["LP-4"]
    apply(db, planner, contracts, [stock("c", "LP-2", 220, on_hand=1)])
    assert [r[:2] for r in rows(db, "stock_levels_v1")] == [("LP-2", 1), ("LP-4", 5)]


def test_staged_arrow_batches_of_planner_processes_apply_the_truncate(db, planner, contracts):
    apply(db, planner, contracts, [stock("c", "LP-1", 100)])
    base = apply_batch(planner.plan_records(Feed().records([stock_truncate(200)])), contracts)
    staged = [ArrowTableBatch(t.contract, t.to_arrow(), t.keep_columns, t.has_deletes, t.newest_source_ts, t.truncates)
              for t in base.tables]
    db.apply("g", ApplyBatch(staged, [], base.next_offsets))
    assert rows(db, "stock_levels_v1") == []


# --- the result does not depend on where batches end ---------------------------------------------------------

SCENARIOS = {
    "orders_v1": [order("c", 1, 10), order("c", 2, 20), order("u", 1, 30, state=20), order("d", 2, 35),
                  order("c", 4, 36), order_truncate(40), order("c", 3, 50), order("c", 2, 55), order("u", 3, 60,
                  state=20), order_truncate(70), order("c", 5, 80), order("c", 3, 69)],
    "stock_levels_v1": [stock("c", "A", 10), stock("c", "B", 20), stock("u", "A", 30, on_hand=1), stock("d", "B", 35),
                        stock_truncate(40), stock("c", "C", 50), stock("c", "B", 55), stock_truncate(70),
                        stock("c", "D", 80), stock("c", "C", 69)],
}


def _contents(db, contract):
    """Every stored row, every column but `_ingested_at` (last column: `_deleted_at` when soft)."""
    columns = [c for c in all_columns(contract) if c != "_ingested_at"]
    return db.query(f"SELECT {', '.join(quote_ident(c) for c in columns)} FROM reporting.{contract.physical_name} "
                    "ORDER BY 1, 2")


@pytest.mark.parametrize("table", sorted(SCENARIOS))
@pytest.mark.parametrize("cut", [None, 1, 2, 3, 5])
def test_batch_boundaries_do_not_change_the_result(backend, planner, contracts, table, cut):
    events = SCENARIOS[table]
    backend.ensure_schema([contracts[table], contracts["orders_v2"]])
    feed = Feed()
    step = cut or len(events)
    for i in range(0, len(events), step):
        apply(backend, planner, contracts, events[i:i + step], feed)
    got = _contents(backend, contracts[table])
    if table == "orders_v1":  # soft: every key stays, only the one created after the last truncate is live
        assert [(r[0], r[2]) for r in got if r[-1] is None] == [(5, "PLACED")]
        assert [(r[0], r[2], r[-4], r[-1]) for r in got if r[-1] is not None] == [
            (1, "PAID", 40, ts(40)), (2, "PLACED", 70, ts(70)), (3, "PAID", 70, ts(70)), (4, "PLACED", 40, ts(40))]
    else:  # hard: only the key created after the last truncate is stored
        assert [r[:3] for r in got] == [("D", "DUB", 5)]
    expected = _expected.setdefault((backend.dialect, table), got)  # the first cut of this backend
    assert got == expected


_expected: dict[tuple[str, str], list] = {}
