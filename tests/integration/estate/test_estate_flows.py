"""Each business flow's effect in its own service's private database (real PostgreSQL and MariaDB)."""

from __future__ import annotations

import secrets

import pytest

from estate import fake, flows
from estate.domain import (
    CustomerStatus,
    FulfilmentStage,
    OrderLine,
    OrderState,
    PaymentState,
    ReservationState,
)

pytestmark = pytest.mark.integration

TERMS = fake.terms_snapshot(fake.TERMS_VERSIONS[-1])


def _person(tag: str | None = None) -> fake.Person:
    tag = tag or secrets.token_hex(5)
    return fake.Person(email=f"test.{tag}@example.com", display_name=f"Test {tag}", country_iso="nl",
                       city="Amsterdam", line1="1 Test Street", postcode="1011", marketing_segment="collector")


def _one(conn, sql: str, params=()):
    return conn.execute(sql, params).fetchone()


def _maria(conn, sql: str, params=()):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    conn.commit()
    return rows


def _new_sku(estate, on_hand: dict[str, int], price: int = 1999) -> str:
    """A fresh SKU in the catalog with the given stock per site."""
    sku = f"T-{secrets.token_hex(4)}"
    with estate.warehouse.cursor() as cur:
        cur.execute("INSERT INTO catalog_items (sku, release_title, artist_name, format_code, price_cents,"
                    " currency_iso, listed, supplier_cost_cents, modified_on)"
                    " VALUES (%s, 'Test Title', 'Test Artist', 'LP', %s, 'eur', 1, 900, UTC_TIMESTAMP(6))",
                    (sku, price))
        for site, qty in on_hand.items():
            cur.execute("INSERT INTO bin_stock (sku, site_code, qty_on_hand, qty_allocated, modified_on)"
                        " VALUES (%s, %s, %s, 0, UTC_TIMESTAMP(6))", (sku, site, qty))
    estate.warehouse.commit()
    return sku


def _bins(estate, sku: str) -> dict[str, tuple[int, int]]:
    return {site: (on_hand, allocated) for site, on_hand, allocated in _maria(
        estate.warehouse, "SELECT site_code, qty_on_hand, qty_allocated FROM bin_stock WHERE sku = %s", (sku,))}


def _paid_order(estate, lines: list[OrderLine]) -> tuple[int, int]:
    customer = flows.register_customer(estate.customers, _person(), password_hash="h", verification_token="t")
    order_id = flows.place_order(estate.orders, customer, lines, terms=TERMS, metadata={"channel": "web"})
    total = sum(x.amount_cents for x in lines)
    payment_id = flows.authorise_payment(estate.payments, order_id, total, card_token="tok_x",
                                         processor_response={"result": "Authorised"})
    flows.capture_payment(estate.payments, estate.orders, payment_id, capture_reference="cp-1")
    return order_id, payment_id


# ----------------------------------------------------------------------------- customers


def test_register_customer_is_pending_with_an_enrolment_in_one_transaction(estate, decode):
    with decode("customers") as seen:
        customer_id = flows.register_customer(estate.customers, _person(), password_hash="$argon2id$x",
                                              verification_token="tok-1")
    row = _one(estate.customers, "SELECT status_code, signup_ts, verified_ts, password_hash FROM customers"
                                 " WHERE id = %s", (customer_id,))
    assert row[0] == CustomerStatus.PENDING and row[1] is not None and row[2] is None and row[3] == "$argon2id$x"
    assert _one(estate.customers, "SELECT count(*) FROM pending_enrollments WHERE customer_id = %s", (customer_id,))[0] == 1
    assert _one(estate.customers, "SELECT count(*) FROM addresses WHERE customer_id = %s", (customer_id,))[0] == 1
    assert len(seen.transactions) == 1
    tables = sorted(line.split(":")[0] for line in seen.transactions[0])
    assert tables == ["table public.addresses", "table public.customers", "table public.pending_enrollments"]


def test_verify_customer_marks_verified_and_drops_the_enrolment_in_the_same_transaction(estate, decode):
    customer_id = flows.register_customer(estate.customers, _person(), password_hash="h", verification_token="t")
    with decode("customers") as seen:
        assert flows.verify_customer(estate.customers, customer_id) is True
    status, verified_ts = _one(estate.customers, "SELECT status_code, verified_ts FROM customers WHERE id = %s",
                               (customer_id,))
    assert status == CustomerStatus.VERIFIED and verified_ts is not None
    assert _one(estate.customers, "SELECT count(*) FROM pending_enrollments WHERE customer_id = %s", (customer_id,))[0] == 0
    assert len(seen.transactions) == 1
    changes = seen.transactions[0]
    assert any(c.startswith("table public.customers: UPDATE") for c in changes)
    assert any(c.startswith("table public.pending_enrollments: DELETE") for c in changes)
    assert flows.verify_customer(estate.customers, customer_id) is False  # a second click changes nothing


