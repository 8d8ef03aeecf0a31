"""`reporting dbt build|run|test|source [ARGS...]`: dbt on the estate's dbt project, with its profile
variables set from the estate (the reporting backend of the estate decides the target).

Plain `dbt` needs REPORTING_DUCKDB_PATH (and REPORTING_PG_* for PostgreSQL) in the environment, which
profiles.yml reads; this wrapper sets them from the same estate file every other command uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

from pipelines.settings import Settings

COMMANDS = ("build", "run", "test", "source", "compile", "parse", "docs", "ls", "seed", "snapshot", "show")


def dbt_argv(settings: Settings, command: str, args: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """argv and environment of `dbt <command> <args>` for the estate (pure apart from the env copy)."""
    from pipelines.defs.dbt import dbt_env, dbt_executable, dbt_target

    if command not in COMMANDS:
        raise ValueError(f"dbt {command}: not a dbt command this wrapper runs ({', '.join(COMMANDS)})")
    project = str(settings.estate.dbt_project)
    argv = [dbt_executable(), command, *args]
    if "--project-dir" not in args:
        argv += ["--project-dir", project]
    if "--profiles-dir" not in args:
        argv += ["--profiles-dir", project]
    if "--target" not in args and "-t" not in args:
        argv += ["--target", dbt_target(settings)]
    env = {**os.environ, **dbt_env(settings), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    if not sys.stdout.isatty() or "NO_COLOR" in os.environ:
        env.setdefault("DBT_USE_COLORS", "false")  # no ANSI codes in piped output
    return argv, env


def run_dbt(settings: Settings, command: str, args: Sequence[str]) -> int:
    argv, env = dbt_argv(settings, command, args)
    return subprocess.run(argv, env=env, cwd=settings.estate.dbt_project, check=False).returncode  # noqa: S603
