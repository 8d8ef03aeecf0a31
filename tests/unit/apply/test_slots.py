import pytest

from pipelines.apply.slots import SlotStatus

pytestmark = pytest.mark.unit


def test_slot_below_threshold_is_quiet():
    assert SlotStatus("orders", "reporting_orders", True, 10 * 2**20).warning(1024 * 2**20) is None


def test_inactive_slot_above_threshold_warns_with_size_and_state():
    msg = SlotStatus("payments", "reporting_payments", False, 3 * 2**30).warning(1024 * 2**20)
    assert msg == ("payments: slot reporting_payments retains 3,072 MB of WAL (INACTIVE (no connector reading it)); "
                   "threshold 1,024 MB")
