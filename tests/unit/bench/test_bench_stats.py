"""Pure parts of the benchmark suite: statistics and the sustained-rate rule."""

from __future__ import annotations

import pytest

from pipelines.bench import stats

pytestmark = pytest.mark.unit


def test_percentile_interpolates_between_ranks():
    xs = [1.0, 2.0, 3.0, 4.0]
    assert stats.percentile(xs, 0) == 1.0
    assert stats.percentile(xs, 100) == 4.0
    assert stats.percentile(xs, 50) == pytest.approx(2.5)
    assert stats.percentile([7.0], 99) == 7.0
    assert stats.percentile([], 50) is None


def test_percentile_rejects_out_of_range():
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)


def test_latency_summary_and_spread():
    s = stats.latency_summary([0.1 * i for i in range(1, 101)])
    assert s["count"] == 100
    assert s["p50"] == pytest.approx(5.05, abs=1e-3)
    assert s["p99"] == pytest.approx(9.901, abs=1e-3)
    assert s["max"] == pytest.approx(10.0)
    sp = stats.spread([3.0, 1.0, 2.0])
    assert sp == {"n": 3, "median": 2.0, "min": 1.0, "max": 3.0}
    assert stats.spread([])["median"] is None


def test_ratio_and_rate():
    assert stats.ratio(30.0, 10.0) == 3.0
    assert stats.ratio(1.0, 0) is None
    assert stats.rate([(0.0, 100.0), (10.0, 1100.0)]) == 100.0
    assert stats.rate([(0.0, 5.0)]) == 0.0


def test_slope_of_a_line():
    assert stats.slope([(t, 3 * t + 1) for t in range(10)]) == pytest.approx(3.0)
    assert stats.slope([(1.0, 5.0), (1.0, 6.0)]) == 0.0


def test_sustained_when_lag_stays_flat_and_small():
    flat = [(t, 300.0 + (50 if t % 2 else 0)) for t in range(60)]
    assert stats.sustained(flat, event_rate=2000)


def test_not_sustained_when_lag_grows():
    growing = [(t, 400.0 * t) for t in range(60)]
    assert not stats.sustained(growing, event_rate=2000)


def test_not_sustained_when_a_large_backlog_remains():
    stuck = [(t, 50_000.0) for t in range(60)]
    assert not stats.sustained(stuck, event_rate=2000)
    assert not stats.sustained([], event_rate=2000)


def test_system_names_round_trip_with_planner_processes():
    from pipelines.bench.common import ours_system, split_system

    assert ours_system("duckdb") == "ours_duckdb" and ours_system("postgres", 2) == "ours_postgres_p2"
    assert split_system("ours_postgres_p2") == ("ours_postgres", 2)
    assert split_system("ours_postgres") == ("ours_postgres", 0)  # 'postgres' holds no planner suffix
    assert split_system("jdbc_sink") == ("jdbc_sink", 0)


def test_plot_labels_name_the_planner_processes():
    from pipelines.bench.plot import _color, _label

    assert _label("ours_duckdb") == "ours → DuckDB"
    assert _label("ours_postgres_p2") == "ours → PostgreSQL\n+2 planner processes"
    assert _label("ours_postgres") == "ours → PostgreSQL"  # 'postgres' holds no planner suffix
    assert _color("ours_duckdb_p2") != _color("ours_duckdb") and _color("ours_duckdb_p2").startswith("#")


def test_a_plot_replaces_the_documented_picture_only_when_asked(tmp_path, monkeypatch):
    from pipelines.bench import plot

    monkeypatch.setattr(plot, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(plot, "IMG_DIR", tmp_path / "img")
    plt = plot._plt()
    try:
        fig = plt.figure()
        path = plot._save(fig, "e2e", "20261202-000000", latest="e2e-duckdb")
        assert path.exists() and not (tmp_path / "img").exists()
        plot.set_docs_images(True)
        plot._save(fig, "e2e", "20261202-000001", latest="e2e-duckdb")
        assert (tmp_path / "img" / "bench-e2e-duckdb.png").read_bytes() == (tmp_path / "results" / "e2e-20261202-000001.png").read_bytes()
    finally:
        plot.set_docs_images(False)
        plt.close("all")
