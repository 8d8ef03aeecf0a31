"""Idempotent installation of what the local stack needs: Debian packages and pinned JVM artifacts.

- PostgreSQL 15 and MariaDB from Debian (`apt-get`), only when their binaries are missing.
- Kafka, Kafka Connect and the Debezium connector plugins from Maven Central through the pinned
  connectors/pom.xml, into <state>/jvm; re-resolved only when a pom changes (hash marker).
"""

from __future__ import annotations

import hashlib
import os
import shutil
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


def missing_packages() -> list[str]:
    return [pkg for pkg, binary in DEBIAN_PACKAGES.items() if not binary.exists()]


def ensure_debian_packages(say=print) -> None:
    missing = missing_packages()
    if not missing:
        return
    if os.geteuid() != 0:
        raise StackError(f"missing Debian packages {', '.join(missing)}: run as root or `sudo apt-get install -y {' '.join(missing)}`")
    say(f"installing Debian packages: {', '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        proc.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], "apt-get install", env=env)
    except StackError:
        proc.run(["apt-get", "update", "-q"], "apt-get update", env=env)
        proc.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], "apt-get install", env=env)
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
