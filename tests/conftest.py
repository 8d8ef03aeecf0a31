"""Every test under tests/unit, tests/integration and tests/e2e carries the marker of its folder.

`make test-unit` runs `pytest -m unit` (and the other levels select by marker the same way), so a test
file that forgets its `pytestmark = pytest.mark.<level>` would silently drop out of that run. Here a
missing level marker fails collection instead, naming the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
LEVELS = ("unit", "integration", "e2e")


def level_of(path: Path) -> str | None:
    """The level folder (unit/integration/e2e) a test file sits under, or None."""
    try:
        top = path.resolve().relative_to(TESTS).parts[0]
    except (ValueError, IndexError):
        return None
    return top if top in LEVELS else None


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects anything: every collected test is checked
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    missing: dict[str, tuple[str, int]] = {}
    for item in items:
        level = level_of(item.path)
        if level and item.get_closest_marker(level) is None:
            rel = item.path.resolve().relative_to(TESTS.parent).as_posix()
            missing[rel] = (level, missing.get(rel, (level, 0))[1] + 1)
    if missing:
        lines = [f"  {path}: {n} test(s) without @pytest.mark.{level} (add `pytestmark = pytest.mark.{level}`)"
                 for path, (level, n) in sorted(missing.items())]
        raise pytest.UsageError("tests lack the marker of their folder, so `pytest -m <level>` would skip them:\n"
                                + "\n".join(lines))
