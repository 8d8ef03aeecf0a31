"""Running Dagster jobs in the project's own instance, so the UI shows what ran.

`reporting run JOB` and `reporting demo` execute jobs of the code location (pipelines.definitions)
in-process against the persistent instance in the estate's `dagster.home` (the one `reporting ui`
serves): every run, materialization and check result lands in its run history and asset catalog,
exactly as if the UI had launched it. An edge: builds the definitions from `settings`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from pipelines.settings import Settings


def prepare_home(settings: Settings) -> Path:
    """Create DAGSTER_HOME with the instance settings of `reporting ui` (pipelines/ui.py)."""
    from pipelines.ui import instance_yaml

    home = settings.estate.dagster.home
    (home / "storage").mkdir(parents=True, exist_ok=True)
    wanted = instance_yaml(home)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() != wanted:
        config.write_text(wanted)
    return home


@contextlib.contextmanager
def project_instance(settings: Settings) -> Iterator:
    """The persistent Dagster instance of the estate (DAGSTER_HOME = dagster.home)."""
    from dagster import DagsterInstance

    home = prepare_home(settings)
    with DagsterInstance.from_config(str(home)) as instance:
        yield instance


def job_names(settings: Settings) -> list[str]:
    from pipelines.definitions import build_definitions

    defs = build_definitions(settings)
    return sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__"))


def run_job(settings: Settings, job: str, say: Callable[[str], None] = print, console_level: str = "WARNING") -> bool:
    """Execute `job` in-process in the project's instance; True when the run succeeded.

    Runs carry the estate to the resources through REPORTING_ESTATE (set for the run's duration, so
    the resources read the same file as the caller)."""
    from pipelines.config.load import ESTATE_ENV
    from pipelines.definitions import build_definitions

    defs = build_definitions(settings)
    try:
        job_def = defs.resolve_job_def(job)
    except Exception as exc:  # noqa: BLE001 - an unknown job name is one line
        raise ValueError(f"no Dagster job {job!r} (known: {', '.join(job_names(settings))})") from exc
    from pipelines.procenv import environ_overlay as environ_for_run  # set for the block, then restored

    with environ_for_run({ESTATE_ENV: str(settings.estate.path)}), project_instance(settings) as instance:
        # the run's event log goes to the instance (`reporting ui` shows it); the terminal gets warnings
        # and errors only, not Dagster's DEBUG lines for every step event
        result = job_def.execute_in_process(instance=instance, raise_on_error=False, run_config={
            "loggers": {"console": {"config": {"log_level": console_level}}}})
    state = "succeeded" if result.success else "FAILED"
    say(f"dagster run {result.run_id[:8]} of {job} {state} (in {settings.estate.dagster.home}; "
        "`reporting ui` shows it)")
    if not result.success:
        failures = [e for e in result.all_events if e.is_step_failure]
        if failures and failures[0].step_failure_data and failures[0].step_failure_data.error:
            say(f"  {failures[0].step_key}: {failures[0].step_failure_data.error.message.strip().splitlines()[0]}")
    return result.success
