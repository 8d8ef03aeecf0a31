"""Idempotent installation of what the local stack needs: Debian packages and pinned JVM artifacts.

- PostgreSQL 15 and MariaDB from Debian (`apt-get`), only when their binaries are missing. Every
  apt-get waits for the dpkg lock (unattended upgrades hold it for minutes after a VM boots) instead
  of failing with "Unable to acquire the dpkg frontend lock".
- Kafka, Kafka Connect and the Debezium connector plugins from Maven Central through the pinned
  connectors/pom.xml, into <state>/jvm; re-resolved only when a pom changes (hash marker).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from pipelines.settings import REPO_ROOT, Settings
from pipelines.stack import proc
from pipelines.stack.errors import StackError
from pipelines.stack.mariadb import MARIADBD
from pipelines.stack.postgres import PG_BIN

DEBIAN_PACKAGES = {"postgresql-15": PG_BIN / "initdb", "mariadb-server": Path(MARIADBD),
                   "mariadb-client": Path("/usr/bin/mariadb"),
                   # the Dagster UI test drives Debian's browser (Playwright cannot download its own here)
                   "chromium": Path("/usr/bin/chromium")}


DPKG_LOCK_TIMEOUT = 600
"""Seconds an apt-get call waits for a dpkg lock held by another apt/dpkg process before it fails."""
APT_RUN_TIMEOUT = DPKG_LOCK_TIMEOUT + 1200
"""Wall-clock bound of one apt-get call: the lock wait plus the download and install itself."""
DPKG_FRONTEND_LOCK = Path("/var/lib/dpkg/lock-frontend")
APT_LISTS_LOCK = Path("/var/lib/apt/lists/lock")
"""Taken by `apt-get update`, which fails at once when it is held: DPkg::Lock::Timeout does not cover it."""
LOCK_WAIT_NOTE = "waiting for the dpkg lock held by another apt/dpkg process (unattended upgrades?) ..."


def missing_packages() -> list[str]:
    return [pkg for pkg, binary in DEBIAN_PACKAGES.items() if not binary.exists()]


def apt_get_argv(*args: str, lock_timeout: int = DPKG_LOCK_TIMEOUT) -> list[str]:
    """The apt-get command line: it waits up to `lock_timeout` seconds for the dpkg lock instead of
    failing at once with "Unable to acquire the dpkg frontend lock"."""
    return ["apt-get", "-o", f"DPkg::Lock::Timeout={lock_timeout}", *args]


def lock_held(path: Path) -> bool:
    """True when another process holds the apt/dpkg lock file `path` (False when it does not exist).

    With `fuser` (psmisc) that is any process having it open; without, a non-blocking POSIX lock
    (the kind apt and dpkg take) is tried and released at once.
    """
    if not path.exists():
        return False
    fuser = shutil.which("fuser")
    if fuser:
        res = subprocess.run([fuser, str(path)], capture_output=True, check=False)  # noqa: S603
        return res.returncode == 0
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _wait_until_free(path: Path, timeout: float, pause: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while lock_held(path) and time.monotonic() < deadline:
        time.sleep(pause)


def _apt_get(args: list[str], env: dict[str, str], say: Callable[[str], object]) -> None:
    what = f"apt-get {args[0]}"
    update = args[0] == "update"
    if lock_held(DPKG_FRONTEND_LOCK) or (update and lock_held(APT_LISTS_LOCK)):
        say(f"{LOCK_WAIT_NOTE} (up to {DPKG_LOCK_TIMEOUT} s)")
    if update:
        _wait_until_free(APT_LISTS_LOCK, DPKG_LOCK_TIMEOUT)
    proc.run(apt_get_argv(*args), what, env=env, timeout=APT_RUN_TIMEOUT)


def ensure_debian_packages(say=print) -> None:
    missing = missing_packages()
    if not missing:
        return
    if os.geteuid() != 0:
        raise StackError(f"missing Debian packages {', '.join(missing)}: run as root or `sudo apt-get install -y {' '.join(missing)}`")
    say(f"installing Debian packages: {', '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["install", "-y", "-q", "--no-install-recommends", *missing]
    try:
        _apt_get(install, env, say)
    except StackError:
        _apt_get(["update", "-q"], env, say)
        _apt_get(install, env, say)
    still = missing_packages()
    if still:
        raise StackError(f"apt-get finished but {', '.join(still)} is still missing")


def _pom_hash() -> str:
    h = hashlib.sha256()
    for pom in sorted((REPO_ROOT / "connectors").rglob("pom.xml")):
        h.update(pom.relative_to(REPO_ROOT).as_posix().encode())
        h.update(pom.read_bytes())
    return h.hexdigest()


def ensure_jvm_artifacts(settings: Settings, say=print) -> None:
    marker = settings.jvm_dir / ".pom.sha256"
    want = _pom_hash()
    if marker.exists() and marker.read_text().strip() == want:
        return
    if not shutil.which("mvn"):
        raise StackError("Maven (mvn) is missing: apt-get install maven")
    say("resolving Kafka, Kafka Connect and Debezium from Maven Central (connectors/pom.xml) ...")
    if settings.jvm_dir.exists():
        shutil.rmtree(settings.jvm_dir)
    try:
        proc.run(["mvn", "-B", "-q", "-f", str(REPO_ROOT / "connectors" / "pom.xml"),
                  f"-Dreporting.jvm.dir={settings.jvm_dir}", "package"], "Maven resolution", timeout=1800)
    except StackError as exc:
        lines = [ln for ln in exc.detail.splitlines() if "ERROR" in ln]
        raise StackError(f"Maven could not resolve the pinned JVM artifacts: {lines[0] if lines else exc}",
                         exc.detail) from exc
    marker.write_text(want + "\n")
