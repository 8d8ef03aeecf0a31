"""DuckLake maintenance: keep the number of files and snapshots bounded while the stream writes.

Every streaming commit adds a snapshot, and a Parquet file (or inlined rows in the catalog) per table it
touched, plus delete files for updated rows. `maintain` runs DuckLake's own procedures, each in its own
commit, so a writer streaming at the same time conflicts with one step at most (DuckLake then refuses
one of the two commits; a refused step is tried again, a refused batch is retried by the stream):

1. `ducklake_flush_inlined_data`: inlined rows move from the catalog into Parquet files;
2. `ducklake_rewrite_data_files`: files of which at least REWRITE_DELETED of the rows were deleted or
   updated are rewritten without them (their delete files go too);
3. `ducklake_merge_adjacent_files`: small files of a table (without deletes) are merged into larger ones;
4. `ducklake_expire_snapshots(versions => [...])`: snapshots older than `keep_snapshots_hours` are
   forgotten, except the last snapshot of each day for `keep_daily_days` days (`reporting sql --as-of`
   then answers for any time in the recent window and for each day's close before it; for another time
   of an older day it answers with the newest kept snapshot before that time);
5. `ducklake_cleanup_old_files(older_than)`: files no snapshot needs any more are deleted from storage
   once they are that old (a reader that started before may still be reading them).

`count_files` reads the catalog's own tables; it does not list the storage.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb

from pipelines.ducklake.client import CATALOG_BUSY

LAKE = "lake"  # the alias the engine attaches the lake under
META = f"__ducklake_metadata_{LAKE}"
REWRITE_DELETED = 0.1  # DuckLake's default is 0.95: streamed updates leave many files with a few deletes each,
#                       which merge_adjacent_files does not merge (measured: 20 small files with 10 % updated stayed 20
#                       after a merge; rewritten at 0.1 then merged, 1)


@dataclass(frozen=True)
class LakeFiles:
    data_files: int  # Parquet data files the current snapshot reads
    delete_files: int  # delete files the current snapshot reads
    kept_files: int  # data and delete files any kept snapshot still needs
    scheduled_for_deletion: int  # files no snapshot needs, waiting for cleanup
    snapshots: int
    inlined_tables: int  # tables with rows inlined in the catalog

    def line(self) -> str:
        return (f"{self.data_files:,} data files, {self.delete_files:,} delete files (current snapshot); "
                f"{self.kept_files:,} kept for history, {self.scheduled_for_deletion:,} awaiting cleanup; "
                f"{self.snapshots:,} snapshots")


@dataclass
class MaintenanceReport:
    before: LakeFiles
    after: LakeFiles | None = None
    steps: dict[str, float] = field(default_factory=dict)  # step -> seconds
    conflicts: int = 0  # steps refused by a concurrent commit and tried again
    snapshots_expired: int = 0

    def line(self) -> str:
        timing = ", ".join(f"{name} {secs:.1f}s" for name, secs in self.steps.items())
        after = self.after.line() if self.after else "?"
        return f"before: {self.before.line()}\nafter:  {after}\nsteps:  {timing}; {self.conflicts} conflicts retried"


def statements(keep_files_hours: float) -> list[tuple[str, str]]:
    """(step, SQL) of the fixed steps, in the order they run (pure); snapshots are expired between the
    merge and the clean-up, by `expire_statements`."""
    return [
        ("flush inlined data", f"CALL ducklake_flush_inlined_data('{LAKE}')"),
        ("rewrite data files", f"CALL ducklake_rewrite_data_files('{LAKE}', delete_threshold => {REWRITE_DELETED})"),
        ("merge adjacent files", f"CALL ducklake_merge_adjacent_files('{LAKE}')"),
        ("clean up old files", f"CALL ducklake_cleanup_old_files('{LAKE}', older_than => now() - "
                               f"INTERVAL '{_seconds(keep_files_hours)} seconds')"),
    ]


def snapshots_to_expire(snapshots: list[tuple[int, dt.datetime]], now: dt.datetime, keep_hours: float,
                        keep_daily_days: int) -> list[int]:
    """Ids of the snapshots to expire (pure): every snapshot older than `keep_hours`, except the newest
    snapshot of each UTC day of the last `keep_daily_days` days (the lake as it stood at that day's close,
    so `--as-of 2026-11-30T23:59:59Z` keeps working for month-end reports) and the newest snapshot of all."""
    if keep_hours < 0 or keep_daily_days < 0:
        raise ValueError("keep_hours and keep_daily_days must not be negative")
    if not snapshots:
        return []
    newest = max(snapshots, key=lambda s: s[0])[0]
    cutoff = now - dt.timedelta(hours=keep_hours)
    daily_from = (now - dt.timedelta(days=keep_daily_days)).astimezone(dt.UTC).date()
    day_close: dict[dt.date, int] = {}
    for snapshot_id, at in snapshots:
        day = at.astimezone(dt.UTC).date()
        if keep_daily_days and day >= daily_from and snapshot_id > day_close.get(day, -1):
            day_close[day] = snapshot_id
    keep = {newest, *day_close.values()}
    return sorted(sid for sid, at in snapshots if at < cutoff and sid not in keep)


def expire_statements(ids: list[int], chunk: int = 500) -> list[str]:
    """`ducklake_expire_snapshots(versions => [...])` in chunks (pure)."""
    return [f"CALL ducklake_expire_snapshots('{LAKE}', versions => [{', '.join(str(int(i)) for i in ids[n:n + chunk])}])"
            for n in range(0, len(ids), chunk)]


def _seconds(hours: float) -> int:
    if hours < 0:
        raise ValueError(f"{hours} hours: must not be negative")
    return int(round(hours * 3600))


def count_files(backend) -> LakeFiles:
    """The lake's files and snapshots, from its catalog (`backend`: a DuckLakeBackend, read-only or not)."""
    def one(sql: str) -> int:
        return int(backend.query(sql)[0][0])

    return LakeFiles(
        data_files=one(f"SELECT count(*) FROM {META}.ducklake_data_file WHERE end_snapshot IS NULL"),
        delete_files=one(f"SELECT count(*) FROM {META}.ducklake_delete_file WHERE end_snapshot IS NULL"),
        kept_files=one(f"SELECT (SELECT count(*) FROM {META}.ducklake_data_file) + "
                       f"(SELECT count(*) FROM {META}.ducklake_delete_file)"),
        scheduled_for_deletion=one(f"SELECT count(*) FROM {META}.ducklake_files_scheduled_for_deletion"),
        snapshots=one(f"SELECT count(*) FROM {META}.ducklake_snapshot"),
        inlined_tables=one(f"SELECT count(DISTINCT table_id) FROM {META}.ducklake_inlined_data_tables"),
    )


