"""`reporting dbt build|run|test|source [ARGS...]`: dbt on the estate's dbt project, with its profile
variables set from the estate (the reporting backend of the estate decides the target).

Plain `dbt` needs REPORTING_DUCKDB_PATH (and REPORTING_PG_* for PostgreSQL, REPORTING_DUCKLAKE_* for DuckLake)
in the environment, which profiles.yml reads; this wrapper sets them from the same estate file every other
command uses. On the ducklake backend it runs the DuckLake venv's dbt (DuckDB 1.5.5; installed on first use),
and what failed only because its commit collided with another writer of the lake (the stream) runs again:
the failed nodes with `dbt retry`, or the whole command if no node ran (`LAKE_RETRIES` rounds; docs/ducklake.md
"dbt marts in the lake").
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from pipelines.settings import Settings

COMMANDS = ("build", "run", "test", "source", "compile", "parse", "docs", "ls", "seed", "snapshot", "show", "retry")
WRITING = ("build", "run", "seed", "snapshot", "retry")  # commands that commit into the reporting DB
LAKE_RETRIES = 5  # `dbt retry` rounds after commits that lost a race with another DuckLake writer
# A DuckLake commit that collided with another process's commit: on a SQLite catalog the second of two
# overlapping metadata commits gets SQLITE_BUSY ("database is locked"), which DuckLake does not retry itself;
# DuckLake's own conflict check says "Transaction conflict". Nothing was committed: running the node again is safe.
LAKE_CONFLICT = re.compile(r"database is locked|Failed to commit DuckLake transaction|Transaction conflict", re.I)


def dbt_argv(settings: Settings, command: str, args: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """argv and environment of `dbt <command> <args>` for the estate (pure apart from the env copy)."""
    from pipelines.defs.dbt import dbt_env, dbt_executable, dbt_target

    if command not in COMMANDS:
        raise ValueError(f"dbt {command}: not a dbt command this wrapper runs ({', '.join(COMMANDS)})")
    project = str(settings.estate.dbt_project)
    argv = [dbt_executable(settings), command, *args]
    if "--project-dir" not in args:
        argv += ["--project-dir", project]
    if "--profiles-dir" not in args:
        argv += ["--profiles-dir", project]
    if command != "retry" and "--target" not in args and "-t" not in args:
        argv += ["--target", dbt_target(settings)]  # (retry takes the target of the run it repeats)
    env = {**os.environ, **dbt_env(settings), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    if not sys.stdout.isatty() or "NO_COLOR" in os.environ:
        env.setdefault("DBT_USE_COLORS", "false")  # no ANSI codes in piped output
    return argv, env


def lake_conflicts(run_results: dict) -> list[str]:
    """unique_ids of the nodes of a dbt run (run_results.json) that failed on a DuckLake commit conflict."""
    return [r["unique_id"] for r in run_results.get("results", [])
            if r.get("status") in ("error", "runtime error") and LAKE_CONFLICT.search(r.get("message") or "")]


def _option(args: Sequence[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def results_path(settings: Settings, args: Sequence[str], env: dict[str, str]) -> Path:
    """Where dbt writes run_results.json for these arguments (--target-path, DBT_TARGET_PATH, else target/)."""
    target = _option(args, "--target-path") or env.get("DBT_TARGET_PATH") or "target"
    return Path(settings.estate.dbt_project, target) / "run_results.json"  # an absolute target path wins


def run_dbt(settings: Settings, command: str, args: Sequence[str], say: Callable[[str], None] = print,
            stdout: IO[str] | None = None) -> int:
    """`dbt <command> <args>`; its exit code. Output to `stdout` (None: this process's; stderr with it when set).

    On the ducklake backend, what failed only because its commit collided with another writer's commit runs
    again, up to LAKE_RETRIES rounds: the failed nodes (and what they skipped) with `dbt retry`, or the whole
    command when dbt stopped before running any node (e.g. creating a schema), which leaves no run_results."""
    argv, env = dbt_argv(settings, command, args)
    if settings.backend != "ducklake" or command not in WRITING:
        return subprocess.run(argv, env=env, cwd=settings.estate.dbt_project, check=False, stdout=stdout,  # noqa: S603
                              stderr=subprocess.STDOUT if stdout is not None else None).returncode
    results = results_path(settings, args, env)
    kept: list[str] = []  # what `dbt retry` accepts of the first run's options (it reads the rest from its results)
    for name in ("--target-path", "--log-path", "--vars", "--threads"):
        value = _option(args, name)
        if value is not None:
            kept += [name, value]
    attempt = 0
    while True:
        started = time.time()
        code, collided = _run_watching(argv, env, settings.estate.dbt_project, stdout or sys.stdout)
        if code == 0 or attempt == LAKE_RETRIES:
            return code
        try:
            fresh = results.stat().st_mtime >= started - 1
            lost = lake_conflicts(json.loads(results.read_text())) if fresh else []
        except (OSError, ValueError):
            fresh, lost = False, []
        attempt += 1
        if lost:
            names = ", ".join(u.split(".", 2)[-1] for u in lost)
            say(f"dbt: {len(lost)} node(s) collided with another DuckLake writer's commit ({names}); "
                f"dbt retry ({attempt}/{LAKE_RETRIES})")
            argv, env = dbt_argv(settings, "retry", kept)
        elif collided and not fresh:  # stopped before any node ran: the same command again
            say(f"dbt: a commit collided with another DuckLake writer's before any node ran; "
                f"running it again ({attempt}/{LAKE_RETRIES})")
        else:
            return code
        time.sleep(min(0.5 * 2 ** attempt, 8.0))


def _run_watching(argv: list[str], env: dict[str, str], cwd: Path, out: IO[str]) -> tuple[int, bool]:
    """Run dbt with its output (stderr too) copied to `out`; (exit code, whether a line was a lake commit conflict)."""
    collided = False
    with subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,  # noqa: S603
                          text=True, errors="replace", bufsize=1) as proc:
        for line in proc.stdout:
            out.write(line)
            out.flush()
            collided = collided or bool(LAKE_CONFLICT.search(line))
    return proc.returncode, collided
