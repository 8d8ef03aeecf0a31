"""MusicCorp's business flows, as the services themselves would run them.

Every flow is ONE database transaction in the database of the service that owns the data. A flow
that spans services (capture → order paid, pack/ship → order packed/shipped, cancellation) runs one
transaction per service, in the order the services would react to each other's events; there is no
distributed transaction, exactly as in a microservice estate. Each function's docstring names its
transactions.

PostgreSQL connections are in autocommit mode (see `estate.db`): a single statement (data-modifying
CTEs included) is its own transaction; several statements run inside `conn.transaction()`.
MariaDB connections commit explicitly (`_maria_tx`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import psycopg
import pymysql
from psycopg.types.json import Jsonb

from estate.domain import (
    CURRENCY,
    CustomerStatus,
    FulfilmentStage,
    OrderLine,
    OrderState,
    PaymentState,
    ReservationState,
    payment_state_after_refund,
    stock_after_adjustment,
)
from estate.fake import Person

PgConn = psycopg.Connection
MariaConn = pymysql.connections.Connection


@contextlib.contextmanager
def _maria_tx(conn: MariaConn) -> Iterator[pymysql.cursors.Cursor]:
    """One MariaDB transaction: commit on success, roll back on any error."""
    cur = conn.cursor()
    try:
        yield cur
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        cur.close()


# --------------------------------------------------------------------------- customers

_REGISTER = """
WITH customer AS (
    INSERT INTO customers (email_address, display_name, country_iso, status_code, password_hash,
                           marketing_segment, signup_ts, modified_ts)
    VALUES (%(email)s, %(name)s, %(country)s, 'P', %(password_hash)s, %(segment)s, now(), now())
    RETURNING id
), shipping_address AS (
    INSERT INTO addresses (customer_id, kind, line1, city, postcode, country_iso, created_ts)
    SELECT id, 'S', %(line1)s, %(city)s, %(postcode)s, %(country)s, now() FROM customer
)
INSERT INTO pending_enrollments (customer_id, verification_token, expires_ts)
SELECT id, %(token)s, now() + interval '7 days' FROM customer
RETURNING customer_id
"""


def register_customer(customers: PgConn, person: Person, *, password_hash: str, verification_token: str) -> int:
    """A customer signs up: PENDING customer, shipping address and pending enrolment, one transaction.

    Returns the new customer id.
    """
    row = customers.execute(_REGISTER, {
        "email": person.email, "name": person.display_name, "country": person.country_iso,
        "password_hash": password_hash, "segment": person.marketing_segment, "line1": person.line1,
        "city": person.city, "postcode": person.postcode, "token": verification_token,
    }).fetchone()
    return int(row[0])


_VERIFY = """
WITH enrolment AS (
    DELETE FROM pending_enrollments WHERE customer_id = %(id)s RETURNING customer_id
)
UPDATE customers c SET status_code = 'V', verified_ts = now(), modified_ts = now()
FROM enrolment e WHERE c.id = e.customer_id AND c.status_code = 'P'
RETURNING c.id
"""


def verify_customer(customers: PgConn, customer_id: int) -> bool:
    """The customer clicks the verification link: VERIFIED and the pending enrolment row is gone, one transaction.

    False when there was no pending enrolment (already verified or erased).
    """
    return customers.execute(_VERIFY, {"id": customer_id}).fetchone() is not None


def erase_customer(customers: PgConn, customer_id: int) -> bool:
    """Right to erasure: anonymise the customer in place, one transaction.

    Personal data is overwritten (e-mail replaced by a per-id placeholder, name, password hash and
    marketing segment cleared), addresses and any pending enrolment are deleted, and the status
    becomes ERASED. The row and its id stay so orders and payments keep a valid customer reference
    and the reporting contract can say ERASED. False when the customer was already erased or unknown.
    """
    with customers.transaction():
        customers.execute("DELETE FROM addresses WHERE customer_id = %s", (customer_id,))
        customers.execute("DELETE FROM pending_enrollments WHERE customer_id = %s", (customer_id,))
        row = customers.execute(
            "UPDATE customers SET email_address = 'erased-' || id || '@erased.invalid', display_name = NULL,"
            " password_hash = NULL, marketing_segment = NULL, status_code = %s, erased_ts = now(),"
            " modified_ts = now() WHERE id = %s AND status_code <> %s RETURNING id",
            (CustomerStatus.ERASED.value, customer_id, CustomerStatus.ERASED.value),
        ).fetchone()
    return row is not None


# --------------------------------------------------------------------------- orders


_PLACE = """
WITH placed AS (
    INSERT INTO orders (customer_ref, state_code, total_cents, currency_iso, created_ts, modified_ts,
                        fraud_score, internal_note, terms_snapshot, metadata)
    VALUES (%(customer)s, %(state)s, %(total)s, %(currency)s, now(), now(), %(fraud)s, %(note)s, %(terms)s, %(meta)s)
    RETURNING id
), lines AS (
    INSERT INTO order_lines (order_id, line_no, sku, qty, unit_price_cents, discount_cents)
    SELECT placed.id, l.line_no, l.sku, l.qty, l.unit_price_cents, l.discount_cents
    FROM placed, unnest(%(line_nos)s::smallint[], %(skus)s::varchar[], %(qtys)s::int[],
                        %(prices)s::bigint[], %(discounts)s::bigint[])
         AS l(line_no, sku, qty, unit_price_cents, discount_cents)
)
SELECT id FROM placed
"""


def place_order(orders: PgConn, customer_id: int, lines: Sequence[OrderLine], *, terms: str,
                metadata: dict | None = None, fraud_score: float | None = None,
                internal_note: str | None = None, currency: str = CURRENCY) -> int:
    """The customer checks out: order (PLACED, total in cents) and its lines, one transaction. Returns the order id."""
    if not lines:
        raise ValueError(f"order for customer {customer_id} has no lines")
    row = orders.execute(_PLACE, {
        "customer": customer_id, "state": int(OrderState.PLACED), "currency": currency,
        "total": sum(line.amount_cents for line in lines), "fraud": fraud_score, "note": internal_note,
        "terms": terms, "meta": Jsonb(metadata) if metadata is not None else None,
        "line_nos": list(range(1, len(lines) + 1)), "skus": [line.sku for line in lines],
        "qtys": [line.qty for line in lines], "prices": [line.unit_price_cents for line in lines],
        "discounts": [line.discount_cents for line in lines],
    }).fetchone()
    return int(row[0])


_ORDER_MOVES = {
    OrderState.PAID: (OrderState.PLACED,),
    OrderState.PACKED: (OrderState.PLACED, OrderState.PAID),
    OrderState.SHIPPED: (OrderState.PLACED, OrderState.PAID, OrderState.PACKED),
    OrderState.CANCELLED: (OrderState.PLACED, OrderState.PAID, OrderState.PACKED),
    OrderState.REFUNDED: (OrderState.SHIPPED,),
}


def set_order_state(orders: PgConn, order_id: int, state: OrderState) -> bool:
    """The orders service records what happened elsewhere (paid, packed, shipped, cancelled, refunded).

    One transaction; only moves forward (a late or repeated event changes nothing). True if it moved.
    """
    allowed = [int(s) for s in _ORDER_MOVES[state]]
    row = orders.execute(
        "UPDATE orders SET state_code = %s, modified_ts = now() WHERE id = %s AND state_code = ANY(%s) RETURNING id",
        (int(state), order_id, allowed),
    ).fetchone()
    return row is not None


# --------------------------------------------------------------------------- payments

_AUTHORISE = """
INSERT INTO payments (order_ref, state_code, amount_cents, currency_iso, refunded_cents, card_token,
                      processor_response, authorised_ts, modified_ts)