def test_erase_customer_anonymises_in_place_and_deletes_addresses(estate):
    customer_id = flows.register_customer(estate.customers, _person(), password_hash="secret-hash",
                                          verification_token="t")
    assert flows.erase_customer(estate.customers, customer_id) is True
    row = _one(estate.customers, "SELECT status_code, email_address, display_name, password_hash, marketing_segment,"
                                 " erased_ts, country_iso FROM customers WHERE id = %s", (customer_id,))
    assert row[0] == CustomerStatus.ERASED
    assert row[1] == f"erased-{customer_id}@erased.invalid"
    assert row[2:5] == (None, None, None) and row[5] is not None
    assert row[6] == "nl"  # not personal on its own: kept for country-level reporting
    assert _one(estate.customers, "SELECT count(*) FROM addresses WHERE customer_id = %s", (customer_id,))[0] == 0
    assert _one(estate.customers, "SELECT count(*) FROM pending_enrollments WHERE customer_id = %s", (customer_id,))[0] == 0
    assert flows.erase_customer(estate.customers, customer_id) is False


# ----------------------------------------------------------------------------- orders


def test_place_order_writes_order_and_lines_with_the_total_in_cents(estate, decode):
    lines = [OrderLine("MC-000001", 2, 1299, 260), OrderLine("MC-000002", 1, 2499)]
    with decode("orders") as seen:
        order_id = flows.place_order(estate.orders, 42, lines, terms=TERMS,
                                     metadata={"channel": "app", "utm": {"source": "newsletter"}}, fraud_score=0.0123)
    row = _one(estate.orders, "SELECT customer_ref, state_code, total_cents, currency_iso, metadata->>'channel',"
                              " fraud_score, length(terms_snapshot) FROM orders WHERE id = %s", (order_id,))
    assert row[:5] == (42, OrderState.PLACED, 2 * 1299 - 260 + 2499, "eur", "app")
    assert float(row[5]) == pytest.approx(0.0123) and row[6] > 2048
    got = estate.orders.execute("SELECT line_no, sku, qty, unit_price_cents, discount_cents FROM order_lines"
                                " WHERE order_id = %s ORDER BY line_no", (order_id,)).fetchall()
    assert got == [(1, "MC-000001", 2, 1299, 260), (2, "MC-000002", 1, 2499, 0)]
    assert len(seen.transactions) == 1 and len(seen.transactions[0]) == 3


def test_terms_snapshot_is_stored_out_of_line_so_updates_carry_an_unchanged_toast_marker(estate, decode):
    order_id = flows.place_order(estate.orders, 7, [OrderLine("MC-000003", 1, 999)], terms=TERMS)
    with decode("orders") as seen:
        assert flows.set_order_state(estate.orders, order_id, OrderState.PAID)
    (update,) = [c for tx in seen.transactions for c in tx]
    assert "state_code[smallint]:20" in update
    assert "terms_snapshot[text]:unchanged-toast-datum" in update


def test_order_state_only_moves_forward(estate):
    order_id = flows.place_order(estate.orders, 8, [OrderLine("MC-000004", 1, 999)], terms=TERMS)
    assert flows.set_order_state(estate.orders, order_id, OrderState.SHIPPED)
    assert not flows.set_order_state(estate.orders, order_id, OrderState.PACKED)
    assert not flows.set_order_state(estate.orders, order_id, OrderState.CANCELLED)
    assert _one(estate.orders, "SELECT state_code FROM orders WHERE id = %s", (order_id,))[0] == OrderState.SHIPPED


def test_deleting_an_order_cascades_to_its_lines(estate):
    order_id = flows.place_order(estate.orders, 9, [OrderLine("MC-000005", 1, 999), OrderLine("MC-000006", 1, 999)],
                                 terms=TERMS)
    estate.orders.execute("DELETE FROM orders WHERE id = %s", (order_id,))
    assert _one(estate.orders, "SELECT count(*) FROM order_lines WHERE order_id = %s", (order_id,))[0] == 0


# ----------------------------------------------------------------------------- payments


def test_authorise_then_capture_marks_the_payment_captured_and_the_order_paid(estate):
    order_id = flows.place_order(estate.orders, 10, [OrderLine("MC-000007", 1, 1500)], terms=TERMS)
    payment_id = flows.authorise_payment(estate.payments, order_id, 1500, card_token="tok_abc",
                                         processor_response={"result": "Authorised"})
    state, captured = _one(estate.payments, "SELECT state_code, captured_ts FROM payments WHERE id = %s", (payment_id,))
    assert state == PaymentState.AUTHORISED and captured is None
    assert flows.capture_payment(estate.payments, estate.orders, payment_id, capture_reference="cp-9") == order_id
    row = _one(estate.payments, "SELECT state_code, captured_ts, processor_response->>'capture_reference'"
                                " FROM payments WHERE id = %s", (payment_id,))
    assert row[0] == PaymentState.CAPTURED and row[1] is not None and row[2] == "cp-9"
    assert _one(estate.orders, "SELECT state_code FROM orders WHERE id = %s", (order_id,))[0] == OrderState.PAID
    assert flows.capture_payment(estate.payments, estate.orders, payment_id, capture_reference="again") is None


