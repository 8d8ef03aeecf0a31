"""pipeline.linger_ms unset: 1,000 ms on the DuckDB file behind its read replica, 250 ms elsewhere; set: as set."""

import pytest

from pipelines.config.model import LINGER_MS_BEHIND_REPLICA, LINGER_MS_DEFAULT, effective_linger_ms

pytestmark = pytest.mark.unit


def test_unset_it_depends_on_whether_readers_see_each_commit():
    assert effective_linger_ms(None, "duckdb", replica_on=True) == LINGER_MS_BEHIND_REPLICA == 1000
    assert effective_linger_ms(None, "duckdb", replica_on=False) == LINGER_MS_DEFAULT == 250
    assert effective_linger_ms(None, "postgres", replica_on=True) == 250  # no replica on PostgreSQL
    assert effective_linger_ms(None, "ducklake", replica_on=False) == 250


def test_a_configured_value_wins_everywhere():
    assert effective_linger_ms(0, "duckdb", replica_on=True) == 0
    assert effective_linger_ms(400, "postgres", replica_on=False) == 400
