"""Where the PostgreSQL/MariaDB data dirs go when the state folder sits under a 0700 parent."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from pipelines.settings import Settings, reachable_by_others

pytestmark = pytest.mark.unit


@pytest.fixture
def open_dir():
    """A 0755 folder under /var/tmp (pytest's own tmp_path sits under a 0700 folder)."""
    d = Path(tempfile.mkdtemp(prefix="servers-dir-test-", dir="/var/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d)


def test_reachable_by_others_follows_every_ancestor(open_dir):
    tmp_path = open_dir
    outer = tmp_path / "outer"
    inner = outer / "clone" / ".state"
    inner.mkdir(parents=True)
    for d in (tmp_path, outer, outer / "clone", inner):
        d.chmod(0o755)
    assert reachable_by_others(inner)
    outer.chmod(0o700)
    try:
        assert not reachable_by_others(inner)
        assert not reachable_by_others(inner / "not-yet-created")
    finally:
        outer.chmod(0o755)


@pytest.mark.skipif(os.geteuid() != 0, reason="the servers folder moves only when the stack runs as root")
def test_servers_dir_moves_out_of_an_unreachable_state_folder(open_dir, monkeypatch):
    tmp_path = open_dir
    monkeypatch.delenv("REPORTING_SERVERS_DIR", raising=False)
    tmp_path.chmod(0o700)
    environ = {"REPORTING_STATE_DIR": str(tmp_path / ".state")}
    hidden = Settings.load(environ=environ)
    moved = hidden.servers_dir
    assert moved.parent.as_posix() == "/var/tmp" and moved.name.startswith("reporting-servers-")
    assert moved == Settings.load(environ=environ).servers_dir  # stable per state folder

    tmp_path.chmod(0o755)
    assert hidden.servers_dir == hidden.state_dir

    elsewhere = Settings.load(environ={**environ, "REPORTING_SERVERS_DIR": str(tmp_path / "elsewhere")})
    assert elsewhere.servers_dir == tmp_path / "elsewhere"