def test_declined_authorisation_is_recorded_as_failed(estate):
    payment_id = flows.authorise_payment(estate.payments, 11, 800, card_token="tok_dec",
                                         processor_response={"result": "Refused"}, declined=True)
    assert _one(estate.payments, "SELECT state_code FROM payments WHERE id = %s", (payment_id,))[0] == PaymentState.FAILED


def test_partial_then_full_refund_keeps_a_running_total_in_the_same_transaction(estate, decode):
    order_id, payment_id = _paid_order(estate, [OrderLine("MC-000008", 2, 2000)])
    flows.set_order_state(estate.orders, order_id, OrderState.SHIPPED)
    with decode("payments") as seen:
        partial = flows.refund_payment(estate.payments, estate.orders, payment_id, 1500, reason="damaged")
    assert partial.state == PaymentState.PARTIALLY_REFUNDED and partial.refunded_cents == 1500
    assert len(seen.transactions) == 1
    assert sorted(c.split(":")[1].strip() for c in seen.transactions[0]) == ["INSERT", "UPDATE"]
    assert _one(estate.orders, "SELECT state_code FROM orders WHERE id = %s", (order_id,))[0] == OrderState.SHIPPED

    full = flows.refund_payment(estate.payments, estate.orders, payment_id)  # the rest
    assert full.state == PaymentState.REFUNDED and full.refunded_cents == 4000
    row = _one(estate.payments, "SELECT refunded_cents, state_code, (SELECT sum(amount_cents) FROM refunds r"
                                " WHERE r.payment_id = p.id) FROM payments p WHERE id = %s", (payment_id,))
    assert row == (4000, PaymentState.REFUNDED, 4000)
    assert _one(estate.orders, "SELECT state_code FROM orders WHERE id = %s", (order_id,))[0] == OrderState.REFUNDED
    assert flows.refund_payment(estate.payments, estate.orders, payment_id) is None


def test_refund_beyond_the_payment_is_refused_and_writes_nothing(estate):
    _, payment_id = _paid_order(estate, [OrderLine("MC-000009", 1, 1000)])
    with pytest.raises(ValueError, match="cannot refund"):
        flows.refund_payment(estate.payments, estate.orders, payment_id, 1001)
    assert _one(estate.payments, "SELECT refunded_cents, (SELECT count(*) FROM refunds WHERE payment_id = %s)"
                                 " FROM payments WHERE id = %s", (payment_id, payment_id)) == (0, 0)


# ----------------------------------------------------------------------------- warehouse


def test_reserve_stock_holds_units_at_the_site_with_most_free_stock(estate):
    plenty = _new_sku(estate, {"AMS-1": 5, "LDN-2": 50})
    scarce = _new_sku(estate, {"BER-3": 1})
    reserved = flows.reserve_stock(estate.warehouse, 9001, [(plenty, 3), (scarce, 2)])
    assert reserved == 4  # 3 of plenty, 1 of scarce (1 back-ordered)
    assert _bins(estate, plenty) == {"AMS-1": (5, 0), "LDN-2": (50, 3)}
    assert _bins(estate, scarce) == {"BER-3": (1, 1)}
    holds = _maria(estate.warehouse, "SELECT sku, site_code, qty, hold_state FROM reservations WHERE order_ref = 9001"
                                     " ORDER BY sku")
    assert sorted(holds) == sorted([(plenty, "LDN-2", 3, "H"), (scarce, "BER-3", 1, "H")])


