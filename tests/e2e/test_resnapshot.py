"""`reporting resnapshot TABLE` on the real stack, on both engines: rows that went stale in the reporting
DB (as after source-side drift whose dead letters cannot be replayed) are re-read from the source
through the connector's Kafka signal channel and healed; reconcile finds 0 differences after. On the e2e
backend (REPORTING_E2E_BACKEND: the DuckDB file or a DuckLake).

    REPORTING_E2E_PORT_OFFSET=600 REPORTING_E2E_BACKEND=ducklake .venv/bin/pytest tests/e2e/test_resnapshot.py
"""

from __future__ import annotations

import time

import pytest

from pipelines.apply.runner import run_pipeline
from pipelines.reconcile.run import reconcile
from pipelines.resnapshot import resnapshot
from tests.support import reporting_db

pytestmark = pytest.mark.e2e


def _ingest(settings) -> None:
    run_pipeline(settings, until_caught_up=True, say=lambda _m: None, install_signals=False)


def _query(settings, sql: str, params=()):
    return reporting_db.query(settings, sql, list(params))


def _spoil(settings, table: str, key: str, column: str, value) -> list:
    """Make some live rows of `table` wrong in the reporting DB; returns their keys."""
    with reporting_db.writer(settings) as b:
        keys = [r[0] for r in b.query(f'SELECT "{key}" FROM reporting."{table}" WHERE "_deleted_at" IS NULL '
                                       f'ORDER BY 1 LIMIT 5')] if _soft(b, table) else \
               [r[0] for r in b.query(f'SELECT "{key}" FROM reporting."{table}" ORDER BY 1 LIMIT 5')]
        assert keys, f"{table} has no rows to spoil"
        for k in keys:
            b.execute(f'UPDATE reporting."{table}" SET "{column}" = ? WHERE "{key}" = ?', [value, k])
    assert len(_query(settings, f'SELECT 1 FROM reporting."{table}" WHERE "{column}" = ?', [value])) == len(keys)
    return keys


def _soft(b, table: str) -> bool:
    cols = {r[0] for r in b.query("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                  "'reporting' AND table_name = ?", [table])}
    return "_deleted_at" in cols


@pytest.mark.parametrize(("contract", "table", "key", "column", "bad"), [
    ("customers", "customers_v1", "customer_id", "full_name", "STALE"),   # PostgreSQL source
    ("products", "products_v1", "sku", "title", "STALE"),                 # MariaDB source
])
def test_resnapshot_heals_stale_rows(stack, contract, table, key, column, bad):
    settings = stack.settings
    from estate import simulator

    simulator.run(settings.service_urls(), rate=60, duration=4, seed=31)  # business rows in every service
    _ingest(settings)
    keys = _spoil(settings, table, key, column, bad)
    (before,) = reconcile(settings, [table])
    assert before.differences >= len(keys), before  # the spoiled rows differ from their source

    said: list[str] = []
    result = resnapshot(settings, contract, say=said.append, quiet_s=60)
    assert result.source_rows and result.records_seen >= result.source_rows, said
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        _ingest(settings)
        stale = _query(settings, f'SELECT count(*) FROM reporting."{table}" WHERE "{column}" = ?', [bad])[0][0]
        if stale == 0:
            break
        time.sleep(1)
    assert stale == 0, said
    (after,) = reconcile(settings, [table])
    assert after.error is None and after.differences == 0, after
