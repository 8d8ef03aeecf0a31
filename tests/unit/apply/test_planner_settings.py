"""How many planner processes the pipeline uses, and the column-major form a planner receives."""

from __future__ import annotations

import pytest

from pipelines.apply.planner_pool import to_columns
from pipelines.apply.runner import planner_processes
from pipelines.cdc.events import Record


def test_planner_processes_default_env_and_explicit(monkeypatch):
    monkeypatch.delenv("REPORTING_PLANNERS", raising=False)
    assert planner_processes() == 0
    monkeypatch.setenv("REPORTING_PLANNERS", "2")
    assert planner_processes() == 2
    assert planner_processes(1) == 1  # the command-line option wins over the environment


@pytest.mark.parametrize("raw", ["two", "-1", "1.5"])
def test_planner_processes_rejects_garbage_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv("REPORTING_PLANNERS", raw)
    with pytest.raises(ValueError, match="REPORTING_PLANNERS"):
        planner_processes()


def test_planner_processes_out_of_range():
    with pytest.raises(ValueError, match="out of range"):
        planner_processes(17)


def test_records_travel_column_major_and_come_back_whole():
    records = [Record("a.public.t", 0, 5, b"k1", b"v1"), Record("b.public.t", 3, 9, None, None)]
    columns = to_columns(records)
    assert columns == (["a.public.t", "b.public.t"], [0, 3], [5, 9], [b"k1", None], [b"v1", None])
    assert list(map(Record, *columns)) == records
