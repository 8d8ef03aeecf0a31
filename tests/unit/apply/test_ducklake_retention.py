"""Which DuckLake snapshots maintenance expires (pure rule): the recent window, each day's close, the newest."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.ducklake.maintenance import expire_statements, snapshots_to_expire, statements

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)


def _at(days: float = 0, hours: float = 0, minutes: float = 0) -> dt.datetime:
    return NOW - dt.timedelta(days=days, hours=hours, minutes=minutes)


def test_snapshots_in_the_recent_window_are_kept_and_older_ones_expire():
    snaps = [(1, _at(hours=5)), (2, _at(hours=3)), (3, _at(minutes=50)), (4, _at(minutes=5))]
    assert snapshots_to_expire(snaps, NOW, keep_hours=1, keep_daily_days=0) == [1, 2]


def test_the_last_snapshot_of_each_day_survives_for_the_daily_window():
    nov30 = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    snaps = [
        (10, nov30 + dt.timedelta(hours=9)),
        (11, nov30 + dt.timedelta(hours=23, minutes=59)),  # the month's close
        (12, nov30 + dt.timedelta(days=1, hours=1)),
        (13, nov30 + dt.timedelta(days=1, hours=22)),  # 1 December's close
        (14, _at(hours=2)),  # today, outside the recent window, but today's last so far
        (15, _at(minutes=10)),
    ]
    assert snapshots_to_expire(snaps, NOW, keep_hours=1, keep_daily_days=400) == [10, 12, 14]
    # without daily snapshots, everything older than the window goes
    assert snapshots_to_expire(snaps, NOW, keep_hours=1, keep_daily_days=0) == [10, 11, 12, 13, 14]
    # a daily window of 2 days keeps 1 and 2 December's (and today's) closes, not November's
    assert snapshots_to_expire(snaps, NOW, keep_hours=1, keep_daily_days=2) == [10, 11, 12, 14]


def test_the_newest_snapshot_is_never_expired_even_when_old():
    snaps = [(1, _at(days=3)), (2, _at(days=2))]
    assert snapshots_to_expire(snaps, NOW, keep_hours=0, keep_daily_days=0) == [1]
    assert snapshots_to_expire([], NOW, keep_hours=0, keep_daily_days=0) == []


def test_negative_windows_are_refused():
    with pytest.raises(ValueError):
        snapshots_to_expire([(1, NOW)], NOW, keep_hours=-1, keep_daily_days=0)


def test_expire_statements_are_chunked_and_integer_only():
    sqls = expire_statements(list(range(1, 1201)), chunk=500)
    assert len(sqls) == 3
    assert sqls[0].startswith("CALL ducklake_expire_snapshots('lake', versions => [1, 2,")
    assert sqls[2].endswith("1200])")
    assert expire_statements([]) == []


def test_fixed_steps_run_in_order_and_cleanup_waits_for_the_file_age():
    steps = [name for name, _ in statements(keep_files_hours=0.25)]
    assert steps == ["flush inlined data", "rewrite data files", "merge adjacent files", "clean up old files"]
    assert "INTERVAL '900 seconds'" in statements(0.25)[-1][1]
