"""Jobs run by `reporting run` / `reporting demo` land in the project's Dagster instance (the one the
UI serves), so the UI shows them: run records, asset materializations, and no community dialog."""

from __future__ import annotations

import pytest

from pipelines.dagster_runs import prepare_home, project_instance, run_job
from pipelines.settings import Settings

pytestmark = pytest.mark.integration


def test_a_job_run_is_recorded_in_the_project_instance(reporting_env):
    settings = Settings.load()
    said: list[str] = []
    assert run_job(settings, "publish_contract_docs_job", say=said.append)
    assert "succeeded" in said[0] and str(settings.estate.dagster.home) in said[0]
    with project_instance(settings) as instance:
        runs = instance.get_runs()
        assert [r.job_name for r in runs] == ["publish_contract_docs_job"]
        assert runs[0].is_success
        import dagster as dg

        materialized = instance.get_latest_materialization_event(dg.AssetKey(["docs", "contract_catalog"]))
        assert materialized is not None and materialized.run_id == runs[0].run_id


def test_unknown_job_is_one_line_naming_the_known_ones(reporting_env):
    with pytest.raises(ValueError, match=r"no Dagster job 'nosuch' \(known: .*dbt_build_job"):
        run_job(Settings.load(), "nosuch", say=lambda _m: None)


def test_the_instance_shows_no_community_dialog(reporting_env):
    settings = Settings.load()
    prepare_home(settings)
    with project_instance(settings) as instance:
        assert instance.nux_enabled is False
