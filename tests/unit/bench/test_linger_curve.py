"""The linger curve's medians per value (pipelines/bench/linger_curve.py, pure part)."""

import pytest

from pipelines.bench.linger_curve import curve

pytestmark = pytest.mark.unit


def _run(ms, rep, cpu, p99, sustained=True, pg=None):
    return {"linger_ms": ms, "rep": rep, "sustained": sustained, "events_per_batch": 100.0 + ms,
            "pipeline_cpu_us_per_event": cpu, "visible_p99_s": p99, "reporting_pg_cpu_us_per_event": pg}


def test_one_point_per_value_with_the_median_of_its_runs_in_value_order():
    runs = [_run(500, 0, 200.0, 1.0), _run(0, 0, 400.0, 0.4), _run(0, 1, 300.0, 0.6), _run(500, 1, 100.0, 1.2),
            _run(0, 2, 350.0, 0.5)]
    points = curve(runs)
    assert [p["linger_ms"] for p in points] == [0, 500]
    assert points[0]["runs"] == 3 and points[0]["pipeline_cpu_us_per_event"] == 350.0
    assert points[0]["visible_p99_s"] == 0.5
    assert points[1]["pipeline_cpu_us_per_event"] == 150.0 and points[1]["events_per_batch"] == 600.0


def test_a_value_with_one_unsustained_run_is_marked_and_missing_figures_stay_missing():
    points = curve([_run(250, 0, 200.0, 1.0), _run(250, 1, 210.0, 3.0, sustained=False)])
    assert points[0]["all_sustained"] is False
    assert points[0]["reporting_pg_cpu_us_per_event"] is None  # None in every run (not PostgreSQL)


def test_points_are_compared_with_the_same_runs_bulk_reference():
    from pipelines.bench.linger_curve import bulk_reference, relative

    ref = bulk_reference({"kind": "source_only", "events_per_s_offered": 2000, "backlog_events": 80_000,
                          "catch_up_events_per_s": 13_000, "catch_up_pipeline": {"cpu_s": 4.8}})
    assert ref["catch_up_cpu_us_per_event"] == 60.0 and ref["source_only_events_per_s"] == 2000
    points = curve([{**_run(250, 0, 240.0, 1.1), "events_per_s_applied": 1800},
                    {**_run(1000, 0, 90.0, 2.5), "events_per_s_applied": None}])
    relative(points, ref)
    assert points[0]["cpu_vs_bulk"] == 4.0 and points[0]["applied_vs_source_only"] == 0.9
    assert points[1]["cpu_vs_bulk"] == 1.5 and points[1]["applied_vs_source_only"] is None
    relative(points, {})  # no reference (--no-bulk): nothing to compare with
    assert points[0]["cpu_vs_bulk"] is None
