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
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
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


class _Clock:
    """Timestamp text for "origin + s seconds" (UTC), fast enough for millions of rows."""

    def __init__(self, origin: datetime) -> None:
        origin = origin.astimezone(UTC).replace(microsecond=0)
        self.date = origin.date()
        self.offset = origin.hour * 3600 + origin.minute * 60 + origin.second
        self.days: dict[int, str] = {}

    def text(self, seconds: float) -> str:
        """'YYYY-MM-DD HH:MM:SS' (MariaDB DATETIME, UTC)."""
        day, rest = divmod(self.offset + int(seconds), 86400)
        if day not in self.days:
            self.days[day] = (self.date + timedelta(days=day)).isoformat()
        hour, rest = divmod(rest, 3600)
        minute, second = divmod(rest, 60)
        return f"{self.days[day]} {hour:02d}:{minute:02d}:{second:02d}"

    def tz(self, seconds: float) -> str:
        """The same instant for a PostgreSQL timestamptz column."""
        return self.text(seconds) + "+00"


def _copy_text(value: object) -> str:
    """One value in COPY text format."""
    if value is None:
        return "\\N"
    text = value if isinstance(value, str) else str(value)
    if any(c in text for c in "\\\t\n\r"):
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _copy_rows(conn, table: str, columns: Iterable[str], rows: Iterable[tuple]) -> int:
    """COPY rows of plain values into `table` (escaped here); returns the count."""
    lines = ["\t".join(_copy_text(v) for v in row) + "\n" for row in rows]
    return _copy_lines(conn, table, columns, lines)


def _copy_lines(conn, table: str, columns: Iterable[str], lines: list[str]) -> int:
    """COPY pre-formatted text lines (tab-separated, escaped, newline-terminated) into `table`."""
    if lines:
        with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for start in range(0, len(lines), 5000):
                copy.write("".join(lines[start:start + 5000]))
    return len(lines)


def _insert_values(cur, table: str, columns: str, values: list[str]) -> int:
    """Multi-row INSERT of pre-rendered `(…)` tuples (generated, quote-free values only)."""
    for start in range(0, len(values), _MARIA_BATCH):
        cur.execute(f"INSERT INTO {table} ({columns}) VALUES " + ",".join(values[start:start + _MARIA_BATCH]))
    return len(values)


def _next_id(conn, table: str) -> int:
    return int(conn.execute(f"SELECT COALESCE(max(id), 0) + 1 FROM {table}").fetchone()[0])  # noqa: S608 - fixed names


def _sync_sequence(conn, table: str) -> None:
    conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608 - fixed names
                 f" GREATEST((SELECT COALESCE(max(id), 0) FROM {table}), 1))")


@dataclass(slots=True)
class _HistoricOrder:
    order_id: int
    customer_id: int
    state: OrderState
    created_s: int  # seconds after the load's time origin
    lines: list[tuple[str, int, int, int]]  # sku, qty, unit price, discount
    total: int


# Historical order states and their cumulative shares: most orders of the past year shipped.
_STATE_CUTS = ((0.86, OrderState.SHIPPED), (0.89, OrderState.REFUNDED), (0.93, OrderState.CANCELLED),
               (0.95, OrderState.PACKED), (0.98, OrderState.PAID), (1.01, OrderState.PLACED))
_LINES_CUTS = ((0.50, 1), (0.80, 2), (0.95, 3), (1.01, 4))
_QTY_CUTS = ((0.80, 1), (0.95, 2), (1.01, 3))


def _cut(roll: float, cuts: tuple) -> object:
    for limit, value in cuts:
        if roll < limit:
            return value
    return cuts[-1][1]


