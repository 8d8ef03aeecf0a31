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

    from pipelines.config.derive import derive_estate

    state_dir = changes.pop("state_dir", None) or Path(folder) / ".state"
    if not Path(str(state_dir)).is_absolute():
        state_dir = Path(folder) / state_dir
    return derive_estate(Path(base or BUNDLED_ESTATE), Path(folder) / "estate.yaml", changes, state_dir=Path(state_dir))


def settings_for(folder, environ=None, **changes):
    """Settings of a copy of the bundled estate with `changes` (see write_estate); no environment
    overrides unless `environ` is given."""
    from pipelines.settings import Settings

    return Settings.load(write_estate(folder, **changes), environ=environ or {})
