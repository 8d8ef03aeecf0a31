"""A new contract major starts full: publishing `customers_v2` after `customers_v1` has streamed for a
while backfills it from the source through a connector snapshot, with progress in `contract status`.

Runs on a temporary copy of the estate's contracts and the customers projection (a v2 that only
renames one column), against the e2e stack, on its own DuckDB file and consumer group."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time

import pytest

from pipelines.apply.duckdb_backend import DuckDbBackend
from pipelines.apply.runner import run_pipeline
from pipelines.config.load import BUNDLED_ESTATE
from pipelines.contract.status import contract_status
from pipelines.reconcile.run import reconcile
from pipelines.settings import Settings
from tests.support.estate import write_estate

pytestmark = pytest.mark.e2e


def _count(settings, table: str) -> int:
    b = DuckDbBackend(settings.duckdb_path, read_only=True)
    try:
        return b.query(f'SELECT count(*) FROM reporting."{table}"')[0][0]
    finally:
        b.close()


def test_a_new_major_is_backfilled_from_the_source(stack, tmp_path):
    from estate import simulator

    env = {**os.environ, "REPORTING_DUCKDB_PATH": str(tmp_path / "backfill.duckdb")}
    before = Settings.load(stack.settings.estate.path, environ=env)
    simulator.run(before.service_urls(), rate=60, duration=4, seed=41)  # customers exist in the source
    said: list[str] = []
    run_pipeline(before, until_caught_up=True, group="backfill-test", say=said.append, install_signals=False)
    v1_rows = _count(before, "customers_v1")
    assert v1_rows > 0

    # publish v2: a copy of v1 with one column renamed, fed by the same source table
    contracts = tmp_path / "reporting_schema"
    shutil.copytree(BUNDLED_ESTATE.parent / "reporting_schema", contracts)
    v1 = (contracts / "customers" / "v1.yaml").read_text()
    v2 = (v1.replace("physicalName: customers_v1", "physicalName: customers_v2")
            .replace("version: 1.0.1", "version: 2.0.0").replace("-customers-v1", "-customers-v2")
            .replace("- name: full_name", "- name: display_name"))
    assert v2 != v1 and "customers_v2" in v2
    (contracts / "customers" / "v2.yaml").write_text(v2)
    projection = tmp_path / "projection.yaml"
    text = (BUNDLED_ESTATE.parent / "connectors" / "customers" / "projection.yaml").read_text()
    block = text[text.index("      customers_v1:"):]
    projection.write_text(text + block.replace("customers_v1:", "customers_v2:")
                          .replace("full_name: display_name", "display_name: display_name"))
    estate_file = write_estate(tmp_path / "estate", **{
        "contracts": str(contracts), "services.customers.projection": str(projection),
        "state_dir": str(stack.settings.state_dir)})
    after = Settings.load(estate_file, environ=env)

    said.clear()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        run_pipeline(after, until_caught_up=True, group="backfill-test", say=said.append, install_signals=False)
        if _count(after, "customers_v2") >= v1_rows:
            break
        time.sleep(2)
    assert any("backfilling customers_v2" in line for line in said), said
    assert sum("backfilling" in line for line in said) == 1  # requested once, not at every start
    assert _count(after, "customers_v2") == _count(after, "customers_v1")
    (status,) = [s for s in contract_status(after, now=dt.datetime.now(dt.UTC)) if s.table == "customers_v2"]
    assert status.backfill and status.backfill.startswith("backfilled"), status
    (rec,) = reconcile(after, ["customers_v2"])
    assert rec.error is None and rec.differences == 0, rec
