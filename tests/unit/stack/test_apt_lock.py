import pytest

from pipelines.stack import install

pytestmark = pytest.mark.unit


def test_apt_get_waits_for_the_dpkg_lock():
    argv = install.apt_get_argv("install", "-y", "mariadb-server")
    assert argv[0] == "apt-get"
    assert argv[1:3] == ["-o", f"DPkg::Lock::Timeout={install.DPKG_LOCK_TIMEOUT}"]
    assert argv[3:] == ["install", "-y", "mariadb-server"]
    assert install.DPKG_LOCK_TIMEOUT >= 600


def test_the_run_bound_leaves_room_after_the_lock_wait():
    assert install.APT_RUN_TIMEOUT > install.DPKG_LOCK_TIMEOUT


def test_missing_lock_file_is_not_held(tmp_path):
    assert install.lock_held(tmp_path / "lock-frontend") is False


@pytest.mark.parametrize("held", [True, False])
def test_says_one_line_only_when_the_lock_is_held(monkeypatch, held):
    runs, said = [], []
    monkeypatch.setattr(install, "lock_held", lambda path: held and path == install.DPKG_FRONTEND_LOCK)
    monkeypatch.setattr(install.proc, "run", lambda cmd, what, **kw: runs.append((cmd, what, kw)))
    install._apt_get(["install", "-y", "chromium"], {}, said.append)
    assert len(runs) == 1
    cmd, what, kw = runs[0]
    assert f"DPkg::Lock::Timeout={install.DPKG_LOCK_TIMEOUT}" in cmd
    assert what == "apt-get install"
    assert kw["timeout"] == install.APT_RUN_TIMEOUT
    assert said == ([f"{install.LOCK_WAIT_NOTE} (up to {install.DPKG_LOCK_TIMEOUT} s)"] if held else [])