# a locked catalog is already a TransactionException when it comes from the engine (client.CATALOG_BUSY);
# the same text and the aborted-transaction error can also arrive wrapped in another class by a procedure
_RACE_LOST = (*CATALOG_BUSY, "TransactionContext Error")


def conflict(exc: BaseException) -> bool:
    """A step lost a race with another writer: DuckLake refused its commit (duckdb.TransactionException), the
    SQLite catalog was locked by the other writer's commit ("database is locked", raised as a plain duckdb.Error
    by the flush and expire procedures; SQLite refuses at once, without its busy wait, when a reading transaction
    must become the writer), or a procedure's inner query met such a refusal and reports it wrapped in another
    class ("Attempting to fetch from an unsuccessful query result ... TransactionContext Error: Current
    transaction is aborted"). All pass: the step is rolled back and tried again."""
    return isinstance(exc, duckdb.TransactionException) or any(text in str(exc) for text in _RACE_LOST)


def maintain(backend, keep_snapshots_hours: float, keep_files_hours: float,
             say: Callable[[str], None] = lambda _line: None, attempts: int = 8,
             keep_daily_days: int = 0) -> MaintenanceReport:
    """Run the maintenance steps on a writable DuckLakeBackend; a step (or a read of the catalog) that lost a
    race with a concurrent writer (`conflict`) is rolled back and tried again up to `attempts` times.
    Snapshots older than `keep_snapshots_hours` are expired except each day's last one for `keep_daily_days`
    days."""
    conflicts = 0

    def retried(call):
        nonlocal conflicts
        for attempt in range(1, attempts + 1):
            try:
                return call()
            except duckdb.Error as exc:
                if not conflict(exc):
                    raise
                backend.rollback()  # a lock error can leave the connection's transaction aborted
                conflicts += 1
                if attempt == attempts:
                    raise
                time.sleep(0.5 * attempt)
        raise AssertionError("unreachable")

    report = MaintenanceReport(before=retried(lambda: count_files(backend)))
    say(f"ducklake: {report.before.line()}")

    def run(step: str, sqls: list[str]) -> None:
        started = time.monotonic()
        for sql in sqls:
            retried(lambda sql=sql: backend.execute(sql))
        report.steps[step] = time.monotonic() - started
        say(f"ducklake: {step} done in {report.steps[step]:.1f}s")

    fixed = statements(keep_files_hours)
    for step, sql in fixed[:-1]:
        run(step, [sql])
    snapshots = [(int(i), at) for i, at in retried(lambda: backend.query(
        f"SELECT snapshot_id, snapshot_time FROM ducklake_snapshots('{LAKE}')"))]
    now = backend.query("SELECT now()")[0][0]
    expired = snapshots_to_expire(snapshots, now, keep_snapshots_hours, keep_daily_days)
    report.snapshots_expired = len(expired)
    run("expire snapshots", expire_statements(expired))
    step, sql = fixed[-1]
    run(step, [sql])
    report.after = retried(lambda: count_files(backend))
    report.conflicts = conflicts
    say(f"ducklake: {report.after.line()}")
    return report