class _OrderHistory:
    """Deterministic historical orders, generated once, chunk by chunk."""

    def __init__(self, rng: random.Random, count: int, first_id: int, customers: tuple[int, int],
                 catalog_size: int, span_s: float) -> None:
        self.r = random.Random(rng.getrandbits(64))
        self.count, self.next_id, self.first_id = count, first_id, first_id
        self.customers = customers
        self.catalog_size, self.span_s = catalog_size, span_s
        self.skus = [fake.sku(i) for i in range(catalog_size)]
        self.prices = [fake.catalog_item(i).price_cents for i in range(catalog_size)]

    def chunk(self, size: int) -> list[_HistoricOrder]:
        r, out = self.r, []
        lo, hi = self.customers
        end = min(self.next_id + size, self.first_id + self.count)
        for order_id in range(self.next_id, end):
            state = _cut(r.random(), _STATE_CUTS)
            wanted = _cut(r.random(), _LINES_CUTS)
            used: set[int] = set()
            lines = []
            while len(lines) < wanted:
                index = int(self.catalog_size * r.random() ** 2)
                if index in used:
                    continue
                used.add(index)
                qty = _cut(r.random(), _QTY_CUTS)
                price = self.prices[index]
                lines.append((self.skus[index], qty, price, (qty * price) // 10 if r.random() < 0.1 else 0))
            total = sum(line_amount_cents(q, p, d) for _, q, p, d in lines)
            n = order_id - self.first_id
            out.append(_HistoricOrder(order_id, lo + int(r.random() * (hi - lo + 1)), state,
                                      int(self.span_s * n / max(self.count, 1)), lines, total))
        self.next_id = end
        return out


def bulk_load(urls: Mapping[str, str], orders: int, seed: int = 0, *, customers: int | None = None,
              catalog_size: int = 5000, progress: bool = True) -> BulkLoadReport:
    """Load `orders` historical orders (with lines, payments, refunds, fulfilments, reservations),
    `customers` customers (default orders/4, at least 10) with addresses, and the catalog with stock.

    For snapshot tests and benchmarks, e.g. `bulk_load(urls, 1_000_000, seed=1)`. Orders spread over
    the past year: most shipped, some refunded, cancelled or still in progress. PostgreSQL tables are
    loaded in one transaction per service; MariaDB commits per chunk. Operational warning: every row
    is WAL/binlog-logged (1M orders is ~4 GB in the orders database, the terms text is stored per
    order), and a connector's initial snapshot of that takes a while.
    """
    if orders < 0:
        raise ValueError("orders must be >= 0")
    n_customers = customers if customers is not None else max(10, orders // 4)
    report = BulkLoadReport(seed=seed)
    rng = random.Random(seed)
    started = time.perf_counter()
    clock = _Clock(datetime.now(UTC) - timedelta(days=365))
    span_s = 364 * 86400.0
    say = _say if progress else (lambda _msg: None)
    with Estate.connect(dict(urls)) as estate:
        report.rows["catalog_items"] = ensure_catalog(estate.warehouse, catalog_size)
        first_customer = _next_id(estate.customers, "customers")
        say(f"{n_customers:,} customers")
        report.rows.update(_load_customers(estate, rng, first_customer, n_customers, clock, span_s))
        history = _OrderHistory(rng, orders, _next_id(estate.orders, "orders"),
                                (first_customer, first_customer + max(n_customers, 1) - 1), catalog_size, span_s)
        report.rows.update(_load_orders(estate, history, clock, say))
    report.elapsed_s = time.perf_counter() - started
    say(report.summary())
    return report


def _say(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[dim]bulk load:[/dim] {message}")


def _load_customers(estate: Estate, rng: random.Random, first_id: int, count: int, clock: _Clock,
                    span_s: float) -> dict[str, int]:
    conn = estate.customers
    r = random.Random(rng.getrandbits(64))
    people: list[tuple] = []
    pending: list[tuple] = []
    addresses: list[tuple] = []
    for n in range(count):
        cid = first_id + n
        person = fake.person(r, cid, domain="historic.example.com")
        signup_s = span_s * n / max(count, 1)
        status = CustomerStatus.PENDING if r.random() < 0.05 else CustomerStatus.VERIFIED
        signup = clock.tz(signup_s)
        verified = None if status == CustomerStatus.PENDING else clock.tz(signup_s + r.uniform(60, 86400))
        people.append((cid, person.email, person.display_name, person.country_iso, status.value,
                       fake.fake_password_hash(r), person.marketing_segment, signup, verified, verified or signup))
        addresses.append((cid, "S", person.line1, person.city, person.postcode, person.country_iso, signup))
        if status == CustomerStatus.PENDING:
            pending.append((cid, f"{r.getrandbits(128):032x}", clock.tz(signup_s + 7 * 86400)))
    with conn.transaction():
        rows = {"customers": _copy_rows(conn, "customers", (
            "id", "email_address", "display_name", "country_iso", "status_code", "password_hash",
            "marketing_segment", "signup_ts", "verified_ts", "modified_ts"), people)}
        rows["addresses"] = _copy_rows(conn, "addresses", (
            "customer_id", "kind", "line1", "city", "postcode", "country_iso", "created_ts"), addresses)
        rows["pending_enrollments"] = _copy_rows(conn, "pending_enrollments", (
            "customer_id", "verification_token", "expires_ts"), pending)
        _sync_sequence(conn, "customers")
        _sync_sequence(conn, "addresses")
    return rows


_PAYMENT_STATE = {
    OrderState.PLACED: PaymentState.AUTHORISED,
    OrderState.PAID: PaymentState.CAPTURED,
    OrderState.PACKED: PaymentState.CAPTURED,
    OrderState.SHIPPED: PaymentState.CAPTURED,
    OrderState.REFUNDED: PaymentState.REFUNDED,
    OrderState.CANCELLED: PaymentState.VOIDED,
}
_FULFILMENT_STAGE = {OrderState.PACKED: FulfilmentStage.PACKED, OrderState.SHIPPED: FulfilmentStage.SHIPPED,
                     OrderState.REFUNDED: FulfilmentStage.SHIPPED}
_HOLD = {OrderState.PAID: ReservationState.HELD, OrderState.PACKED: ReservationState.HELD,
         OrderState.SHIPPED: ReservationState.CONSUMED, OrderState.REFUNDED: ReservationState.CONSUMED}
_ORDER_COLUMNS = ("id", "customer_ref", "state_code", "total_cents", "currency_iso", "created_ts", "modified_ts",
                  "fraud_score", "internal_note", "terms_snapshot", "metadata")
_LINE_COLUMNS = ("order_id", "line_no", "sku", "qty", "unit_price_cents", "discount_cents")
_PAYMENT_COLUMNS = ("id", "order_ref", "state_code", "amount_cents", "currency_iso", "refunded_cents", "card_token",
                    "processor_response", "authorised_ts", "captured_ts", "modified_ts")
_REFUND_COLUMNS = ("id", "payment_id", "amount_cents", "reason_code", "processor_response", "created_ts")
_CHUNK = 20_000


def _wait(futures: list[Future]) -> None:
    for future in futures:
        future.result()


def _write_orders(estate: Estate, orders: list[str], lines: list[str], rows: dict[str, int]) -> None:
    rows["orders"] += _copy_lines(estate.orders, "orders", _ORDER_COLUMNS, orders)
    rows["order_lines"] += _copy_lines(estate.orders, "order_lines", _LINE_COLUMNS, lines)


def _write_payments(estate: Estate, payments: list[str], refunds: list[str], rows: dict[str, int]) -> None:
    rows["payments"] += _copy_lines(estate.payments, "payments", _PAYMENT_COLUMNS, payments)
    rows["refunds"] += _copy_lines(estate.payments, "refunds", _REFUND_COLUMNS, refunds)


def _write_warehouse(estate: Estate, cur, fulfilments: list[str], holds: list[str], rows: dict[str, int]) -> None:
    rows["fulfilments"] += _insert_values(
        cur, "fulfilments", "order_ref, stage_code, carrier_code, tracking_ref, picker_id, picked_on,"
        " packed_on, shipped_on, modified_on", fulfilments)
    rows["reservations"] += _insert_values(
        cur, "reservations", "order_ref, sku, site_code, qty, hold_state, created_on, modified_on", holds)
    estate.warehouse.commit()


def _load_orders(estate: Estate, history: _OrderHistory, clock: _Clock, say) -> dict[str, int]:
    """Orders with lines (orders DB), their payments and refunds (payments DB), fulfilments and
    reservations (warehouse DB): one pass over the generated history, chunk by chunk."""
    terms = {v: _copy_text(fake.terms_snapshot(v)) for v in fake.TERMS_VERSIONS}
    channels = [json.dumps({"channel": c}) for c in fake.CHANNELS]
    response = json.dumps({"psp": "adyen-sim", "result": "Authorised", "card": {"brand": "visa", "last4": "4242"}})
    rows = dict.fromkeys(("orders", "order_lines", "payments", "refunds", "fulfilments", "reservations"), 0)
    next_payment = _next_id(estate.payments, "payments")
    next_refund = _next_id(estate.payments, "refunds")
    wh = estate.warehouse.cursor()
    writing: list[Future] = []
    # the three databases load in parallel with the generation of the next chunk
    with ThreadPoolExecutor(3, thread_name_prefix="bulk-load") as pool, \
            estate.orders.transaction(), estate.payments.transaction():
        while True:
            chunk = history.chunk(_CHUNK)
            if not chunk:
                break
            orders, lines, payments, refunds, fulfilments, holds = [], [], [], [], [], []
            for o in chunk:
                oid, created = o.order_id, o.created_s
                version = fake.TERMS_VERSIONS[min(created * 3 // (365 * 86400), 2)]
                orders.append(f"{oid}\t{o.customer_id}\t{int(o.state)}\t{o.total}\t{CURRENCY}\t{clock.tz(created)}\t"
                              f"{clock.tz(created + 172800)}\t0.{(oid * 7919) % 10000:04d}\t\\N\t{terms[version]}\t"
                              f"{channels[oid % len(channels)]}\n")
                for n, (sku, qty, price, discount) in enumerate(o.lines, start=1):
                    lines.append(f"{oid}\t{n}\t{sku}\t{qty}\t{price}\t{discount}\n")
                pay_state = _PAYMENT_STATE[o.state]
                refunded = o.total if o.state == OrderState.REFUNDED else 0
                captured = "\\N" if pay_state in (PaymentState.AUTHORISED, PaymentState.VOIDED) else clock.tz(created + 3600)
                payments.append(f"{next_payment}\t{oid}\t{int(pay_state)}\t{o.total}\t{CURRENCY}\t{refunded}\t"
                                f"tok_{(oid * 2654435761) % (1 << 64):016x}\t{response}\t{clock.tz(created + 5)}\t"
                                f"{captured}\t{clock.tz(created + 172800)}\n")
                if refunded:
                    refunds.append(f"{next_refund}\t{next_payment}\t{refunded}\treturn\t\\N\t{clock.tz(created + 172800)}\n")
                    next_refund += 1
                next_payment += 1
                hold = _HOLD.get(o.state)
                if hold is not None:
                    at = clock.text(created + 3700)
                    site = SITES[oid % len(SITES)]
                    holds.extend(f"({oid},'{sku}','{site}',{qty},'{hold.value}','{at}','{at}')"
                                 for sku, qty, _, _ in o.lines)
                stage = _FULFILMENT_STAGE.get(o.state)
                if stage is not None:
                    packed = f"'{clock.text(created + 9000)}'"
                    if stage == FulfilmentStage.SHIPPED:
                        carrier = CARRIERS[oid % len(CARRIERS)]
                        shipped = f"'{clock.text(created + 86400)}'"
                        tail = f"'{carrier}','{carrier[:2].upper()}{oid:012d}'"
                    else:
                        shipped, tail = "NULL", "NULL,NULL"
                    fulfilments.append(f"({oid},{int(stage)},{tail},{100 + oid % 60},'{clock.text(created + 7200)}',"
                                       f"{packed},{shipped},{shipped if stage == FulfilmentStage.SHIPPED else packed})")
            _wait(writing)  # the previous chunk is in; each connection is free again
            writing = [
                pool.submit(_write_orders, estate, orders, lines, rows),
                pool.submit(_write_payments, estate, payments, refunds, rows),
                pool.submit(_write_warehouse, estate, wh, fulfilments, holds, rows),
            ]
            if (chunk[-1].order_id - history.first_id + 1) % 200_000 < _CHUNK:
                say(f"{chunk[-1].order_id - history.first_id + 1:,} orders")
        _wait(writing)
        for conn, table in ((estate.orders, "orders"), (estate.payments, "payments"), (estate.payments, "refunds")):
            _sync_sequence(conn, table)
    # held reservations are what bin_stock.qty_allocated counts (bins carry no reservations otherwise)
    wh.execute("UPDATE bin_stock b JOIN (SELECT sku, site_code, SUM(qty) AS held FROM reservations"
               " WHERE hold_state = %s GROUP BY sku, site_code) r ON r.sku = b.sku AND r.site_code = b.site_code"
               " SET b.qty_allocated = r.held, b.qty_on_hand = GREATEST(b.qty_on_hand, r.held)",
               (ReservationState.HELD.value,))
    estate.warehouse.commit()
    wh.close()
    return rows
