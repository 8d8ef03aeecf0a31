"""Set environment variables for the duration of a block, for code that only takes its settings from
the process environment (dagster-dbt starting dbt, a test session's servers); then restore exactly what
was there, unset variables included."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping


@contextlib.contextmanager
def environ_overlay(values: Mapping[str, str]) -> Iterator[None]:
    """`values` in os.environ inside the block; afterwards every variable as it was before."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
