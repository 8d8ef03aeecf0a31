import pytest

from pipelines.bench.capacity import check_capacity_estate, drain_figures
from tests.support.estate import settings_for

pytestmark = pytest.mark.unit


def test_drain_rate_counts_from_the_first_commit_to_the_last():
    samples = [(0.0, 0), (1.0, 0), (2.0, 1000), (3.0, 5000), (4.0, 9000), (5.0, 10000)]
    assert drain_figures(samples, 10000) == {"first_commit_s": 2.0, "drained_s": 5.0, "events_per_s": 3000.0}


def test_a_drain_that_never_finished_has_no_rate():
    assert drain_figures([(0.0, 0), (1.0, 10)], 100) == {"first_commit_s": 1.0, "drained_s": None, "events_per_s": None}
    assert drain_figures([(0.0, 0)], 100)["events_per_s"] is None


def test_capacity_needs_postgres_and_the_cluster_profile(tmp_path):
    with pytest.raises(RuntimeError, match="needs the PostgreSQL backend"):
        check_capacity_estate(settings_for(tmp_path / "a", **{"reporting.backend": "duckdb"}))
    with pytest.raises(RuntimeError, match="kafka.local_cluster"):
        check_capacity_estate(settings_for(tmp_path / "b", **{"reporting.backend": "postgres"}))
