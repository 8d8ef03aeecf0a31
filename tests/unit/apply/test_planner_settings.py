"""How many planner processes the pipeline uses, and the column-major form a planner receives."""

from __future__ import annotations

import os

import pytest

from pipelines.apply.planner_pool import to_columns
from pipelines.apply.runner import planner_processes
from pipelines.cdc.events import Record
from pipelines.config.load import EstateError
from pipelines.settings import Settings

pytestmark = pytest.mark.unit


def _settings(**env: str) -> Settings:
    environ = {k: v for k, v in os.environ.items() if k != "REPORTING_PLANNERS"}
    return Settings.load(environ={**environ, **env})


def test_planner_processes_default_env_and_explicit():
    assert planner_processes(None, _settings()) == 0
    assert planner_processes(None, _settings(REPORTING_PLANNERS="2")) == 2
    assert planner_processes(1, _settings(REPORTING_PLANNERS="2")) == 1  # the command-line option wins


@pytest.mark.parametrize("raw", ["two", "-1", "1.5"])
def test_planner_processes_rejects_garbage_naming_the_variable(raw):
    with pytest.raises(EstateError, match=r"pipeline\.planners \(from REPORTING_PLANNERS="):
        _settings(REPORTING_PLANNERS=raw)


def test_planner_processes_out_of_range():
    with pytest.raises(ValueError, match="out of range"):
        planner_processes(17, _settings())


def test_records_travel_column_major_and_come_back_whole():
    records = [Record("a.public.t", 0, 5, b"k1", b"v1"), Record("b.public.t", 3, 9, None, None)]
    columns = to_columns(records)
    assert columns == (["a.public.t", "b.public.t"], [0, 3], [5, 9], [b"k1", None], [b"v1", None])
    assert list(map(Record, *columns)) == records
