

def test_plot_labels_name_the_planner_processes():
    from pipelines.bench.plot import _color, _label

    assert _label("ours_duckdb") == "ours → DuckDB"
    assert _label("ours_postgres_p2") == "ours → PostgreSQL\n+2 planner processes"
    assert _label("ours_postgres") == "ours → PostgreSQL"  # 'postgres' holds no planner suffix
    assert _color("ours_duckdb_p2") != _color("ours_duckdb") and _color("ours_duckdb_p2").startswith("#")