def test_pick_pack_ship_moves_the_fulfilment_consumes_stock_and_keeps_the_order_in_step(estate):
    sku = _new_sku(estate, {"AMS-1": 10})
    order_id, _ = _paid_order(estate, [OrderLine(sku, 2, 1999)])
    flows.reserve_stock(estate.warehouse, order_id, [(sku, 2)])
    fulfilment_id = flows.pick(estate.warehouse, order_id, picker_id=117)
    row = _maria(estate.warehouse, "SELECT stage_code, picker_id, picked_on IS NOT NULL, packed_on FROM fulfilments"
                                   " WHERE id = %s", (fulfilment_id,))[0]
    assert row == (FulfilmentStage.PICKING, 117, 1, None)

    assert flows.pack(estate.warehouse, estate.orders, order_id)
    assert _maria(estate.warehouse, "SELECT stage_code, packed_on IS NOT NULL FROM fulfilments WHERE id = %s",
                  (fulfilment_id,))[0] == (FulfilmentStage.PACKED, 1)
    assert _one(estate.orders, "SELECT state_code FROM orders WHERE id = %s", (order_id,))[0] == OrderState.PACKED

    assert flows.ship(estate.warehouse, estate.orders, order_id, carrier="dhl", tracking_number="DH000000000001")
    row = _maria(estate.warehouse, "SELECT stage_code, carrier_code, tracking_ref, shipped_on IS NOT NULL"
                                   " FROM fulfilments WHERE id = %s", (fulfilment_id,))[0]
    assert row == (FulfilmentStage.SHIPPED, "dhl", "DH000000000001", 1)
    assert _bins(estate, sku) == {"AMS-1": (8, 0)}
    assert _maria(estate.warehouse, "SELECT hold_state FROM reservations WHERE order_ref = %s",
                  (order_id,)) == ((ReservationState.CONSUMED.value,),)
    assert _one(estate.orders, "SELECT state_code FROM orders WHERE id = %s", (order_id,))[0] == OrderState.SHIPPED
    assert not flows.ship(estate.warehouse, estate.orders, order_id, carrier="dhl", tracking_number="again")


@pytest.mark.parametrize("captured", [True, False], ids=["captured-refunded", "authorised-voided"])
def test_cancel_order_releases_stock_settles_the_payment_and_cancels_the_order(estate, captured):
    sku = _new_sku(estate, {"LDN-2": 4})
    customer = flows.register_customer(estate.customers, _person(), password_hash="h", verification_token="t")
    order_id = flows.place_order(estate.orders, customer, [OrderLine(sku, 3, 1000)], terms=TERMS)
    payment_id = flows.authorise_payment(estate.payments, order_id, 3000, card_token="tok",
                                         processor_response={"result": "Authorised"})
    if captured:
        flows.capture_payment(estate.payments, estate.orders, payment_id, capture_reference="cp")
    flows.reserve_stock(estate.warehouse, order_id, [(sku, 3)])
    flows.pick(estate.warehouse, order_id, picker_id=101)

    outcome = flows.cancel_order(estate.warehouse, estate.payments, estate.orders, order_id)

    assert outcome.units_released == 3 and outcome.order_cancelled
    assert outcome.payment_outcome == ("refunded" if captured else "voided")
    assert _bins(estate, sku) == {"LDN-2": (4, 0)}
    assert _maria(estate.warehouse, "SELECT hold_state FROM reservations WHERE order_ref = %s",
                  (order_id,)) == ((ReservationState.RELEASED.value,),)
    assert _maria(estate.warehouse, "SELECT stage_code FROM fulfilments WHERE order_ref = %s",
                  (order_id,)) == ((FulfilmentStage.CANCELLED,),)
    state, refunded = _one(estate.payments, "SELECT state_code, refunded_cents FROM payments WHERE id = %s", (payment_id,))
    assert (state, refunded) == ((PaymentState.REFUNDED, 3000) if captured else (PaymentState.VOIDED, 0))
    assert _one(estate.orders, "SELECT state_code FROM orders WHERE id = %s", (order_id,))[0] == OrderState.CANCELLED


def test_change_price_updates_the_catalog(estate):
    sku = _new_sku(estate, {}, price=2499)
    assert flows.change_price(estate.warehouse, sku, 2199)
    assert _maria(estate.warehouse, "SELECT price_cents FROM catalog_items WHERE sku = %s", (sku,)) == ((2199,),)
    assert not flows.change_price(estate.warehouse, "NO-SUCH-SKU", 100)
    with pytest.raises(ValueError):
        flows.change_price(estate.warehouse, sku, 0)


def test_adjust_stock_delivers_writes_off_and_retires_empty_bins(estate):
    sku = _new_sku(estate, {"AMS-1": 5})
    assert flows.adjust_stock(estate.warehouse, sku, "BER-3", 40) == 40  # delivery opens a bin
    assert flows.adjust_stock(estate.warehouse, sku, "AMS-1", -2) == 3
    flows.reserve_stock(estate.warehouse, 9100, [(sku, 40)])  # all 40 at BER-3 (most free)
    assert flows.adjust_stock(estate.warehouse, sku, "BER-3", -1_000_000) == 40  # reserved units stay
    assert flows.adjust_stock(estate.warehouse, sku, "AMS-1", -1_000_000) is None  # emptied: row deleted
    assert _bins(estate, sku) == {"BER-3": (40, 40)}
    assert flows.adjust_stock(estate.warehouse, sku, "LDN-2", -5) is None  # nothing to write off
