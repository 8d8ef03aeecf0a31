"""`reporting stack reset` (Stack.wipe) and `stack up` leave no servers folder behind outside the checkout.

Temp folders only, no server is started: a fake /var/tmp (manager.SERVERS_PARENT) holds the servers
folders of this checkout's state folders (linked, marked, or only named by the hash), an orphan whose
state folder is gone, and folders of another live checkout, which must survive.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pipelines.settings import Settings
from pipelines.stack import manager
from pipelines.stack.errors import StackError
from pipelines.stack.manager import OWNER_FILE, Stack, default_servers_dir

pytestmark = pytest.mark.unit


@pytest.fixture
def root(monkeypatch):
    """A 0755 folder under /var/tmp (pytest's tmp_path sits under a 0700 folder, which `up` refuses)."""
    d = Path(tempfile.mkdtemp(prefix="reset-cleanup-test-", dir="/var/tmp"))
    d.chmod(0o755)
    monkeypatch.setattr(manager, "SERVERS_PARENT", d / "var-tmp")
    (d / "var-tmp").mkdir()
    yield d
    shutil.rmtree(d)


def _settings(state: Path) -> Settings:
    # the servers folder a root-run checkout under a 0700 parent gets, whoever runs this test
    return Settings.load(environ={"REPORTING_STATE_DIR": str(state),
                                  "REPORTING_SERVERS_DIR": str(default_servers_dir(state))})


def _servers(state: Path, *, link: bool = True, marker: bool = True) -> Path:
    """A servers folder for `state` as `stack up` makes it: data inside, marker, `<state>/servers` link."""
    servers = default_servers_dir(state)
    (servers / "pg" / "orders").mkdir(parents=True)
    (servers / "pg" / "orders" / "PG_VERSION").write_text("15\n")
    if marker:
        (servers / OWNER_FILE).write_text(f"{state}\n")
    state.mkdir(parents=True, exist_ok=True)
    if link:
        (state / "servers").symlink_to(servers, target_is_directory=True)
    return servers


def _sleeper(path: Path) -> subprocess.Popen:
    """A process whose command line names a path inside `path` (as a server's -D/--datadir does)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(path / "pg" / "orders")])


def test_reset_removes_every_servers_folder_of_the_checkout_and_orphans_keeps_the_rest(root):
    state = root / "checkout" / ".state"
    own = _servers(state)
    e2e = _servers(state / "e2e")                                   # a test's state folder, linked + marked
    bench = _servers(state / "bench" / "run", link=False, marker=False)  # named by its hash only (no link)
    (state / "jvm" / "runtime").mkdir(parents=True)
    (state / "jvm" / "runtime" / "kafka.jar").write_bytes(b"PK")
    (state / "logs").mkdir()
    (state / "logs" / "reporting.log").write_text("x\n")

    gone = _servers(root / "deleted-clone" / ".state")                 # `rm -rf` of another clone's state
    shutil.rmtree(root / "deleted-clone")
    other = _servers(root / "other-checkout" / ".state")               # another live checkout
    other_e2e = _servers(root / "other-checkout" / ".state" / "e2e")
    unknown = manager.SERVERS_PARENT / "reporting-servers-0123456789ab"  # no marker: owner unknown
    unknown.mkdir()
    precious = root / "precious"                                       # a `servers` link to something else
    precious.mkdir()
    (state / "e2e" / "sub").mkdir()
    (state / "e2e" / "sub" / "servers").symlink_to(precious, target_is_directory=True)

    messages: list[str] = []
    Stack(_settings(state)).wipe(say=messages.append)

    assert not own.exists() and not e2e.exists() and not bench.exists() and not gone.exists()
    assert other.is_dir() and other_e2e.is_dir() and unknown.is_dir() and precious.is_dir()
    assert sorted(p.name for p in state.iterdir()) == ["jvm"]
    assert (state / "jvm" / "runtime" / "kafka.jar").read_bytes() == b"PK"
    assert any(str(gone) in m and "is gone" in m for m in messages), messages


def test_reset_after_rm_rf_state_finds_the_servers_folders_by_their_markers(root):
    state = root / "checkout" / ".state"
    own = _servers(state)
    e2e = _servers(state / "e2e")
    shutil.rmtree(state)  # the README's alternative; then `reporting stack reset --yes`
    Stack(_settings(state)).wipe(say=lambda _m: None)
    assert not own.exists() and not e2e.exists()


def test_up_removes_orphans_and_marks_its_servers_folder(root):
    state = root / "checkout" / ".state"
    gone = _servers(root / "deleted-clone" / ".state")
    shutil.rmtree(root / "deleted-clone")
    other = _servers(root / "other-checkout" / ".state")
    stale_e2e = _servers(state / "e2e")
    shutil.rmtree(state)  # `rm -rf .state`, then `reporting stack up`

    stack = Stack(_settings(state))
    state.mkdir(parents=True)
    state.chmod(0o755)
    stack._prepare_servers_dir(say=lambda _m: None)  # the part of `up` that prepares the servers folder

    assert not gone.exists() and not stale_e2e.exists() and other.is_dir()
    servers = stack.settings.servers_dir
    assert (state / "servers").resolve() == servers
    assert (servers / OWNER_FILE).read_text().strip() == str(state)


def test_an_orphan_a_process_runs_from_is_kept(root):
    gone = _servers(root / "deleted-clone" / ".state")
    shutil.rmtree(root / "deleted-clone")
    p = _sleeper(gone)
    try:
        messages: list[str] = []
        manager.remove_orphaned_servers_dirs(say=messages.append)
        assert gone.is_dir()
        assert any("kept" in m and str(p.pid) in m for m in messages), messages
    finally:
        p.kill()
        p.wait()
    manager.remove_orphaned_servers_dirs(say=lambda _m: None)
    assert not gone.exists()


def test_reset_refuses_while_a_process_runs_from_a_servers_folder_and_deletes_nothing(root):
    state = root / "checkout" / ".state"
    own = _servers(state)
    e2e = _servers(state / "e2e")
    p = _sleeper(e2e)
    try:
        with pytest.raises(StackError, match=str(e2e)):
            Stack(_settings(state)).wipe(say=lambda _m: None)
        assert own.is_dir() and e2e.is_dir() and (state / "e2e").is_dir()
    finally:
        p.kill()
        p.wait()


def test_the_e2e_teardown_removes_only_the_servers_folder(root):
    state = root / "checkout" / ".state" / "e2e"
    servers = _servers(state)
    (state / "logs").mkdir()
    Stack(_settings(state)).remove_servers_dir(say=lambda _m: None)
    assert not servers.exists() and (state / "logs").is_dir()
