"""Onboarding a fifth service by files only: `reporting service add`, contract publish, stack up,
rows written in its own database arrive in its contract table, reconcile finds 0 differences.

Runs in a temporary copy of the estate files (reporting.yaml, connectors/, reporting_schema/,
dbt_project/) against the e2e stack's Kafka and Connect; its reporting DuckDB file and consumer group
are its own, so the other e2e tests see nothing of it. The new database server is stopped and its
connector removed at the end.
"""

from __future__ import annotations

import os
import shutil
import time

import psycopg
import pytest
from typer.testing import CliRunner

from pipelines.apply.runner import open_backend, run_pipeline
from pipelines.cli import app
from pipelines.config.load import BUNDLED_ESTATE
from pipelines.connect.client import client_for
from pipelines.reconcile.run import reconcile
from pipelines.settings import Settings
from pipelines.stack.bootstrap import apply_connectors, create_service_schemas
from pipelines.stack.manager import Stack

pytestmark = pytest.mark.e2e


def _copy_estate(dest):
    root = BUNDLED_ESTATE.parent
    shutil.copy(BUNDLED_ESTATE, dest / "reporting.yaml")
    shutil.copytree(root / "connectors", dest / "connectors", ignore=shutil.ignore_patterns("jvm", "pom.xml"))
    shutil.copytree(root / "reporting_schema", dest / "reporting_schema")
    shutil.copytree(root / "dbt_project", dest / "dbt_project",
                    ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    return dest / "reporting.yaml"


def test_a_fifth_service_is_onboarded_with_files_only(stack, tmp_path):
    estate_file = _copy_estate(tmp_path)
    before = Settings.load(estate_file).estate
    free = max(stack.settings.ports.values()) + 7  # beside the e2e stack's own ports (offset applies too)
    port = free - int(os.environ.get("REPORTING_PORT_OFFSET", "0"))
    runner = CliRunner()
    res = runner.invoke(app, ["--estate", str(estate_file), "service", "add", "shipping", "--engine", "postgresql",
                              "--port", str(port), "--table", "parcels", "--contract", "parcels"])
    assert res.exit_code == 0, res.output
    assert "next steps" in res.output
    for rel in ("connectors/shipping/connector.json", "connectors/shipping/projection.yaml",
                "connectors/shipping/schema.sql", "reporting_schema/parcels/v1.yaml",
                "dbt_project/models/staging/stg_parcels.sql"):
        assert (tmp_path / rel).is_file(), rel
    # a second service may not feed the same contract
    res = runner.invoke(app, ["--estate", str(estate_file), "service", "add", "returns", "--engine", "mariadb",
                              "--contract", "parcels"])
    assert res.exit_code == 2 and "already exists" in res.output
    res = runner.invoke(app, ["--estate", str(estate_file), "contract", "publish"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["--estate", str(estate_file), "contract", "check"])
    assert res.exit_code == 0, res.output

    settings = Settings.load(estate_file, environ={**os.environ,
                                                   "REPORTING_DUCKDB_PATH": str(tmp_path / "fifth.duckdb")})
    assert settings.estate.service_names == (*before.service_names, "shipping")
    new_stack = Stack(settings)
    try:
        new_stack.up(say=print)  # starts only what is not running: the shipping database
        create_service_schemas(new_stack, say=print)
        apply_connectors(new_stack, say=print)
        with psycopg.connect(settings.service_url("shipping", driver=False), autocommit=True) as conn:
            for i in range(1, 26):
                conn.execute("INSERT INTO parcels (id, name, updated_at) VALUES (%s, %s, now())", (i, f"parcel {i}"))
            conn.execute("UPDATE parcels SET name = 'renamed' WHERE id = 3")
            conn.execute("DELETE FROM parcels WHERE id = 4")
        rows = 0
        for _ in range(30):
            run_pipeline(settings, until_caught_up=True, group="fifth-service", say=lambda _m: None,
                         install_signals=False)
            b = open_backend(settings)
            try:
                rows = b.query('SELECT count(*) FROM reporting."parcels_v1" WHERE _deleted_at IS NULL')[0][0]
                renamed = b.query('SELECT name FROM reporting."parcels_v1" WHERE parcels_id = 3')
            finally:
                b.close()
            if rows == 24 and renamed == [("renamed",)]:
                break
            time.sleep(2)
        assert rows == 24 and renamed == [("renamed",)]
        (result,) = reconcile(settings, ["parcels"])
        assert result.error is None and not result.differences, result
    finally:
        try:
            client_for(settings).delete("shipping-cdc")
        finally:
            new_stack.pg["shipping"].stop()
