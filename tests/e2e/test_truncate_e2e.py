"""TRUNCATE of a captured table on the real stack (issue 16, point 1): Debezium emits op=t on both
engines (the connector files set skipped.operations=none), the pipeline applies it per the contract's
delete semantics, the changes around it keep their order, a full redelivery changes nothing, and
`reporting reconcile` finds no difference.

PostgreSQL: payments.public.payments → payments_v1 (soft delete). MariaDB: warehouse.bin_stock →
stock_levels_v1 (hard delete). On the e2e backend (REPORTING_E2E_BACKEND: a DuckDB file or a DuckLake of
the test's own).

    REPORTING_E2E_PORT_OFFSET=600 .venv/bin/pytest tests/e2e/test_truncate_e2e.py
    REPORTING_E2E_PORT_OFFSET=600 REPORTING_E2E_BACKEND=ducklake .venv/bin/pytest tests/e2e/test_truncate_e2e.py
"""

from __future__ import annotations

import time

import pytest

from pipelines.apply.runner import run_pipeline
from pipelines.reconcile.run import reconcile
from tests.support import reporting_db

pytestmark = pytest.mark.e2e

ROWS = 22  # the table had 22 rows


def _ingest(settings, said: list[str]) -> None:
    run_pipeline(settings, until_caught_up=True, install_signals=False, say=said.append)


def _query(settings, sql: str, params=None) -> list[tuple]:
    return reporting_db.query(settings, sql, params)


