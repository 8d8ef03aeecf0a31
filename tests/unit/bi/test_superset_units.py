"""Superset's pure parts: the pinned lock, the venv stamp, the generated config and secrets, ports, the
dashboard files and their layout, dbt descriptions per relation, the connection values (no password)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pipelines.config.load import BUNDLED_ESTATE
from pipelines.settings import REPO_ROOT, Settings
from pipelines.stack.errors import StackError
from pipelines.superset import config as cfg
from pipelines.superset.cli import connection_lines
from pipelines.superset.dbt_docs import model_docs
from pipelines.superset.provision import load_dashboard, load_dashboards, position_json, sqlalchemy_uri
from pipelines.superset.venv import (
    LOCK_FILE,
    STAMP,
    install_commands,
    installed_matches,
    lock_hash,
    pinned_requirements,
)

pytestmark = pytest.mark.unit

DASHBOARD = """\
title: Sales
slug: sales
rows:
  - [a, b]
charts:
  a: {name: A, dataset: marts.fct_a, viz_type: table, width: 6, params: {query_mode: raw, all_columns: [x]}}
  b: {name: B, dataset: marts.fct_b, viz_type: big_number_total, width: 6}
"""


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.load(BUNDLED_ESTATE, environ={"REPORTING_STATE_DIR": str(tmp_path / "state"), **env})


# --- the lock and the venv stamp ---------------------------------------------------------------------------
def test_committed_lock_pins_every_package_exactly():
    pins = pinned_requirements()
    assert pins["apache-superset"] == "6.1.0"
    assert "psycopg2-binary" in pins  # the PostgreSQL driver of the BI connection
    assert pins["flask-caching"] == "2.4.1"  # 2.5 breaks Superset 6.1.0's metastore cache
    assert {"rich", "cachetools"} <= set(pins)  # imported by Superset, not declared by it
    assert len(pins) > 100


@pytest.mark.parametrize(("line", "message"), [
    ("flask>=3", "is not an exact pin"),
    ("flask", "is not an exact pin"),
    ("flask==3.1.3\nFlask==3.1.3", "pinned twice"),
    ("flask==3.1.3", "apache-superset is not pinned"),
])
def test_a_lock_that_is_not_exact_is_refused(tmp_path, line, message):
    lock = tmp_path / "requirements.lock"
    lock.write_text(f"# comment\n{line}\n")
    with pytest.raises(StackError, match=message):
        pinned_requirements(lock)


def test_venv_matches_only_the_lock_it_was_built_from(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    lock = tmp_path / "requirements.lock"
    lock.write_text("apache-superset==6.1.0\n")
    assert not installed_matches(venv, lock)  # no stamp yet: install
    (venv / STAMP).write_text(lock_hash(lock) + "\n")
    assert installed_matches(venv, lock)
    lock.write_text("apache-superset==6.1.0\nflask==3.1.3\n")
    assert not installed_matches(venv, lock)  # the lock changed: rebuild
    assert lock_hash(LOCK_FILE) == lock_hash(LOCK_FILE) and len(lock_hash(LOCK_FILE)) == 64


# --- configuration, secrets, ports -------------------------------------------------------------------------
def test_install_tries_uv_first_then_the_venvs_pip_both_without_dependency_resolution(tmp_path):
    venv, uv = tmp_path / "venv", tmp_path / "uv"
    (tool_a, uv_cmd), (tool_b, pip_cmd) = install_commands(venv, LOCK_FILE, uv=uv)
    assert (tool_a, tool_b) == ("uv", "pip")
    assert uv_cmd[:3] == [str(uv), "pip", "install"] and uv_cmd[uv_cmd.index("--python") + 1] == str(venv / "bin" / "python")
    assert pip_cmd[0] == str(venv / "bin" / "pip")
    for cmd in (uv_cmd, pip_cmd):
        assert "--no-deps" in cmd and cmd[cmd.index("-r") + 1] == str(LOCK_FILE)
    assert [tool for tool, _ in install_commands(venv, LOCK_FILE, uv=None)] == ["pip"]


def test_config_keeps_everything_in_the_state_folder_and_no_secret(tmp_path):
    home = tmp_path / "superset"
    text = cfg.render_config(home)
    compile(text, "superset_config.py", "exec")  # valid Python
    assert f"sqlite:///{home / 'superset.db'}" in text
    assert 'os.environ["SUPERSET_SECRET_KEY"]' in text and "SECRET_KEY = '" not in text
    assert '"THUMBNAILS": False' in text and '"ALERT_REPORTS": False' in text
    assert 'DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}' in text


def test_secrets_are_generated_once_into_the_env_file(tmp_path, monkeypatch):
    monkeypatch.delenv(cfg.SECRET_KEY_ENV, raising=False)
    monkeypatch.delenv(cfg.ADMIN_PASSWORD_ENV, raising=False)
    s = settings(tmp_path)
    s.secrets_file.parent.mkdir(parents=True)
    s.secrets_file.write_text("REPORTING_PG_PASSWORD=kept\n")
    first = cfg.ensure_secrets(s)
    assert len(first[cfg.SECRET_KEY_ENV]) >= 40 and len(first[cfg.ADMIN_PASSWORD_ENV]) >= 20
    assert stat.S_IMODE(os.stat(s.secrets_file).st_mode) == 0o600
    text = s.secrets_file.read_text()
    assert "REPORTING_PG_PASSWORD=kept" in text and f"{cfg.ADMIN_PASSWORD_ENV}=" in text
    assert cfg.ensure_secrets(settings(tmp_path)) == first  # stable
    assert cfg.ensure_secrets(settings(tmp_path, **{cfg.ADMIN_PASSWORD_ENV: "from-the-environment"}))[
        cfg.ADMIN_PASSWORD_ENV] == "from-the-environment"


def test_process_env_carries_no_reporting_secret(tmp_path):
    env = cfg.process_env(settings(tmp_path), "k", environ={"PATH": "/bin", "REPORTING_PG_BI_PASSWORD": "x",
                                                           "PYTHONPATH": "/work/main"})
    assert env["SUPERSET_SECRET_KEY"] == "k" and env["PATH"] == "/bin"
    assert not [k for k in env if k.startswith("REPORTING_") or k == "PYTHONPATH"]


def test_port_follows_dagster_and_the_port_offset(tmp_path):
    assert cfg.port(settings(tmp_path)) == 53088
    assert cfg.port(settings(tmp_path, REPORTING_PORT_OFFSET="700")) == 53788
    assert cfg.url(settings(tmp_path)) == "http://127.0.0.1:53088"
    assert cfg.dashboards_dir(settings(tmp_path)) == REPO_ROOT / "estate" / "bi" / "superset"


# --- dashboard files ---------------------------------------------------------------------------------------
def test_bundled_dashboard_files_are_valid():
    specs = load_dashboards(REPO_ROOT / "estate" / "bi" / "superset")
    assert [s.slug for s in specs] == ["musiccorp-sales"]
    assert {c.schema for s in specs for c in s.charts.values()} == {"marts"}


@pytest.mark.parametrize(("change", "message"), [
    (("dataset: marts.fct_a", "dataset: marts.fct_a; drop table x"), r"charts\.a\.dataset: .* is not schema\.table"),
    (("dataset: marts.fct_a", "dataset: fct_a"), r"charts\.a\.dataset"),
    (("  - [a, b]", "  - [a, c]"), r"rows\[0\]: 'c' is not a chart"),
    (("  - [a, b]", "  - [a]"), r"every chart must be placed exactly once \('b'\)"),
    (("width: 6, params", "width: 9, params"), r"rows\[0\]: the widths add up to more than 12"),
    (("slug: sales", "slug: Sales Board"), r"slug: 'Sales Board'"),
    (("name: B,", "name: A,"), r"two charts share the name 'A'"),
    (("viz_type: table", "viz_type: 'table; x'"), r"charts\.a\.viz_type"),
    (("title: Sales", "titel: Sales"), r"unknown key 'titel'"),
])
def test_dashboard_file_errors_name_the_file_and_key(tmp_path, change, message):
    path = tmp_path / "d.yaml"
    path.write_text(DASHBOARD.replace(*change))
    with pytest.raises(StackError, match=rf"{path}: .*{message}"):
        load_dashboard(path)


def test_layout_places_every_chart_in_its_row():
    spec = load_dashboard(REPO_ROOT / "estate" / "bi" / "superset" / "musiccorp_sales.yaml")
    ids = {k: i + 1 for i, k in enumerate(spec.charts)}
    layout = position_json(spec, ids)
    assert layout["ROOT_ID"]["children"] == ["GRID_ID"]
    assert layout["GRID_ID"]["children"] == [f"ROW-{i + 1}" for i in range(len(spec.rows))]
    charts = [v for v in layout.values() if isinstance(v, dict) and v.get("type") == "CHART"]
    assert sorted(c["meta"]["chartId"] for c in charts) == sorted(ids.values())
    for row_index, row in enumerate(spec.rows):
        row_node = layout[f"ROW-{row_index + 1}"]
        assert row_node["children"] == [f"CHART-{k}" for k in row]
        assert sum(layout[c]["meta"]["width"] for c in row_node["children"]) <= 12


# --- descriptions from dbt ---------------------------------------------------------------------------------
def test_dbt_descriptions_per_relation_follow_model_versions():
    docs = model_docs(REPO_ROOT / "dbt_project")
    assert docs["fct_daily_revenue"].columns["net_revenue"].startswith("gross_captured_amount - refunded_amount")
    assert docs["fct_daily_revenue"].description.startswith("Daily revenue by currency.")
    v1, v2, pointer = docs["fct_orders_v1"], docs["fct_orders_v2"], docs["fct_orders"]
    assert "status" in v1.columns and "order_status" not in v1.columns and "sales_channel" not in v1.columns
    assert v1.columns["status"].startswith("Order state with the v1 vocabulary")
    assert v2.columns["order_status"] == "Current order state (orders v2 contract)."
    assert pointer == v2  # the pointer view is the latest version


# --- the BI connection ---------------------------------------------------------------------------------------
def test_superset_needs_the_postgresql_backend(tmp_path):
    with pytest.raises(StackError, match="select the PostgreSQL backend"):
        sqlalchemy_uri(settings(tmp_path))


def test_connection_uri_uses_the_reader_role_with_a_quoted_password(tmp_path):
    s = settings(tmp_path, REPORTING_BACKEND="postgres", REPORTING_PG_BI_PASSWORD="p@ss/w:rd")
    assert sqlalchemy_uri(s) == "postgresql+psycopg2://bi_reader:p%40ss%2Fw%3Ard@127.0.0.1:55435/reporting"


def test_connection_info_shows_no_password(tmp_path):
    s = settings(tmp_path, REPORTING_BACKEND="postgres", REPORTING_PG_BI_PASSWORD="s3cr3t-value")
    rows = dict(connection_lines(s))
    assert rows["host"] == "127.0.0.1" and rows["port"] == "55435" and rows["user"] == "bi_reader"
    assert rows["JDBC URL"] == "jdbc:postgresql://127.0.0.1:55435/reporting?readOnly=true"
    assert "REPORTING_PG_BI_PASSWORD" in rows["password"]
    assert not any("s3cr3t-value" in v for v in rows.values())


def test_generic_superset_code_names_no_estate_table():
    code = "".join(p.read_text() for p in (REPO_ROOT / "pipelines" / "superset").glob("*.py"))
    assert "def provision(" in code  # the files were read
    for name in ("fct_", "dim_", "orders", "payments", "musiccorp"):
        assert name not in code.lower(), name
