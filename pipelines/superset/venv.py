"""Superset's own virtual environment, installed from the pinned lock file committed beside this module.

Superset pins hundreds of packages (Flask, SQLAlchemy 1.4, pandas ...) that must never mix with the
product's, so it lives in `<state>/superset-venv` and is only ever run as separate processes. Install and
idempotence: `pipelines/toolvenv.py` (uv when present, pip as the fallback; a changed lock rebuilds).
Run time needs no network: everything is in the venv. REPORTING_SUPERSET_VENV puts the venv elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from pipelines import toolvenv
from pipelines.settings import Settings
from pipelines.toolvenv import STAMP, install_commands  # noqa: F401 - part of this module's interface

LOCK_FILE = Path(__file__).with_name("requirements.lock")
VENV_ENV = "REPORTING_SUPERSET_VENV"


def venv_dir(settings: Settings, environ: Mapping[str, str] | None = None) -> Path:
    """`<state>/superset-venv`, or REPORTING_SUPERSET_VENV (the e2e tests share one venv across their state
    folders, as they share the jars through REPORTING_JVM_DIR)."""
    override = (os.environ if environ is None else environ).get(VENV_ENV)
    return Path(override).resolve() if override else settings.state_dir / "superset-venv"


def lock_hash(lock: Path = LOCK_FILE) -> str:
    return toolvenv.lock_hash(lock)


def pinned_requirements(lock: Path = LOCK_FILE) -> dict[str, str]:
    """{normalised name: version} of the lock; every line must be an exact pin, apache-superset among them."""
    return toolvenv.pinned_requirements(lock, required="apache-superset")


def installed_matches(venv: Path, lock: Path = LOCK_FILE) -> bool:
    return toolvenv.installed_matches(venv, lock)


def superset_bin(venv: Path, name: str = "superset") -> str:
    return str(venv / "bin" / name)


def ensure_venv(settings: Settings, say: Callable[[str], None] = print, lock: Path = LOCK_FILE) -> Path:
    """Create `<state>/superset-venv` from the lock unless it already matches it. Returns the venv."""
    return toolvenv.ensure_tool_venv(venv_dir(settings), lock, settings.log_dir / "superset-install.log",
                                     "superset", say=say, required="apache-superset")
