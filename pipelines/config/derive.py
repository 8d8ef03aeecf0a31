"""A copy of an estate file with some keys changed: for commands that run the same estate against
another database or group (benchmarks) and for tests. Paths that the original gave relative to its own
folder are made absolute, so the copy works from any folder."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

_RELATIVE_KEYS = ("connector", "projection", "schema_sql", "contracts", "dbt_project")


def derive_estate(base: Path, out: Path, changes: Mapping[str, Any], state_dir: Path | None = None) -> Path:
    """Write to `out` the estate file `base` with `changes` applied (dotted keys, e.g.
    {"reporting.postgres.database": "bench_1"}) and `state_dir` (default: the original's, made absolute).
    Returns `out`."""
    base = Path(base)
    raw = yaml.safe_load(base.read_text())
    root = base.parent

    def absolute(value: Any, key: str) -> Any:
        if isinstance(value, dict):
            return {k: absolute(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [absolute(v, key) for v in value]
        if key in _RELATIVE_KEYS and isinstance(value, str):
            return str((root / value).resolve())
        return value

    raw = absolute(raw, "")
    if state_dir is not None:
        raw["state_dir"] = str(state_dir)
    elif "state_dir" in raw and not Path(str(raw["state_dir"])).is_absolute():
        raw["state_dir"] = str((root / str(raw["state_dir"])).resolve())
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out
