"""The DuckLake engine's virtual environment, `<state>/ducklake-venv`, from the lock beside this module
(DuckDB 1.5.5, its ducklake and sqlite_scanner extensions as PyPI wheels, pyarrow): installed on first use
(pipelines/toolvenv.py: uv, pip as the fallback), idempotent. `reporting.ducklake.venv` (or
REPORTING_DUCKLAKE_VENV) puts it elsewhere (the tests share one venv across their state folders)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipelines import toolvenv
from pipelines.settings import Settings
from pipelines.stack.errors import StackError

LOCK_FILE = Path(__file__).with_name("requirements.lock")
EXTENSIONS = ("sqlite_scanner", "ducklake")  # loaded in this order (the SQLite catalog needs sqlite_scanner)


def venv_dir(settings: Settings) -> Path:
    """`reporting.ducklake.venv` (REPORTING_DUCKLAKE_VENV sets it), else `<state>/ducklake-venv`."""
    lake = settings.ducklake
    return lake.venv if lake is not None and lake.venv is not None else settings.state_dir / "ducklake-venv"


def ensure_venv(settings: Settings, say: Callable[[str], None] = print) -> Path:
    return toolvenv.ensure_tool_venv(venv_dir(settings), LOCK_FILE, settings.log_dir / "ducklake-install.log",
                                     "ducklake", say=say, required="duckdb")


def extension_files(venv: Path, postgres: bool = False) -> list[str]:
    """The extension files the wheels put into the venv, in load order (with postgres_scanner for a
    catalog in PostgreSQL)."""
    version = toolvenv.pinned_requirements(LOCK_FILE, required="duckdb")["duckdb"]
    found = []
    for name in (*EXTENSIONS, "postgres_scanner") if postgres else EXTENSIONS:
        hits = sorted(venv.glob(f"lib/python*/site-packages/duckdb_extension_{name}/extensions/v{version}/"
                                f"{name}.duckdb_extension"))
        if not hits:
            raise StackError(f"{venv}: the {name} extension for DuckDB {version} is missing (reinstall: delete the venv)")
        found.append(str(hits[0]))
    return found
