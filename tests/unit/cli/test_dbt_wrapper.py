"""`reporting dbt ...`: dbt on the estate's project, with the profile variables from the estate."""

from __future__ import annotations

import pytest

from pipelines.dbt_cli import dbt_argv
from tests.support.estate import settings_for

pytestmark = pytest.mark.unit


def test_dbt_gets_the_estates_project_target_and_duckdb_path(tmp_path):
    settings = settings_for(tmp_path, **{"reporting.duckdb.path": str(tmp_path / "r.duckdb")})
    argv, env = dbt_argv(settings, "build", ["--select", "marts"])
    project = str(settings.estate.dbt_project)
    assert argv[1:4] == ["build", "--select", "marts"]
    assert argv[argv.index("--project-dir") + 1] == project and argv[argv.index("--profiles-dir") + 1] == project
    assert argv[argv.index("--target") + 1] == "duckdb"
    assert env["REPORTING_DUCKDB_PATH"] == str(tmp_path / "r.duckdb")


def test_postgres_backend_targets_postgres_with_the_writer_password(tmp_path):
    settings = settings_for(tmp_path, environ={"PW": "s3cret"}, **{
        "reporting.backend": "postgres", "reporting.postgres.writer.password": {"env": "PW"}})
    argv, env = dbt_argv(settings, "run", [])
    assert argv[argv.index("--target") + 1] == "postgres"
    assert env["REPORTING_PG_PASSWORD"] == "s3cret" and env["REPORTING_PG_USER"] == "reporting_writer"


def test_explicit_arguments_win_and_unknown_commands_are_refused(tmp_path):
    settings = settings_for(tmp_path)
    argv, _ = dbt_argv(settings, "test", ["--target", "duckdb", "--project-dir", "/x"])
    assert argv.count("--target") == 1 and argv.count("--project-dir") == 1
    with pytest.raises(ValueError, match="not a dbt command"):
        dbt_argv(settings, "rm", [])
