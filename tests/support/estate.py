"""The bundled example estate (reporting.yaml) as tests see it: loaded once, no overrides."""

from __future__ import annotations

import functools

from pipelines.config.load import BUNDLED_ESTATE, load_estate
from pipelines.config.model import Estate


@functools.cache
def bundled_estate() -> Estate:
    return load_estate(BUNDLED_ESTATE, environ={})


def write_estate(folder, base=None, **changes):
    """A copy of the bundled estate file in `folder` (paths made absolute), with `changes` applied.

    `changes` are dotted keys, e.g. {"reporting.backend": "postgres", "reporting.duckdb.path": "/x.duckdb",
    "state_dir": "/tmp/s", "kafka.bootstrap_servers": ["127.0.0.1:9092"]}. Returns the new file's path.
    """
    from pathlib import Path

    import yaml

    base = Path(base or BUNDLED_ESTATE)
    raw = yaml.safe_load(base.read_text())
    root = base.parent

    def absolute(value, key):
        if isinstance(value, dict):
            return {k: absolute(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [absolute(v, key) for v in value]
        if key in ("connector", "projection", "schema_sql", "contracts", "dbt_project") and isinstance(value, str):
            return str((root / value).resolve())
        return value

    raw = absolute(raw, "")
    raw.setdefault("state_dir", str(Path(folder) / ".state"))
    if not Path(str(raw["state_dir"])).is_absolute():
        raw["state_dir"] = str(Path(folder) / raw["state_dir"])
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    out = Path(folder) / "estate.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out


def settings_for(folder, environ=None, **changes):
    """Settings of a copy of the bundled estate with `changes` (see write_estate); no environment
    overrides unless `environ` is given."""
    from pipelines.settings import Settings

    return Settings.load(write_estate(folder, **changes), environ=environ or {})
