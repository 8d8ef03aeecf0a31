"""Money arithmetic and state rules of the estate (pure)."""

from __future__ import annotations

import pytest

from estate.domain import (
    OrderLine,
    PaymentState,
    cents_to_decimal_string,
    line_amount_cents,
    order_total_cents,
    partial_refund_cents,
    payment_state_after_refund,
    stock_after_adjustment,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("qty", "price", "discount", "expected"), [
    (1, 1999, 0, 1999),
    (3, 1299, 389, 3508),
    (2, 500, 1500, 0),  # a discount larger than the line never makes it negative
])
def test_line_amount_is_qty_times_price_minus_discount(qty, price, discount, expected):
    assert line_amount_cents(qty, price, discount) == expected
    assert OrderLine("MC-000001", qty, price, discount).amount_cents == expected


@pytest.mark.parametrize(("qty", "price", "discount"), [(0, 100, 0), (1, -1, 0), (1, 100, -5)])
def test_line_amount_rejects_impossible_lines(qty, price, discount):
    with pytest.raises(ValueError, match="order line"):
        line_amount_cents(qty, price, discount)


def test_order_total_sums_its_lines():
    assert order_total_cents([(2, 1299, 260), (1, 2499, 0)]) == 4837
    assert order_total_cents([]) == 0


@pytest.mark.parametrize(("cents", "text"), [(0, "0.00"), (5, "0.05"), (4837, "48.37"), (-120, "-1.20")])
def test_cents_read_as_contract_decimals(cents, text):
    assert cents_to_decimal_string(cents) == text


@pytest.mark.parametrize(("amount", "refunded", "state"), [
    (1000, 0, PaymentState.CAPTURED),
    (1000, 1, PaymentState.PARTIALLY_REFUNDED),
    (1000, 999, PaymentState.PARTIALLY_REFUNDED),
    (1000, 1000, PaymentState.REFUNDED),
])
def test_payment_state_follows_the_running_refund_total(amount, refunded, state):
    assert payment_state_after_refund(amount, refunded) == state


def test_refunding_more_than_was_paid_is_an_error():
    with pytest.raises(ValueError, match="exceeds"):
        payment_state_after_refund(1000, 1001)


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.99, 1.0])
@pytest.mark.parametrize("remaining", [2, 3, 100, 4837])
def test_partial_refund_is_at_least_a_cent_and_less_than_everything(remaining, fraction):
    amount = partial_refund_cents(remaining, fraction)
    assert 1 <= amount < remaining


def test_partial_refund_of_the_last_cent_is_that_cent():
    assert partial_refund_cents(1, 0.5) == 1
    with pytest.raises(ValueError):
        partial_refund_cents(0, 0.5)


@pytest.mark.parametrize(("on_hand", "reserved", "delta", "expected"), [
    (10, 0, 5, 15),        # delivery
    (10, 2, -3, 7),        # write-off
    (10, 4, -100, 4),      # reserved units are never written off
    (10, 0, -100, 0),      # cleared out
])
def test_stock_adjustment_never_touches_reserved_units(on_hand, reserved, delta, expected):
    assert stock_after_adjustment(on_hand, reserved, delta) == expected
