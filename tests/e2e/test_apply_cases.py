"""Apply-engine cases on the real stack, on the e2e backend (REPORTING_E2E_BACKEND: the DuckDB file or a
DuckLake): schema drift → dead letter → projection fix → replay; massive redelivery (offsets reset) changes
nothing.

    REPORTING_E2E_PORT_OFFSET=600 REPORTING_E2E_BACKEND=ducklake .venv/bin/pytest tests/e2e/test_apply_cases.py
"""

from __future__ import annotations

import shutil
import time

import psycopg
import pytest

from pipelines.apply.dead_letters import list_dead_letters, replay
from pipelines.apply.runner import load_parts, run_pipeline
from pipelines.settings import REPO_ROOT
from pipelines.stack.bootstrap import service_urls
from tests.support import reporting_db

pytestmark = pytest.mark.e2e


def _orders(stack) -> psycopg.Connection:
    return psycopg.connect(service_urls(stack, driver=False)["orders"], autocommit=True)


def _ingest(settings) -> None:
    run_pipeline(settings=settings, until_caught_up=True, say=lambda _m: None, install_signals=False)


def _wait(settings, check, timeout=90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _ingest(settings)
        with reporting_db.reader(settings) as b:
            got = check(b)
        if got:
            return got
        time.sleep(0.5)
    with reporting_db.reader(settings) as b:
        dead = [(d.stage, d.reason) for d in list_dead_letters(b)][:5]
        rows = b.query("SELECT count(*) FROM reporting.orders_v1")[0][0]
    raise AssertionError(f"condition not met in {timeout}s; orders_v1 rows {rows}, dead letters {dead}")


def test_drift_goes_to_dead_letters_then_replay_after_projection_fix(stack, tmp_path):
    settings = stack.settings
    with _orders(stack) as conn:
        conn.execute("ALTER TABLE orders RENAME COLUMN total_cents TO amount_cents")
        try:
            oid = conn.execute(
                "INSERT INTO orders (customer_ref, state_code, amount_cents, currency_iso, created_ts, modified_ts,"
                " terms_snapshot) VALUES (501, 10, 1234, 'eur', now(), now(), 'x') RETURNING id").fetchone()[0]
        finally:
            conn.execute("ALTER TABLE orders RENAME COLUMN amount_cents TO total_cents")

    def drifted(b):
        return [d for d in list_dead_letters(b) if d.stage == "drift" and "total_cents" in d.reason]

    dead = _wait(settings, drifted)
    assert dead[0].topic == "orders.public.orders"
    # the stream went on: a later order still arrives
    with _orders(stack) as conn:
        later = conn.execute(
            "INSERT INTO orders (customer_ref, state_code, total_cents, currency_iso, created_ts, modified_ts,"
            " terms_snapshot) VALUES (502, 10, 99, 'eur', now(), now(), 'x') RETURNING id").fetchone()[0]
    _wait(settings, lambda b: b.query("SELECT count(*) FROM reporting.orders_v1 WHERE order_id = ?",
                                      [later])[0][0] == 1)

    # the orders team fixes the projection for the renamed column, then replays the dead letters
    fixed = tmp_path / "connectors"
    shutil.copytree(REPO_ROOT / "connectors", fixed, ignore=shutil.ignore_patterns("jvm", "pom.xml"))
    proj = fixed / "orders" / "projection.yaml"
    proj.write_text(proj.read_text().replace("total_cents", "amount_cents"))
    from pipelines.config.load import load_estate
    from tests.support.estate import write_estate

    parts = load_parts(load_estate(write_estate(tmp_path, **{"services.orders.projection": str(proj)}), environ={}))
    with reporting_db.writer(settings) as b:  # what `reporting dlq replay` does
        res = replay(b, parts, "reporting-pipeline", table="orders.public.orders")
    assert (res.replayed, res.still_failing) == (2, 0)  # one event, two targets (orders v1 and v2)
    with reporting_db.reader(settings) as b:  # what the replay committed
        for table in ("orders_v1", "orders_v2"):
            row = b.query(f"SELECT total_amount FROM reporting.{table} WHERE order_id = ?", [oid])
            assert [str(r[0]) for r in row] == ["12.34"]
        assert list_dead_letters(b, "orders.public.orders") == []


def test_offset_reset_redelivers_everything_and_changes_nothing(stack):
    settings = stack.settings
    with _orders(stack) as conn:
        for i in range(20):
            oid = conn.execute(
                "INSERT INTO orders (customer_ref, state_code, total_cents, currency_iso, created_ts, modified_ts,"
                " terms_snapshot) VALUES (%s, 10, 100, 'eur', now(), now(), 'x') RETURNING id", (600 + i,)).fetchone()[0]
            conn.execute("UPDATE orders SET state_code = 20 WHERE id = %s", (oid,))
            if i % 4 == 0:
                conn.execute("DELETE FROM orders WHERE id = %s", (oid,))
    _wait(settings, lambda b: b.query("SELECT count(*) FROM reporting.orders_v1 WHERE customer_id >= 600 "
                                      "AND customer_id < 620 AND _deleted_at IS NULL")[0][0] == 15)

    def snapshot():
        return reporting_db.query(settings, 'SELECT * EXCLUDE ("_ingested_at") FROM reporting.orders_v1 '
                                            "ORDER BY order_id")

    before = snapshot()
    with reporting_db.writer(settings) as b:
        b.execute("DELETE FROM _pipeline.offsets")  # massive redelivery from offset 0
    dead_before = reporting_db.query(settings, "SELECT count(*) FROM _pipeline.dead_letters")[0][0]
    # the redelivery is planned in two planner processes (every other e2e ingest plans in-process)
    said: list[str] = []
    stats = run_pipeline(settings=settings, until_caught_up=True, say=said.append, install_signals=False, planners=2)
    assert "planning in 2 planner process(es)" in said
    assert stats.events >= 50  # 20 creates, 20 updates, 5 deletes + 5 tombstones, redelivered
    assert snapshot() == before
    # a redelivered poison event does not duplicate its dead letter
    assert reporting_db.query(settings, "SELECT count(*) FROM _pipeline.dead_letters")[0][0] == dead_before
