"""The replica's publication spacing (pipelines/bi/replica.py `spacing`): every_s, stretched after a slow copy."""

import pytest

from pipelines.bi.replica import spacing

pytestmark = pytest.mark.unit


def test_a_quick_publication_keeps_the_interval():
    assert spacing(10.0, None, 0.05) == 10.0  # nothing published yet
    assert spacing(10.0, 0.3, 0.05) == 10.0  # 0.3 s of 10 s: 3 % of the time


def test_a_slow_publication_spaces_the_next_ones_to_the_share():
    assert spacing(10.0, 2.0, 0.05) == pytest.approx(40.0)  # 2 s at most 5 % of the time
    assert spacing(10.0, 2.0, 0.5) == 10.0  # a share of one half allows it every 10 s