def _wait(settings, said: list[str], check, what: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        _ingest(settings, said)
        if check():
            return
        if time.monotonic() > deadline:
            dead = _query(settings, "SELECT stage, reason FROM _pipeline.dead_letters LIMIT 5")
            raise AssertionError(f"{what}: not reached in {timeout:.0f}s; dead letters {dead}; said {said[-5:]}")
        time.sleep(1.0)


def _payments(stack, sql: str) -> None:
    stack.pg["payments"].psql(sql, db="payments")


def _warehouse(stack, sql: str) -> None:
    stack.mariadb["warehouse"].sql("USE warehouse;\n" + sql)


def _count(settings, table: str, where: str = "TRUE") -> int:
    return _query(settings, f"SELECT count(*) FROM reporting.{table} WHERE {where}")[0][0]


def _contents(settings, table: str) -> list[tuple]:
    return _query(settings, f'SELECT * EXCLUDE ("_ingested_at") FROM reporting.{table} ORDER BY 1, 2')


def test_truncate_is_applied_per_delete_semantics_and_reconciles(stack, tmp_path):
    # its own reporting database (DuckDB file or DuckLake; its stored offsets start at 0): the whole topics are
    # read, whatever earlier tests wrote; the source tables may hold their rows too, so counts are taken
    # relative to what is there
    settings = reporting_db.separate(stack.settings, tmp_path / "truncate")
    said: list[str] = []
    _ingest(settings, said)
    _payments(stack, "INSERT INTO payments (order_ref, state_code, amount_cents, currency_iso, authorised_ts, "
                     f"modified_ts) SELECT 9000 + g, 1, 1000 + g, 'eur', now(), now() FROM generate_series(1, {ROWS}) g;")
    _warehouse(stack, "INSERT INTO bin_stock (sku, site_code, qty_on_hand, qty_allocated, modified_on) VALUES "
                      + ", ".join(f"('TR-{i:03d}', 'DUB', {i}, 0, UTC_TIMESTAMP(6))" for i in range(ROWS)) + ";")
    _wait(settings, said, lambda: _count(settings, "payments_v1", '"_deleted_at" IS NULL AND order_id > 9000 '
                                                               f"AND order_id <= {9000 + ROWS}") == ROWS
          and _count(settings, "stock_levels_v1", "sku LIKE 'TR-%'") == ROWS, f"{ROWS} payments and stock rows ingested")
    _ingest(settings, said)  # caught up: what the contract tables hold is what the sources hold
    paid = _count(settings, "payments_v1", '"_deleted_at" IS NULL')
    stocked = _count(settings, "stock_levels_v1")
    assert paid >= ROWS and stocked >= ROWS
    first_payment = _query(settings, "SELECT min(payment_id) FROM reporting.payments_v1 WHERE order_id > 9000 "
                                     "AND \"_deleted_at\" IS NULL")[0][0]
    soft_before = _count(settings, "payments_v1", '"_deleted_at" IS NOT NULL')

    # a change before the truncate, the truncate, a change after it: PostgreSQL in one transaction
    # (refunds has a foreign key to payments and is not captured: truncated with it, no event)
    _payments(stack, f"BEGIN; UPDATE payments SET state_code = 2, captured_ts = now(), modified_ts = now() "
                     f"WHERE id = {first_payment}; TRUNCATE refunds, payments; "
                     "INSERT INTO payments (order_ref, state_code, amount_cents, currency_iso, authorised_ts, modified_ts) "
                     "VALUES (9900, 1, 500, 'eur', now(), now()); COMMIT;")
    # MariaDB: TRUNCATE TABLE commits implicitly; a change before and one after it
    _warehouse(stack, "UPDATE bin_stock SET qty_on_hand = 99, modified_on = UTC_TIMESTAMP(6) WHERE sku = 'TR-000'; "
                      "TRUNCATE TABLE bin_stock; INSERT INTO bin_stock (sku, site_code, qty_on_hand, qty_allocated, "
                      "modified_on) VALUES ('TR-AFTER', 'DUB', 7, 0, UTC_TIMESTAMP(6));")
    _wait(settings, said, lambda: _count(settings, "payments_v1", '"_deleted_at" IS NULL') == 1
          and _count(settings, "stock_levels_v1") == 1, "truncates applied")

    # soft: every row stays, soft-deleted at the truncate (one position, one commit time), the row
    # updated before the truncate with its last image; the row inserted after it is live
    assert _query(settings, 'SELECT order_id, status FROM reporting.payments_v1 WHERE "_deleted_at" IS NULL') == [
        (9900, "AUTHORISED")]
    deleted = _query(settings, 'SELECT count(*), count(DISTINCT "_source_position"), count(DISTINCT "_deleted_at"), '
                               'min("_op"), max("_op") FROM reporting.payments_v1 WHERE "_deleted_at" IS NOT NULL '
                               'AND "_source_position" >= (SELECT "_source_position" FROM _pipeline.truncates '
                               "WHERE physical_name = 'payments_v1')")
    assert deleted == [(paid, 1, 1, "d", "d")]
    assert _count(settings, "payments_v1", '"_deleted_at" IS NOT NULL') == soft_before + paid
    assert _query(settings, "SELECT status FROM reporting.payments_v1 WHERE payment_id = ?", [first_payment]) == [
        ("CAPTURED",)]
    # hard: only the row inserted after the truncate is stored
    assert _query(settings, "SELECT sku, on_hand FROM reporting.stock_levels_v1") == [("TR-AFTER", 7)]
    truncates = dict(_query(settings, 'SELECT physical_name, rows_deleted FROM _pipeline.truncates'))
    assert truncates == {"payments_v1": paid, "stock_levels_v1": stocked}
    assert _query(settings, "SELECT count(*) FROM _pipeline.dead_letters WHERE topic LIKE 'payments.%' "
                            "OR topic LIKE 'warehouse.%bin_stock'") == [(0,)]
    # the worker said it (an operator sees a truncate in the stream's output and the log)
    # (counts as the stream prints them, with thousands separators: the shared session's tables hold thousands)
    assert any(f"payments_v1: {paid:,} live row(s) soft-deleted" in line for line in said), said
    assert any(f"stock_levels_v1: {stocked:,} live row(s) removed" in line for line in said), said

    # reconcile compares live rows: nothing differs
    results = {r.table: r for r in reconcile(settings, ["payments_v1", "stock_levels_v1"])}
    for name, r in results.items():
        assert r.error is None and r.differences == 0, (name, r)
    assert (results["payments_v1"].source_rows, results["stock_levels_v1"].source_rows) == (1, 1)

    # a full redelivery (offsets reset): the old creates and the truncates again change nothing
    before = {t: _contents(settings, t) for t in ("payments_v1", "stock_levels_v1")}
    with reporting_db.writer(settings) as b:
        b.execute("DELETE FROM _pipeline.offsets")
    said.clear()
    _ingest(settings, said)
    assert {t: _contents(settings, t) for t in before} == before
    assert not any("source truncate applied" in line for line in said), said  # replays are not news
    assert all(r.differences == 0 for r in reconcile(settings, ["payments_v1", "stock_levels_v1"]))
