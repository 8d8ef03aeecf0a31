"""Measured: while one process holds a DuckDB file read-write (as `reporting stream` does), no other
process can open it, not even read-only. The exact error text is quoted in docs/bi.md."""

from __future__ import annotations

import re
import subprocess
import sys

import duckdb
import pytest

from pipelines.bi.reader import is_lock_error, lock_holder_pid
from tests.integration.bi.conftest import duckdb_held

pytestmark = pytest.mark.integration


def test_a_second_process_cannot_open_a_held_file_even_read_only(tmp_path):
    path = tmp_path / "reportingdb.duckdb"
    with duckdb_held(path) as holder:
        for read_only in (True, False):
            with pytest.raises(duckdb.IOException) as caught:
                duckdb.connect(str(path), read_only=read_only)
            message = str(caught.value)
            assert re.fullmatch(
                rf'IO Error: Could not set lock on file "{re.escape(str(path))}": Conflicting lock is held in '
                rf'\S+ \(PID {holder.pid}\)\. See also https://duckdb\.org/docs/\S+/connect/concurrency', message), message
            assert is_lock_error(caught.value)
            assert lock_holder_pid(caught.value) == holder.pid
    # the lock goes with the holder: afterwards a reader opens the file
    with duckdb.connect(str(path), read_only=True) as reader:
        assert reader.execute("SELECT count(*) FROM duckdb_schemas() WHERE schema_name = 'reporting'").fetchone() == (1,)


def test_readers_share_the_file_but_then_block_the_writer(tmp_path):
    """The other direction, why long-lived BI sessions must not open the main file: the stream cannot start."""
    path = tmp_path / "reportingdb.duckdb"
    duckdb.connect(str(path)).close()
    with duckdb.connect(str(path), read_only=True):
        writer = subprocess.run([sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r})"],  # noqa: S603
                                capture_output=True, text=True, timeout=60, check=False)
    assert writer.returncode != 0
    assert "Could not set lock on file" in writer.stderr
