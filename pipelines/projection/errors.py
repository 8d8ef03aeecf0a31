"""The one error type of projections: a single readable line naming file:line or table.column."""

from __future__ import annotations

from pathlib import Path


class ProjectionError(ValueError):
    """A projection file is invalid (load time) or cannot project a row (run time).

    `str(err)` is one line: `connectors/orders/projection.yaml:14: <reason>` at load time, the bare
    reason at run time (the planner adds topic/partition/offset to the dead letter). `reason`, `path`
    and `line` are kept separately for callers that format their own messages.
    """

    def __init__(self, reason: str, path: Path | str | None = None, line: int | None = None) -> None:
        self.reason = reason
        self.path = Path(path) if path is not None else None
        self.line = line
        super().__init__(self._format())

    def _format(self) -> str:
        if self.path is None:
            return self.reason
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{where}: {self.reason}"
