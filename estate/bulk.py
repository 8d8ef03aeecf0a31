"""Fast initial data for the estate: the catalog, and `bulk_load` of customers, orders, payments, stock.

PostgreSQL tables are filled with COPY (psycopg's `cursor.copy`, text format, rows formatted in
Python), MariaDB tables with multi-row INSERTs (PyMySQL `executemany` batches). Ids continue after
whatever is already there, and the PostgreSQL sequences are moved past them afterwards, so a bulk
load can follow a simulation and vice versa; nothing else may write to the estate meanwhile.
Deterministic for a seed (apart from the id offset and timestamps relative to now).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pymysql

from estate import fake
from estate.db import Estate
from estate.domain import (
    CARRIERS,
    CURRENCY,
    SITES,
    CustomerStatus,
    FulfilmentStage,
    OrderState,
    PaymentState,
    ReservationState,
    line_amount_cents,
)

_MARIA_BATCH = 2000
_INITIAL_STOCK = (200, 2000)


def ensure_catalog(warehouse: pymysql.connections.Connection, catalog_size: int) -> int:
    """Make SKUs 0..catalog_size-1 exist, each new one with stock at every site; returns how many were added.

    Existing catalog rows and bins are left alone (a retired bin stays retired).
    """
    wanted = {fake.sku(i): i for i in range(catalog_size)}
    with warehouse.cursor() as cur:
        cur.execute("SELECT sku FROM catalog_items WHERE sku BETWEEN %s AND %s",
                    (fake.sku(0), fake.sku(max(catalog_size - 1, 0))))
        missing = sorted(set(wanted) - {row[0] for row in cur.fetchall()})
        if missing:
            now = datetime.now(UTC).replace(tzinfo=None)
            items = [fake.catalog_item(wanted[s]) for s in missing]
            cur.executemany(
                "INSERT INTO catalog_items (sku, release_title, artist_name, format_code, price_cents, currency_iso,"
                " listed, supplier_cost_cents, modified_on) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(i.sku, i.title, i.artist, i.format.value, i.price_cents, CURRENCY, 1, i.supplier_cost_cents, now)
                 for i in items])
            rng = random.Random("initial-stock")
            cur.executemany(
                "INSERT IGNORE INTO bin_stock (sku, site_code, qty_on_hand, qty_allocated, modified_on)"
                " VALUES (%s, %s, %s, 0, %s)",
                [(s, site, rng.randint(*_INITIAL_STOCK), now) for s in missing for site in SITES])
    warehouse.commit()
    return len(missing)


@dataclass
class BulkLoadReport:
    seed: int
    rows: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return sum(self.rows.values()) / self.elapsed_s if self.elapsed_s else 0.0

    def summary(self) -> str:
        tables = ", ".join(f"{k}={v:,}" for k, v in self.rows.items())
        return f"bulk load (seed {self.seed}) in {self.elapsed_s:.1f}s ({self.rows_per_second:,.0f} rows/s): {tables}"

    __str__ = summary


def _copy_text(value: object) -> str:
    """One value in COPY text format."""
    if value is None:
        return "\\N"
    text = value if isinstance(value, str) else str(value)
    if any(c in text for c in "\\\t\n\r"):
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _copy(conn, table: str, columns: Iterable[str], rows: Iterable[tuple], batch: int = 5000) -> int:
    """COPY rows (tuples of already-formatted strings or plain values) into `table`; returns the count."""
    count = 0
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        buf: list[str] = []
        for row in rows:
            buf.append("\t".join(_copy_text(v) for v in row))
            count += 1
            if len(buf) >= batch:
                copy.write("\n".join(buf) + "\n")
                buf.clear()
        if buf:
            copy.write("\n".join(buf) + "\n")
    return count


def _next_id(conn, table: str) -> int:
    return int(conn.execute(f"SELECT COALESCE(max(id), 0) + 1 FROM {table}").fetchone()[0])  # noqa: S608 - fixed names


def _sync_sequence(conn, table: str) -> None:
    conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608 - fixed names
                 f" GREATEST((SELECT COALESCE(max(id), 0) FROM {table}), 1))")


def _ts(base: datetime, seconds: float) -> str:
    return (base + timedelta(seconds=seconds)).isoformat()


@dataclass
class _OrderPlan:
    order_id: int
    customer_id: int
    state: OrderState
    created_s: float  # seconds after the load's time origin
    lines: list[tuple[str, int, int, int]]  # sku, qty, unit price, discount
    total: int
    refunded: int


def _plan_orders(rng: random.Random, count: int, first_id: int, customer_ids: tuple[int, int],
                 catalog_size: int, span_s: float) -> Callable[[], Iterable[_OrderPlan]]:
    """A re-iterable, deterministic stream of historical orders (regenerated per table, not stored)."""
    seed = rng.getrandbits(64)
    states = (OrderState.SHIPPED, OrderState.REFUNDED, OrderState.CANCELLED, OrderState.PACKED,
              OrderState.PAID, OrderState.PLACED)
    weights = (86, 3, 4, 2, 3, 2)

    prices = [fake.catalog_item(i).price_cents for i in range(catalog_size)]

    def stream() -> Iterable[_OrderPlan]:
        r = random.Random(seed)
        lo, hi = customer_ids
        for n in range(count):
            state = r.choices(states, weights)[0]
            n_lines = r.choices((1, 2, 3, 4), (50, 30, 15, 5))[0]
            lines, used = [], set()
            while len(lines) < n_lines:
                index = int(catalog_size * r.random() ** 2)
                if index in used:
                    continue
                used.add(index)
                qty = r.choices((1, 2, 3), (80, 15, 5))[0]
                price = prices[index]
                discount = (qty * price) // 10 if r.random() < 0.1 else 0
                lines.append((fake.sku(index), qty, price, discount))
            total = sum(line_amount_cents(q, p, d) for _, q, p, d in lines)
            refunded = total if state == OrderState.REFUNDED else 0
            yield _OrderPlan(first_id + n, r.randint(lo, hi), state, span_s * n / max(count, 1),
                             lines, total, refunded)

    return stream


def bulk_load(urls: Mapping[str, str], orders: int, seed: int = 0, *, customers: int | None = None,
              catalog_size: int = 5000, progress: bool = True) -> BulkLoadReport:
    """Load `orders` historical orders (with lines, payments, refunds, fulfilments, reservations),
    `customers` customers (default orders/4, at least 10) with addresses, and the catalog with stock.

    For snapshot tests and benchmarks, e.g. `bulk_load(urls, 1_000_000, seed=1)`. Orders spread over
    the past year, most shipped, some cancelled, refunded or still in progress. Operational warning:
    every row is WAL/binlog-logged, and a connector snapshot of 1M orders takes a while.
    """
    if orders < 0:
        raise ValueError("orders must be >= 0")
    n_customers = customers if customers is not None else max(10, orders // 4)
    report = BulkLoadReport(seed=seed)
    rng = random.Random(seed)
    started = time.perf_counter()
    origin = datetime.now(UTC) - timedelta(days=365)
    span_s = 364 * 86400.0
    say = _say if progress else (lambda _msg: None)
    with Estate.connect(dict(urls)) as estate:
        report.rows["catalog_items"] = ensure_catalog(estate.warehouse, catalog_size)
        first_customer = _next_id(estate.customers, "customers")
        say(f"customers: {n_customers:,}")
        report.rows.update(_load_customers(estate, rng, first_customer, n_customers, origin, span_s))
        first_order = _next_id(estate.orders, "orders")
        stream = _plan_orders(rng, orders, first_order,
                              (first_customer, first_customer + max(n_customers, 1) - 1), catalog_size, span_s)
        say(f"orders: {orders:,}")
        report.rows.update(_load_orders(estate, stream, origin, rng))
        say("payments")
        report.rows.update(_load_payments(estate, stream, origin, rng))
        say("warehouse")
        report.rows.update(_load_warehouse(estate, stream, origin, rng))
    report.elapsed_s = time.perf_counter() - started
    say(report.summary())
    return report


def _say(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[dim]bulk load:[/dim] {message}")


def _load_customers(estate: Estate, rng: random.Random, first_id: int, count: int, origin: datetime,
                    span_s: float) -> dict[str, int]:
    conn = estate.customers
    r = random.Random(rng.getrandbits(64))
    people: list[tuple] = []
    pending: list[tuple] = []
    addresses: list[tuple] = []
    for n in range(count):
        cid = first_id + n
        person = fake.person(r, cid, domain="historic.example.com")
        signup_s = span_s * n / max(count, 1) - 86400 * 30
        status = CustomerStatus.PENDING if r.random() < 0.05 else CustomerStatus.VERIFIED
        signup = _ts(origin, signup_s)
        verified = None if status == CustomerStatus.PENDING else _ts(origin, signup_s + r.uniform(60, 86400))
        people.append((cid, person.email, person.display_name, person.country_iso, status.value,
                       fake.fake_password_hash(r), person.marketing_segment, signup, verified, verified or signup))
        addresses.append((cid, "S", person.line1, person.city, person.postcode, person.country_iso, signup))
        if status == CustomerStatus.PENDING:
            pending.append((cid, f"{r.getrandbits(128):032x}", _ts(origin, signup_s + 7 * 86400)))
    with conn.transaction():
        rows = {"customers": _copy(conn, "customers", (
            "id", "email_address", "display_name", "country_iso", "status_code", "password_hash",
            "marketing_segment", "signup_ts", "verified_ts", "modified_ts"), people)}
        rows["addresses"] = _copy(conn, "addresses", (
            "customer_id", "kind", "line1", "city", "postcode", "country_iso", "created_ts"), addresses)
        rows["pending_enrollments"] = _copy(conn, "pending_enrollments", (
            "customer_id", "verification_token", "expires_ts"), pending)
        _sync_sequence(conn, "customers")
        _sync_sequence(conn, "addresses")
    return rows


def _load_orders(estate: Estate, stream, origin: datetime, rng: random.Random) -> dict[str, int]:
    conn = estate.orders
    terms = {v: fake.terms_snapshot(v) for v in fake.TERMS_VERSIONS}
    channels = fake.CHANNELS

    def order_rows():
        for o in stream():
            version = fake.TERMS_VERSIONS[min(int(o.created_s / (365 * 86400) * 3), 2)]
            created = _ts(origin, o.created_s)
            modified = _ts(origin, o.created_s + 86400 * 2)
            meta = json.dumps({"channel": channels[o.order_id % len(channels)]})
            yield (o.order_id, o.customer_id, int(o.state), o.total, CURRENCY, created, modified,
                   f"0.{(o.order_id * 7919) % 10000:04d}", None, terms[version], meta)

    def line_rows():
        for o in stream():
            for n, (sku, qty, price, discount) in enumerate(o.lines, start=1):
                yield (o.order_id, n, sku, qty, price, discount)

    with conn.transaction():
        rows = {"orders": _copy(conn, "orders", (
            "id", "customer_ref", "state_code", "total_cents", "currency_iso", "created_ts", "modified_ts",
            "fraud_score", "internal_note", "terms_snapshot", "metadata"), order_rows())}
        rows["order_lines"] = _copy(conn, "order_lines", (
            "order_id", "line_no", "sku", "qty", "unit_price_cents", "discount_cents"), line_rows())
        _sync_sequence(conn, "orders")
    return rows


_PAYMENT_STATE = {
    OrderState.PLACED: PaymentState.AUTHORISED,
    OrderState.PAID: PaymentState.CAPTURED,
    OrderState.PACKED: PaymentState.CAPTURED,
    OrderState.SHIPPED: PaymentState.CAPTURED,
    OrderState.REFUNDED: PaymentState.REFUNDED,
    OrderState.CANCELLED: PaymentState.VOIDED,
}


def _load_payments(estate: Estate, stream, origin: datetime, rng: random.Random) -> dict[str, int]:
    conn = estate.payments
    first_payment = _next_id(conn, "payments")
    first_refund = _next_id(conn, "refunds")
    response = json.dumps({"psp": "adyen-sim", "result": "Authorised", "card": {"brand": "visa", "last4": "4242"}})

    def payment_rows():
        for n, o in enumerate(stream()):
            state = _PAYMENT_STATE[o.state]
            authorised = _ts(origin, o.created_s + 5)
            captured = _ts(origin, o.created_s + 3600) if state in (
                PaymentState.CAPTURED, PaymentState.REFUNDED) else None
            yield (first_payment + n, o.order_id, int(state), o.total, CURRENCY, o.refunded,
                   f"tok_{(o.order_id * 2654435761) % (1 << 64):016x}", response, authorised, captured,
                   _ts(origin, o.created_s + 86400 * 2))

    def refund_rows():
        n = 0
        for p, o in enumerate(stream()):
            if o.refunded:
                yield (first_refund + n, first_payment + p, o.refunded, "return", None,
                       _ts(origin, o.created_s + 86400 * 2))
                n += 1

    with conn.transaction():
        rows = {"payments": _copy(conn, "payments", (
            "id", "order_ref", "state_code", "amount_cents", "currency_iso", "refunded_cents", "card_token",
            "processor_response", "authorised_ts", "captured_ts", "modified_ts"), payment_rows())}
        rows["refunds"] = _copy(conn, "refunds", (
            "id", "payment_id", "amount_cents", "reason_code", "processor_response", "created_ts"), refund_rows())
        _sync_sequence(conn, "payments")
        _sync_sequence(conn, "refunds")
    return rows


def _maria_dt(origin: datetime, seconds: float) -> str:
    return (origin + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S.%f")


def _load_warehouse(estate: Estate, stream, origin: datetime, rng: random.Random) -> dict[str, int]:
    conn = estate.warehouse
    stage_of = {OrderState.PACKED: FulfilmentStage.PACKED, OrderState.SHIPPED: FulfilmentStage.SHIPPED,
                OrderState.REFUNDED: FulfilmentStage.SHIPPED}
    hold_of = {OrderState.PAID: ReservationState.HELD, OrderState.PACKED: ReservationState.HELD,
               OrderState.SHIPPED: ReservationState.CONSUMED, OrderState.REFUNDED: ReservationState.CONSUMED}
    fulfilments: list[tuple] = []
    reservations: list[tuple] = []
    counts = {"fulfilments": 0, "reservations": 0}
    with conn.cursor() as cur:
        def flush(force: bool = False) -> None:
            if not force and len(fulfilments) < _MARIA_BATCH and len(reservations) < _MARIA_BATCH:
                return
            if fulfilments:
                cur.executemany(
                    "INSERT INTO fulfilments (order_ref, stage_code, carrier_code, tracking_ref, picker_id,"
                    " picked_on, packed_on, shipped_on, modified_on) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    fulfilments)
                counts["fulfilments"] += len(fulfilments)
                fulfilments.clear()
            if reservations:
                cur.executemany(
                    "INSERT INTO reservations (order_ref, sku, site_code, qty, hold_state, created_on, modified_on)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s)", reservations)
                counts["reservations"] += len(reservations)
                reservations.clear()
            conn.commit()

        for o in stream():
            hold = hold_of.get(o.state)
            if hold is not None:
                at = _maria_dt(origin, o.created_s + 3700)
                site = SITES[o.order_id % len(SITES)]
                reservations.extend((o.order_id, sku, site, qty, hold.value, at, at) for sku, qty, _, _ in o.lines)
            stage = stage_of.get(o.state)
            if stage is not None:
                picked = _maria_dt(origin, o.created_s + 7200)
                packed = _maria_dt(origin, o.created_s + 9000)
                shipped = _maria_dt(origin, o.created_s + 86400) if stage == FulfilmentStage.SHIPPED else None
                carrier = CARRIERS[o.order_id % len(CARRIERS)] if shipped else None
                tracking = f"{carrier[:2].upper()}{o.order_id:012d}" if carrier else None
                fulfilments.append((o.order_id, int(stage), carrier, tracking, 100 + o.order_id % 60,
                                    picked, packed, shipped, shipped or packed))
            flush()
        flush(force=True)
        # held reservations are what bin_stock.qty_allocated counts
        cur.execute("UPDATE bin_stock b JOIN (SELECT sku, site_code, SUM(qty) AS held FROM reservations"
                    " WHERE hold_state = %s GROUP BY sku, site_code) r ON r.sku = b.sku AND r.site_code = b.site_code"
                    " SET b.qty_allocated = r.held, b.qty_on_hand = GREATEST(b.qty_on_hand, r.held)",
                    (ReservationState.HELD.value,))
    conn.commit()
    return counts
