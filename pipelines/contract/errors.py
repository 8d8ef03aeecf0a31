"""The one error type of the contract package: a single readable line naming file:line and the thing."""

from __future__ import annotations

import os
from pathlib import Path


def display_path(path: Path | str | None) -> str:
    """`path` relative to the working directory when it lies below it (shorter, clickable), else as is."""
    if path is None:
        return ""
    p = Path(path)
    try:
        return os.path.relpath(p) if p.is_absolute() and p.resolve().is_relative_to(Path.cwd()) else str(p)
    except (OSError, ValueError):
        return str(p)


class ContractError(Exception):
    """A contract (or the lock) is invalid. `str()` is ONE line: `file:line: table.column: what is wrong`.

    Raised before anything is created or applied: callers show the line and stop (the CLI exits 2).
    """

    def __init__(self, message: str, *, path: Path | str | None = None, line: int | None = None) -> None:
        self.message = " ".join(str(message).split())
        self.path = Path(path) if path is not None else None
        self.line = line
        where = display_path(self.path)
        if where and line:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {self.message}" if where else self.message)
