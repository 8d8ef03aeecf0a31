"""What happens next in the shop: a deterministic stream of business operations for a seed.

Pure: the planner keeps its own model of the customers and orders it created (which stage each
order is in, what was paid and refunded, catalog prices) and never looks at a database, so the
same seed always yields the same sequence of `Operation`s. Entities are named by run-local
references (the n-th customer or order of this run); the simulator maps them to database ids.

Each step picks a flow at random, weighted by `mix`, among the flows that have something to act
on (no capture without an authorised payment), then draws that flow's arguments.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from estate import fake
from estate.domain import CARRIERS, SITES, OrderLine, line_amount_cents, partial_refund_cents


class Flow(StrEnum):
    REGISTER_CUSTOMER = "register_customer"
    VERIFY_CUSTOMER = "verify_customer"
    PLACE_ORDER = "place_order"
    AUTHORISE_PAYMENT = "authorise_payment"
    CAPTURE_PAYMENT = "capture_payment"
    RESERVE_STOCK = "reserve_stock"
    PICK = "pick"
    PACK = "pack"
    SHIP = "ship"
    REFUND_PAYMENT = "refund_payment"
    CANCEL_ORDER = "cancel_order"
    CHANGE_PRICE = "change_price"
    ADJUST_STOCK = "adjust_stock"
    ERASE_CUSTOMER = "erase_customer"


# Relative weights. The order pipeline's later stages weigh slightly more than placing orders, so
# in-flight orders stay few (their pools drain), yet every stage always has some.
DEFAULT_MIX: dict[Flow, float] = {
    Flow.REGISTER_CUSTOMER: 3.0,
    Flow.VERIFY_CUSTOMER: 2.7,
    Flow.PLACE_ORDER: 10.0,
    Flow.AUTHORISE_PAYMENT: 10.5,
    Flow.CAPTURE_PAYMENT: 10.5,
    Flow.RESERVE_STOCK: 10.5,
    Flow.PICK: 10.5,
    Flow.PACK: 10.5,
    Flow.SHIP: 10.5,
    Flow.REFUND_PAYMENT: 0.6,
    Flow.CANCEL_ORDER: 0.4,
    Flow.CHANGE_PRICE: 1.0,
    Flow.ADJUST_STOCK: 2.0,
    Flow.ERASE_CUSTOMER: 0.1,
}

DECLINE_RATE = 0.02  # card authorisations the PSP declines (the order waits for another attempt)
ACTIVE_CUSTOMERS_CAP = 100_000  # beyond this the longest-known customers go quiet
PENDING_CAP = 10_000  # enrolments nobody ever confirms are abandoned
REFUND_WINDOW = 10_000  # shipped orders that may still be refunded
IN_FLIGHT_CAP = 50_000  # orders stuck at one stage longer than this are abandoned


@dataclass(frozen=True)
class Operation:
    """One business operation: a flow and its arguments (run-local references and plain values)."""

    seq: int
    flow: Flow
    args: tuple[Any, ...]


class Pool:
    """Entities waiting at one stage: O(1) add and O(1) random take (order is not preserved)."""

    def __init__(self, cap: int) -> None:
        self.items: list[int] = []
        self.cap = cap

    def __len__(self) -> int:
        return len(self.items)

    def add(self, ref: int) -> int | None:
        """Add `ref`; returns the entity dropped to respect the cap, if any."""
        self.items.append(ref)
        if len(self.items) > self.cap:
            dropped = self.items[0]
            self.items[0] = self.items[-1]
            self.items.pop()
            return dropped
        return None

    def take(self, rng: random.Random) -> int:
        i = rng.randrange(len(self.items))
        ref = self.items[i]
        self.items[i] = self.items[-1]
        self.items.pop()
        return ref

    def peek(self, rng: random.Random) -> int:
        return self.items[rng.randrange(len(self.items))]


@dataclass
class _Order:
    customer: int
    items: tuple[tuple[str, int], ...]
    total_cents: int
    refunded_cents: int = 0


# Order stages, in pipeline order; the flow that moves an order out of each stage.
_STAGES = (
    (Flow.AUTHORISE_PAYMENT, "placed"),
    (Flow.CAPTURE_PAYMENT, "authorised"),
    (Flow.RESERVE_STOCK, "paid"),
    (Flow.PICK, "reserved"),
    (Flow.PACK, "picking"),
    (Flow.SHIP, "packed"),
)
_NEXT_STAGE = {"placed": "authorised", "authorised": "paid", "paid": "reserved", "reserved": "picking",
               "picking": "packed", "packed": "shipped"}


@dataclass
class Planner:
    """The deterministic model of the shop. `next()` returns the next operation."""

    seed: int | str
    catalog_size: int = 2000
    mix: Mapping[Flow, float] = field(default_factory=lambda: dict(DEFAULT_MIX))

    def __post_init__(self) -> None:
        if self.catalog_size < 4:
            raise ValueError("catalog_size must be at least 4 (orders have up to 4 distinct SKUs)")
        unknown = set(self.mix) - set(Flow)
        if unknown:
            raise ValueError(f"unknown flows in mix: {sorted(map(str, unknown))}")
        self.rng = random.Random(self.seed)
        self.seq = 0
        self.customer_serial = 0
        self.order_serial = 0
        self.pending = Pool(PENDING_CAP)
        self.active = Pool(ACTIVE_CUSTOMERS_CAP)
        self.stages = {name: Pool(IN_FLIGHT_CAP) for _, name in _STAGES}
        self.shipped = Pool(REFUND_WINDOW)
        self.orders: dict[int, _Order] = {}
        self.prices: dict[int, int] = {}

    # ------------------------------------------------------------------ choice of flow

    def eligible(self) -> list[Flow]:
        """Flows that have something to act on now, in a fixed order."""
        ready = {
            Flow.REGISTER_CUSTOMER: True,
            Flow.VERIFY_CUSTOMER: len(self.pending) > 0,
            Flow.PLACE_ORDER: len(self.active) > 0,
            Flow.REFUND_PAYMENT: len(self.shipped) > 0,
            Flow.CANCEL_ORDER: any(len(p) for p in self.stages.values()),
            Flow.CHANGE_PRICE: True,
            Flow.ADJUST_STOCK: True,
            Flow.ERASE_CUSTOMER: len(self.active) + len(self.pending) > 0,
        }
        for flow, stage in _STAGES:
            ready[flow] = len(self.stages[stage]) > 0
        return [f for f in Flow if ready[f] and self.mix.get(f, 0) > 0]

    def choose_flow(self) -> Flow:
        flows = self.eligible()
        return self.rng.choices(flows, weights=[self.mix[f] for f in flows])[0]

    def __iter__(self) -> Iterator[Operation]:
        while True:
            yield self.next()

    def next(self) -> Operation:
        flow = self.choose_flow()
        args = getattr(self, f"_{flow.value}")()
        self.seq += 1
        return Operation(self.seq, flow, args)

    # ------------------------------------------------------------------ helpers

    def price_of(self, index: int) -> int:
        if index not in self.prices:
            self.prices[index] = fake.catalog_item(index).price_cents
        return self.prices[index]

    def _popular_sku_indexes(self, count: int) -> list[int]:
        """`count` distinct catalog indexes, skewed towards the best sellers (low indexes)."""
        chosen: list[int] = []
        while len(chosen) < count:
            index = int(self.catalog_size * self.rng.random() ** 2)
            if index not in chosen:
                chosen.append(index)
        return chosen

    def _put(self, pool: Pool, ref: int) -> None:
        """Put an order in a stage's pool; an order pushed out by the cap is forgotten."""
        dropped = pool.add(ref)
        if dropped is not None:
            self.orders.pop(dropped, None)

    def _advance(self, stage: str) -> int:
        ref = self.stages[stage].take(self.rng)
        nxt = _NEXT_STAGE[stage]
        self._put(self.shipped if nxt == "shipped" else self.stages[nxt], ref)
        return ref

    # ------------------------------------------------------------------ flows (arguments)

    def _register_customer(self) -> tuple:
        self.customer_serial += 1
        ref = self.customer_serial
        person = fake.person(self.rng, ref)
        self.pending.add(ref)
        return (ref, person, fake.fake_password_hash(self.rng), f"{self.rng.getrandbits(128):032x}")

    def _verify_customer(self) -> tuple:
        ref = self.pending.take(self.rng)
        self.active.add(ref)
        return (ref,)

    def _erase_customer(self) -> tuple:
        if len(self.pending) and (not len(self.active) or self.rng.random() < 0.3):
            return (self.pending.take(self.rng),)
        return (self.active.take(self.rng),)

    def _place_order(self) -> tuple:
        customer = self.active.peek(self.rng)
        self.order_serial += 1
        ref = self.order_serial
        n_lines = self.rng.choices((1, 2, 3, 4), weights=(50, 30, 15, 5))[0]
        lines = []
        for index in self._popular_sku_indexes(n_lines):
            qty = self.rng.choices((1, 2, 3), weights=(80, 15, 5))[0]
            price = self.price_of(index)
            discount = (qty * price) // 10 if self.rng.random() < 0.1 else 0
            lines.append(OrderLine(fake.sku(index), qty, price, discount))
        total = sum(line_amount_cents(x.qty, x.unit_price_cents, x.discount_cents) for x in lines)
        channel = self.rng.choice(fake.CHANNELS)
        metadata: dict[str, Any] = {"channel": channel}
        if self.rng.random() < 0.3:
            metadata["utm"] = {"source": self.rng.choice(("newsletter", "instagram", "google")),
                               "campaign": f"drop-{self.rng.randint(1, 40)}"}
        terms_version = fake.TERMS_VERSIONS[-1] if self.rng.random() < 0.9 else fake.TERMS_VERSIONS[-2]
        fraud_score = round(self.rng.random() ** 4, 4)
        note = "customer asked for gift wrapping" if self.rng.random() < 0.02 else None
        self.orders[ref] = _Order(customer, tuple((x.sku, x.qty) for x in lines), total)
        self._put(self.stages["placed"], ref)
        return (ref, customer, tuple(lines), metadata, terms_version, fraud_score, note)

    def _authorise_payment(self) -> tuple:
        pool = self.stages["placed"]
        ref = pool.take(self.rng)
        declined = self.rng.random() < DECLINE_RATE
        self._put(pool if declined else self.stages["authorised"], ref)  # declined: another card later
        return (ref, self.orders[ref].total_cents, fake.fake_card_token(self.rng),
                f"{self.rng.randrange(10**6):06d}", declined)

    def _capture_payment(self) -> tuple:
        ref = self._advance("authorised")
        return (ref, f"cp-{self.rng.getrandbits(48):012x}")

    def _reserve_stock(self) -> tuple:
        ref = self._advance("paid")
        return (ref, self.orders[ref].items)

    def _pick(self) -> tuple:
        ref = self._advance("reserved")
        return (ref, self.rng.randint(100, 160))

    def _pack(self) -> tuple:
        return (self._advance("picking"),)

    def _ship(self) -> tuple:
        ref = self._advance("packed")
        carrier = self.rng.choice(CARRIERS)
        return (ref, carrier, f"{carrier[:2].upper()}{self.rng.randrange(10**12):012d}")

    def _refund_payment(self) -> tuple:
        ref = self.shipped.take(self.rng)
        order = self.orders[ref]
        remaining = order.total_cents - order.refunded_cents
        if self.rng.random() < 0.5 or remaining <= 1:
            amount, full = remaining, True
        else:
            amount = partial_refund_cents(remaining, self.rng.uniform(0.1, 0.6))
            full = amount == remaining
        order.refunded_cents += amount
        if full:
            self.orders.pop(ref)
        else:
            self._put(self.shipped, ref)
        return (ref, amount, full)

    def _cancel_order(self) -> tuple:
        stages = [name for _, name in _STAGES if len(self.stages[name])]
        stage = self.rng.choices(stages, weights=[len(self.stages[s]) for s in stages])[0]
        ref = self.stages[stage].take(self.rng)
        self.orders.pop(ref, None)
        return (ref,)

    def _change_price(self) -> tuple:
        index = self.rng.randrange(self.catalog_size)
        new_price = max(99, round(self.price_of(index) * self.rng.uniform(0.85, 1.15), -2) - 1)
        self.prices[index] = int(new_price)
        return (fake.sku(index), int(new_price))

    def _adjust_stock(self) -> tuple:
        index = int(self.catalog_size * self.rng.random() ** 2)
        site = self.rng.choice(SITES)
        roll = self.rng.random()
        if roll < 0.8:
            delta = self.rng.randint(20, 200)  # a delivery
        elif roll < 0.95:
            delta = -self.rng.randint(1, 10)  # damaged or lost units written off
        else:
            delta = -1_000_000  # the bin is cleared out (and retired if nothing is reserved)
        return (fake.sku(index), site, delta)


def operation_line(op: Operation) -> bytes:
    """The canonical text of an operation, as hashed into a run's digest."""
    return f"{op.seq}|{op.flow.value}|{op.args!r}\n".encode()


def operations_digest(operations: Iterable[Operation]) -> str:
    """sha256 over the operations' canonical lines: what `SimulationReport.digest` is for one worker."""
    digest = hashlib.sha256()
    for op in operations:
        digest.update(operation_line(op))
    return digest.hexdigest()


def plan(seed: int | str, operations: int, catalog_size: int = 2000) -> list[Operation]:
    """The first `operations` operations for `seed` (what `simulator.run` would execute)."""
    planner = Planner(seed, catalog_size)
    return [planner.next() for _ in range(operations)]
