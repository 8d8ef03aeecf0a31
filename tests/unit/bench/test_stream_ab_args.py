"""`reporting bench ab`'s argument handling (pipelines/bench/stream_ab.py, pure parts)."""

import pytest

from pipelines.bench.stream_ab import _seed_offsets, env_pairs

pytestmark = pytest.mark.unit


def test_env_pairs_keep_everything_after_the_first_equals_sign():
    assert env_pairs(["PYTHONPATH=/tmp/old", "X_1=a=b", "EMPTY="]) == {"PYTHONPATH": "/tmp/old", "X_1": "a=b",
                                                                       "EMPTY": ""}
    assert env_pairs([]) == {}


@pytest.mark.parametrize("item", ["PYTHONPATH", "=x", "1X=y", "A-B=c", "A B=c"])
def test_env_pairs_name_a_malformed_item(item):
    with pytest.raises(ValueError, match="expected KEY=VALUE") as exc:
        env_pairs(["OK=1", item])
    assert repr(item) in str(exc.value)


class _Backend:
    """What _seed_offsets asks of a backend: stored offsets per group, the groups, one transaction."""

    def __init__(self, offsets: dict[str, dict]):
        self.offsets = offsets
        self.statements: list[str] = []

    def stored_offsets(self, group):
        return self.offsets.get(group, {})

    def query(self, sql, params=None):
        return [(g,) for g in sorted(self.offsets)]

    def begin(self):
        self.statements.append("BEGIN")

    def execute(self, sql, params=None):
        self.statements.append(sql.split()[0])

    def commit(self):
        self.statements.append("COMMIT")


def test_a_group_without_stored_offsets_is_refused_with_the_groups_that_have_some():
    backend = _Backend({"bench-linger-1": {("t", 0): 5}, "reporting-pipeline": {("t", 0): 9}})
    with pytest.raises(ValueError, match="'bench-e2e-x' has no stored offsets") as exc:
        _seed_offsets(backend, "bench-e2e-x", "bench-ab-a")
    assert "groups with offsets: bench-linger-1, reporting-pipeline" in str(exc.value)
    assert backend.statements == []  # nothing written
    _seed_offsets(backend, "bench-linger-1", "bench-ab-a")
    assert backend.statements == ["BEGIN", "DELETE", "INSERT", "COMMIT"]
