"""MusicCorp's private codes and money arithmetic, shared by the schemas, flows and simulator.

Pure: no database, no I/O. The codes are what the services store (integers and one-letter codes,
amounts in cents), deliberately unlike the reporting contract's names; each enum documents the
contract value it projects to, so a projection author can read the mapping off this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class CustomerStatus(StrEnum):
    """customers.customers.status_code (CHAR(1)) → contract customers_v1.status."""

    PENDING = "P"  # PENDING
    VERIFIED = "V"  # VERIFIED
    ERASED = "E"  # ERASED


class OrderState(IntEnum):
    """orders.orders.state_code (fixed by the shared brief)."""

    PLACED = 10
    PAID = 20
    PACKED = 30
    SHIPPED = 40
    CANCELLED = 90
    REFUNDED = 95  # v1 → CANCELLED, v2 → REFUNDED


class PaymentState(IntEnum):
    """payments.payments.state_code (SMALLINT) → contract payments_v1.status."""

    AUTHORISED = 1
    CAPTURED = 2
    PARTIALLY_REFUNDED = 3
    REFUNDED = 4
    FAILED = 8
    VOIDED = 9


class FulfilmentStage(IntEnum):
    """warehouse.fulfilments.stage_code (TINYINT) → contract shipments_v1.status."""

    PICKING = 1
    PACKED = 2
    SHIPPED = 3
    CANCELLED = 9


class ReservationState(StrEnum):
    """warehouse.reservations.hold_state (CHAR(1)); not in any contract."""

    HELD = "H"
    RELEASED = "R"  # order cancelled: units back to free stock
    CONSUMED = "C"  # shipped: units left the building


class MediaFormat(StrEnum):
    """warehouse.catalog_items.format_code (CHAR(2)) → contract products_v1.format."""

    VINYL = "LP"
    CD = "CD"
    CASSETTE = "MC"
    DIGITAL = "DL"


CURRENCY = "eur"  # services store ISO 4217 codes in lower case
SITES = ("AMS-1", "LDN-2", "BER-3")  # warehouse locations (contract stock_levels_v1.location)
CARRIERS = ("postnl", "dhl", "ups", "royalmail")


@dataclass(frozen=True)
class OrderLine:
    """One line of an order as the orders service stores it (cents)."""

    sku: str
    qty: int
    unit_price_cents: int
    discount_cents: int = 0

    @property
    def amount_cents(self) -> int:
        return line_amount_cents(self.qty, self.unit_price_cents, self.discount_cents)


def line_amount_cents(qty: int, unit_price_cents: int, discount_cents: int = 0) -> int:
    """What one order line costs: qty × unit price − discount, never below zero."""
    if qty <= 0 or unit_price_cents < 0 or discount_cents < 0:
        raise ValueError(f"order line: qty={qty} unit_price_cents={unit_price_cents} discount_cents={discount_cents}")
    return max(0, qty * unit_price_cents - discount_cents)


def order_total_cents(lines: list[tuple[int, int, int]]) -> int:
    """Order total from (qty, unit_price_cents, discount_cents) lines."""
    return sum(line_amount_cents(q, p, d) for q, p, d in lines)


def cents_to_decimal_string(cents: int) -> str:
    """12345 → '123.45' (how the contract's decimal(12,2) reads the cents)."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def payment_state_after_refund(amount_cents: int, refunded_cents: int) -> PaymentState:
    """The payment's state once `refunded_cents` (running total) of `amount_cents` went back."""
    if refunded_cents <= 0:
        return PaymentState.CAPTURED
    if refunded_cents > amount_cents:
        raise ValueError(f"refund of {refunded_cents} cents exceeds payment of {amount_cents} cents")
    return PaymentState.REFUNDED if refunded_cents == amount_cents else PaymentState.PARTIALLY_REFUNDED


def partial_refund_cents(remaining_cents: int, fraction: float) -> int:
    """A partial refund: `fraction` of what is still refundable, at least 1 cent, less than all of it.

    Returns the remaining amount itself when only one cent is left (a partial refund is then full).
    """
    if remaining_cents <= 0:
        raise ValueError("nothing left to refund")
    if remaining_cents == 1:
        return 1
    return min(remaining_cents - 1, max(1, int(remaining_cents * fraction)))


def stock_after_adjustment(on_hand: int, reserved: int, delta: int) -> int:
    """New on-hand quantity after a stock adjustment: a write-off never removes reserved units."""
    return max(on_hand + delta, reserved, 0)
