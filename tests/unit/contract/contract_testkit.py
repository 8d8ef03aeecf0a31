"""Shared helpers for the contract tests (a uniquely named module, importable from the test folder)."""

from __future__ import annotations

from pathlib import Path

REPO_SCHEMA = Path(__file__).resolve().parents[3] / "reporting_schema"


def edit(path: Path, old: str, new: str) -> None:
    """Replace the first `old` in `path` by `new` (it must be there)."""
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))
