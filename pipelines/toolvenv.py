"""Virtual environments of their own for tools whose dependencies must not mix with the product's
(Apache Superset; the DuckLake engine, which needs another DuckDB version), installed from a pinned
lock file committed beside the tool's module.

The install is idempotent: the venv records the SHA-256 of the lock it was built from (`<venv>/.lock-sha256`)
and a matching venv is left alone; a changed lock rebuilds it from scratch. Packages are installed with
`--no-deps` (exactly the pinned set) by uv when the product's venv has it (pinned in requirements.lock;
~15 s for Superset's 153 packages on a cold cache against ~3 minutes for pip, measured 2026-12-02), else by
the new venv's pip; a failed uv install is retried once with pip, so an index only pip is configured for
still works. Tools run only as separate processes of that venv's interpreter.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pipelines.stack.errors import StackError

STAMP = ".lock-sha256"


def lock_hash(lock: Path) -> str:
    return hashlib.sha256(lock.read_bytes()).hexdigest()


def pinned_requirements(lock: Path, required: str | None = None) -> dict[str, str]:
    """{normalised name: version} of the lock; every line must be an exact pin (`name==version`)."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(lock.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not name.strip() or not version.strip() or any(c in version for c in "<>=!~*,; "):
            raise StackError(f"{lock}:{number}: {raw.strip()!r} is not an exact pin (name==version)")
        key = name.strip().lower().replace("_", "-").replace(".", "-")
        if key in pins:
            raise StackError(f"{lock}:{number}: {name.strip()} is pinned twice")
        pins[key] = version.strip()
    if required is not None and required not in pins:
        raise StackError(f"{lock}: {required} is not pinned")
    return pins


def installed_matches(venv: Path, lock: Path) -> bool:
    """True when `venv` was built from exactly this lock and its interpreter still runs."""
    stamp = venv / STAMP
    return (venv / "bin" / "python").exists() and stamp.exists() and stamp.read_text().strip() == lock_hash(lock)


def uv_bin() -> Path | None:
    """uv beside the running interpreter (the product's venv), if installed there."""
    uv = Path(sys.executable).parent / "uv"
    return uv if uv.exists() else None


def install_commands(venv: Path, lock: Path, uv: Path | None | bool = True) -> list[tuple[str, list[str]]]:
    """The install commands to try in order: uv (when present) first, then the new venv's own pip."""
    uv_path = uv_bin() if uv is True else (uv or None)
    pip = ("pip", [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "--no-deps", "-r", str(lock)])
    if uv_path is None:
        return [pip]
    return [("uv", [str(uv_path), "pip", "install", "--python", str(venv / "bin" / "python"), "--no-deps",
                    "--compile-bytecode", "-r", str(lock)]), pip]


def ensure_tool_venv(venv: Path, lock: Path, log: Path, label: str, say: Callable[[str], None] = print,
                     required: str | None = None) -> Path:
    """Create `venv` from `lock` unless it already matches it (`label` prefixes the progress lines). Returns it."""
    pins = pinned_requirements(lock, required)
    if installed_matches(venv, lock):
        return venv
    started = time.monotonic()
    if venv.exists():
        say(f"{label}: {venv} was built from another lock; rebuilding it")
        shutil.rmtree(venv)
    what = f"{required} {pins[required]}, " if required else ""
    say(f"{label}: creating {venv} ({what}{len(pins)} pinned packages)")
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    _run([str(base) if base.exists() else "python3", "-m", "venv", str(venv)], f"{label}: python -m venv")
    log.parent.mkdir(parents=True, exist_ok=True)
    done = None
    with log.open("w") as out:
        for tool, cmd in install_commands(venv, lock):
            say(f"{label}: {tool} install -r {lock.name} (--no-deps: exactly the pinned set; log {log})")
            out.write(f"$ {' '.join(cmd)}\n")
            out.flush()
            done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)  # noqa: S603
            if done.returncode == 0:
                break
            say(f"{label}: {tool} install failed (exit {done.returncode}; log {log})")
    if done is None or done.returncode != 0:
        raise StackError(f"{label}: installing from {lock} failed (exit {done.returncode if done else '?'}; "
                         f"log {log})", _tail(log))
    _run([str(venv / "bin" / "pip"), "check"], f"{label}: pip check")
    (venv / STAMP).write_text(lock_hash(lock) + "\n")
    say(f"{label}: installed in {time.monotonic() - started:.0f}s")
    return venv


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603 - fixed commands
    if done.returncode != 0:
        out = (done.stdout + done.stderr).strip()
        raise StackError(f"{what} failed: {out.splitlines()[-1] if out else done.returncode}", out)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
