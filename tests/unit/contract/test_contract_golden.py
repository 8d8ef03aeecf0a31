"""Golden cases for the compatibility rules: golden/<case>/{old.yaml,new.yaml,expected.yaml}.

expected.yaml: `title`, overall `verdict` (breaking if any change is), `rules` (rule ids in the
order diff() reports them) and optionally `today` (for retirement cases).

Each case is read and compared as `reporting contract diff old.yaml new.yaml` does: any valid ODCS
v3 contract (`load_any`: cases `*_others_*` are contracts written by others), and a table's lone
old and new majors compared column by column (`across_majors`, cases `*_across_majors_*`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from pipelines.contract.compat import RULES, diff, is_breaking
from pipelines.contract.model import load_any

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p for p in GOLDEN.iterdir() if p.is_dir())


def test_there_are_enough_golden_cases() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_case(case: Path) -> None:
    expected = yaml.safe_load((case / "expected.yaml").read_text())
    assert expected["title"].strip(), "every golden case needs a title"
    today = dt.date.fromisoformat(str(expected["today"])) if "today" in expected else dt.date(2026, 1, 1)

    old, new = load_any(case / "old.yaml"), load_any(case / "new.yaml")
    changes = diff(old, new, today=today, across_majors=True)

    report = "\n".join(str(c) for c in changes)
    assert [c.rule for c in changes] == expected["rules"], f"{expected['title']}\n{report}"
    assert ("breaking" if is_breaking(changes) else "compatible") == expected["verdict"], report
    physical = {(c.table, c.major): c.physical_name for c in old + new}
    for change in changes:
        assert RULES[change.rule] == (change.kind, change.verdict)
        assert change.message.startswith(f"{physical[change.table, change.major]}")


def test_every_rule_has_a_golden_case() -> None:
    covered = {rule for case in CASES for rule in yaml.safe_load((case / "expected.yaml").read_text())["rules"]}
    assert set(RULES) - covered == set()