VALUES (%s, %s, %s, %s, 0, %s, %s, now(), now())
RETURNING id
"""


def authorise_payment(payments: PgConn, order_id: int, amount_cents: int, *, card_token: str,
                      processor_response: dict, declined: bool = False, currency: str = CURRENCY) -> int:
    """The PSP authorises the order's amount on the customer's card: AUTHORISED payment, one transaction.

    A declined card is recorded too, as a FAILED payment (the customer may try again). Returns the payment id.
    """
    state = PaymentState.FAILED if declined else PaymentState.AUTHORISED
    row = payments.execute(_AUTHORISE, (order_id, int(state), amount_cents, currency,
                                        card_token, Jsonb(processor_response))).fetchone()
    return int(row[0])


def capture_payment(payments: PgConn, orders: PgConn, payment_id: int, *, capture_reference: str) -> int | None:
    """The money is taken: payment CAPTURED (payments tx), then the order is PAID (orders tx).

    Returns the order id, or None when the payment was not in AUTHORISED state.
    """
    row = payments.execute(
        "UPDATE payments SET state_code = %s, captured_ts = now(), modified_ts = now(),"
        " processor_response = processor_response || %s WHERE id = %s AND state_code = %s RETURNING order_ref",
        (int(PaymentState.CAPTURED), Jsonb({"capture_reference": capture_reference}), payment_id,
         int(PaymentState.AUTHORISED)),
    ).fetchone()
    if row is None:
        return None
    order_id = int(row[0])
    set_order_state(orders, order_id, OrderState.PAID)
    return order_id


@dataclass(frozen=True)
class RefundOutcome:
    refund_id: int
    order_id: int
    refunded_cents: int
    state: PaymentState


def _refund_in_tx(payments: PgConn, payment_id: int, amount_cents: int | None, reason: str) -> RefundOutcome | None:
    row = payments.execute(
        "SELECT order_ref, amount_cents, refunded_cents, state_code FROM payments WHERE id = %s FOR UPDATE",
        (payment_id,),
    ).fetchone()
    if row is None or row[3] not in (PaymentState.CAPTURED, PaymentState.PARTIALLY_REFUNDED):
        return None
    order_id, amount, refunded, _ = row
    to_refund = amount - refunded if amount_cents is None else amount_cents
    if to_refund <= 0 or refunded + to_refund > amount:
        raise ValueError(f"payment {payment_id}: cannot refund {to_refund} cents ({refunded} of {amount} already)")
    state = payment_state_after_refund(amount, refunded + to_refund)
    refund_id = payments.execute(
        "INSERT INTO refunds (payment_id, amount_cents, reason_code, processor_response, created_ts)"
        " VALUES (%s, %s, %s, %s, now()) RETURNING id",
        (payment_id, to_refund, reason, Jsonb({"result": "Refunded", "psp_reference": f"rf-{payment_id}-{refunded}"})),
    ).fetchone()[0]
    payments.execute(
        "UPDATE payments SET refunded_cents = %s, state_code = %s, modified_ts = now() WHERE id = %s",
        (refunded + to_refund, int(state), payment_id),
    )
    return RefundOutcome(int(refund_id), int(order_id), refunded + to_refund, state)


def refund_payment(payments: PgConn, orders: PgConn, payment_id: int, amount_cents: int | None = None, *,
                   reason: str = "return") -> RefundOutcome | None:
    """Money goes back: a refund row and the payment's running `refunded_cents`/state in ONE payments tx.

    `amount_cents=None` refunds everything still refundable (full refund). When the payment is then
    fully refunded and the order had shipped, the orders service marks it REFUNDED (orders tx).
    None when the payment was not captured.
    """
    with payments.transaction():
        outcome = _refund_in_tx(payments, payment_id, amount_cents, reason)
    if outcome is not None and outcome.state == PaymentState.REFUNDED:
        set_order_state(orders, outcome.order_id, OrderState.REFUNDED)
    return outcome


# --------------------------------------------------------------------------- warehouse


def reserve_stock(warehouse: MariaConn, order_id: int, items: Sequence[tuple[str, int]]) -> int:
    """Hold stock for an order's lines, one warehouse transaction. Returns the units reserved.

    Each SKU is reserved at the site with the most free units (qty_on_hand − qty_allocated), up to what is
    free there; what cannot be held is back-ordered (not reserved). SKUs must be distinct.
    """
    if not items:
        return 0
    skus = [sku for sku, _ in items]
    placeholders = ", ".join(["%s"] * len(skus))
    reserved = 0
    with _maria_tx(warehouse) as cur:
        cur.execute(
            f"SELECT sku, site_code, qty_on_hand - qty_allocated FROM bin_stock WHERE sku IN ({placeholders})"  # noqa: S608 - placeholders only
            " ORDER BY sku, site_code FOR UPDATE", skus)
        best: dict[str, tuple[str, int]] = {}
        for sku, site, free in cur.fetchall():
            if sku not in best or free > best[sku][1]:
                best[sku] = (site, int(free))
        holds = []
        for sku, qty in items:
            site, free = best.get(sku, ("", 0))
            take = min(qty, free)
            if take > 0:
                holds.append((sku, site, take))
        if holds:
            # one UPDATE for all bins: qty_allocated + CASE (sku, site) … (one round trip, not one per line)
            cases = " ".join(["WHEN sku = %s AND site_code = %s THEN %s"] * len(holds))
            keys = " OR ".join(["(sku = %s AND site_code = %s)"] * len(holds))
            cur.execute(
                f"UPDATE bin_stock SET qty_allocated = qty_allocated + CASE {cases} ELSE 0 END,"  # noqa: S608 - placeholders only
                f" modified_on = UTC_TIMESTAMP(6) WHERE {keys}",
                [v for sku, site, take in holds for v in (sku, site, take)]
                + [v for sku, site, _ in holds for v in (sku, site)])
            cur.executemany(
                "INSERT INTO reservations (order_ref, sku, site_code, qty, hold_state, created_on, modified_on)"
                " VALUES (%s, %s, %s, %s, %s, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
                [(order_id, sku, site, take, ReservationState.HELD.value) for sku, site, take in holds])
            reserved = sum(take for _, _, take in holds)
    return reserved


def pick(warehouse: MariaConn, order_id: int, *, picker_id: int) -> int:
    """A picker starts on the order: a fulfilment in PICKING with picked_on, one warehouse tx. Returns its id."""
    with _maria_tx(warehouse) as cur:
        cur.execute(
            "INSERT INTO fulfilments (order_ref, stage_code, picker_id, picked_on, modified_on)"
            " VALUES (%s, %s, %s, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
            (order_id, int(FulfilmentStage.PICKING), picker_id))
        return int(cur.lastrowid)


def pack(warehouse: MariaConn, orders: PgConn, order_id: int) -> bool:
    """The parcel is packed: fulfilment PACKED (warehouse tx), then the order is PACKED (orders tx)."""
    with _maria_tx(warehouse) as cur:
        moved = cur.execute(
            "UPDATE fulfilments SET stage_code = %s, packed_on = UTC_TIMESTAMP(6), modified_on = UTC_TIMESTAMP(6)"
            " WHERE order_ref = %s AND stage_code = %s",
            (int(FulfilmentStage.PACKED), order_id, int(FulfilmentStage.PICKING)))
    if moved:
        set_order_state(orders, order_id, OrderState.PACKED)
    return bool(moved)


def ship(warehouse: MariaConn, orders: PgConn, order_id: int, *, carrier: str, tracking_number: str) -> bool:
    """Handed to the carrier: fulfilment SHIPPED and its reserved units leave stock (warehouse tx), then
    the order is SHIPPED (orders tx)."""
    with _maria_tx(warehouse) as cur:
        # one statement: the packed fulfilment ships, and its held reservations (if any; one per SKU,
        # so each bin is joined once) are consumed and leave the bins
        moved = cur.execute(
            "UPDATE fulfilments f"
            " LEFT JOIN reservations r ON r.order_ref = f.order_ref AND r.hold_state = %s"
            " LEFT JOIN bin_stock b ON b.sku = r.sku AND b.site_code = r.site_code"
            " SET f.stage_code = %s, f.carrier_code = %s, f.tracking_ref = %s, f.shipped_on = UTC_TIMESTAMP(6),"
            " f.modified_on = UTC_TIMESTAMP(6), r.hold_state = %s, r.modified_on = UTC_TIMESTAMP(6),"
            " b.qty_on_hand = b.qty_on_hand - r.qty, b.qty_allocated = b.qty_allocated - r.qty,"
            " b.modified_on = UTC_TIMESTAMP(6)"
            " WHERE f.order_ref = %s AND f.stage_code = %s",
            (ReservationState.HELD.value, int(FulfilmentStage.SHIPPED), carrier, tracking_number,
             ReservationState.CONSUMED.value, order_id, int(FulfilmentStage.PACKED)))
    if moved:
        set_order_state(orders, order_id, OrderState.SHIPPED)
    return bool(moved)


def change_price(warehouse: MariaConn, sku: str, price_cents: int) -> bool:
    """Merchandising changes a catalog price, one warehouse tx. False for an unknown SKU."""
    if price_cents <= 0:
        raise ValueError(f"{sku}: price must be positive, got {price_cents} cents")
    with _maria_tx(warehouse) as cur:
        return bool(cur.execute(
            "UPDATE catalog_items SET price_cents = %s, modified_on = UTC_TIMESTAMP(6) WHERE sku = %s",
            (price_cents, sku)))


def adjust_stock(warehouse: MariaConn, sku: str, site: str, delta: int) -> int | None:
    """A delivery (delta > 0) or a write-off / stock count (delta < 0) at one site, one warehouse tx.

    Reserved units are never written off. A bin that ends up empty (nothing on hand, nothing
    reserved) is retired: its row is deleted (stock_levels is a hard-delete contract). A delivery
    to a site with no bin opens one. Returns the new on-hand quantity, None when the bin is gone.
    """
    with _maria_tx(warehouse) as cur:
        cur.execute("SELECT qty_on_hand, qty_allocated FROM bin_stock WHERE sku = %s AND site_code = %s FOR UPDATE",
                    (sku, site))
        row = cur.fetchone()
        if row is None:
            if delta <= 0:
                return None
            cur.execute("INSERT INTO bin_stock (sku, site_code, qty_on_hand, qty_allocated, modified_on)"
                        " VALUES (%s, %s, %s, 0, UTC_TIMESTAMP(6))", (sku, site, delta))
            return delta
        qty_on_hand, qty_allocated = int(row[0]), int(row[1])
        new_on_hand = stock_after_adjustment(qty_on_hand, qty_allocated, delta)
        if new_on_hand == 0 and qty_allocated == 0:
            cur.execute("DELETE FROM bin_stock WHERE sku = %s AND site_code = %s", (sku, site))
            return None
        cur.execute("UPDATE bin_stock SET qty_on_hand = %s, modified_on = UTC_TIMESTAMP(6)"
                    " WHERE sku = %s AND site_code = %s", (new_on_hand, sku, site))
        return new_on_hand


# --------------------------------------------------------------------------- across services


@dataclass(frozen=True)
class Cancellation:
    units_released: int
    payment_outcome: str  # 'voided', 'refunded' or 'none'
    order_cancelled: bool


def cancel_order(warehouse: MariaConn, payments: PgConn, orders: PgConn, order_id: int) -> Cancellation:
    """The customer cancels before shipping: three services, three transactions, in this order.

    1. warehouse: held reservations are released (units back to free stock) and an unshipped
       fulfilment is CANCELLED; 2. payments: an authorised payment is VOIDED, a captured one is
       refunded in full; 3. orders: the order is CANCELLED (only if not shipped yet).
    """
    with _maria_tx(warehouse) as cur:
        cur.execute("SELECT COALESCE(SUM(qty), 0) FROM reservations WHERE order_ref = %s AND hold_state = %s",
                    (order_id, ReservationState.HELD.value))
        released = int(cur.fetchone()[0])
        if released:
            cur.execute(
                "UPDATE bin_stock b JOIN reservations r ON r.sku = b.sku AND r.site_code = b.site_code"
                " SET b.qty_allocated = b.qty_allocated - r.qty, b.modified_on = UTC_TIMESTAMP(6),"
                " r.hold_state = %s, r.modified_on = UTC_TIMESTAMP(6) WHERE r.order_ref = %s AND r.hold_state = %s",
                (ReservationState.RELEASED.value, order_id, ReservationState.HELD.value))
        cur.execute("UPDATE fulfilments SET stage_code = %s, modified_on = UTC_TIMESTAMP(6)"
                    " WHERE order_ref = %s AND stage_code IN (%s, %s)",
                    (int(FulfilmentStage.CANCELLED), order_id, int(FulfilmentStage.PICKING),
                     int(FulfilmentStage.PACKED)))
    outcome = "none"
    with payments.transaction():
        row = payments.execute(
            "SELECT id, state_code FROM payments WHERE order_ref = %s AND state_code IN (%s, %s, %s)"
            " ORDER BY id DESC LIMIT 1 FOR UPDATE",
            (order_id, int(PaymentState.AUTHORISED), int(PaymentState.CAPTURED),
             int(PaymentState.PARTIALLY_REFUNDED))).fetchone()
        if row is not None and row[1] == PaymentState.AUTHORISED:
            payments.execute("UPDATE payments SET state_code = %s, modified_ts = now() WHERE id = %s",
                             (int(PaymentState.VOIDED), row[0]))
            outcome = "voided"
        elif row is not None:
            _refund_in_tx(payments, int(row[0]), None, "cancel")
            outcome = "refunded"
    cancelled = set_order_state(orders, order_id, OrderState.CANCELLED)
    return Cancellation(released, outcome, cancelled)
