"""The traffic simulator: drives MusicCorp's business flows against the four service databases.

`run(urls, rate, duration, seed)` executes the planner's deterministic stream of operations
(`estate.planner`), each as the owning services would run it (`estate.flows`: one transaction per
service touched), paced to `rate` operations per second, with a live progress display.
`benchmark(urls, duration)` runs flat out and returns the achieved operations per second.
`bulk_load` (re-exported from `estate.bulk`) fills the databases fast for snapshot tests.

The hot path uses one plain DB-API connection per service (psycopg 3 with prepared statements,
PyMySQL), no ORM and no pool.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import psycopg
import pymysql

from estate import fake, flows
from estate.bulk import BulkLoadReport, bulk_load, ensure_catalog
from estate.db import Estate
from estate.planner import Flow, Operation, Planner, operation_line

__all__ = ["BulkLoadReport", "SimulationReport", "benchmark", "bulk_load", "run"]

_MAPPING_CAP = 1_000_000  # run-local reference → database id; the oldest are forgotten beyond this


@dataclass
class SimulationReport:
    """What a simulation did: operations per flow, errors, throughput and a digest of the operations."""

    seed: int
    target_rate: float
    elapsed_s: float = 0.0
    operations: int = 0
    per_flow: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    digest: str = ""
    """sha256 over the sequence of operations (flow and arguments): equal for equal seeds."""
    interrupted: bool = False

    @property
    def ops_per_second(self) -> float:
        return self.operations / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> str:
        flows_text = ", ".join(f"{k}={v}" for k, v in sorted(self.per_flow.items()))
        return (f"{self.operations} operations in {self.elapsed_s:.1f}s = {self.ops_per_second:,.0f} ops/s "
                f"(seed {self.seed}, errors {sum(self.errors.values())}); {flows_text}")

    __str__ = summary


class _Ids(dict):
    """A dict that forgets its oldest entries past a cap (run-local refs → database ids)."""

    def remember(self, ref: int, db_id: int) -> None:
        self[ref] = db_id
        if len(self) > _MAPPING_CAP:
            for old in list(itertools.islice(self, _MAPPING_CAP // 10)):
                del self[old]


class _UnknownEntity(LookupError):
    """The operation refers to an entity this run never managed to create (an earlier error)."""


class Executor:
    """Runs planner operations against real databases, mapping run-local references to ids."""

    def __init__(self, estate: Estate, email_tag: str = "") -> None:
        self.db = estate
        self.email_tag = email_tag
        self.customers = _Ids()
        self.orders = _Ids()
        self.payments = _Ids()  # order ref → its live payment id
        self.terms = {version: fake.terms_snapshot(version) for version in fake.TERMS_VERSIONS}
        self.handlers: dict[Flow, Callable[..., object]] = {
            flow: getattr(self, f"_{flow.value}") for flow in Flow
        }

    def execute(self, op: Operation) -> object:
        return self.handlers[op.flow](*op.args)

    @staticmethod
    def _id(ids: dict[int, int], ref: int) -> int:
        try:
            return ids[ref]
        except KeyError:
            raise _UnknownEntity(ref) from None

    def _forget_order(self, ref: int) -> None:
        self.orders.pop(ref, None)
        self.payments.pop(ref, None)

    # one method per Flow, taking the planner's arguments

    def _register_customer(self, ref, person, password_hash, token):
        if self.email_tag:  # another run of this seed may already have used the planned address
            local, _, domain = person.email.partition("@")
            person = dataclasses.replace(person, email=f"{local}+{self.email_tag}@{domain}")
        self.customers.remember(ref, flows.register_customer(
            self.db.customers, person, password_hash=password_hash, verification_token=token))

    def _verify_customer(self, ref):
        return flows.verify_customer(self.db.customers, self._id(self.customers, ref))

    def _erase_customer(self, ref):
        return flows.erase_customer(self.db.customers, self._id(self.customers, ref))

    def _place_order(self, ref, customer_ref, lines, metadata, terms_version, fraud_score, note):
        self.orders.remember(ref, flows.place_order(
            self.db.orders, self._id(self.customers, customer_ref), lines, terms=self.terms[terms_version],
            metadata=metadata, fraud_score=fraud_score, internal_note=note))

    def _authorise_payment(self, ref, amount_cents, card_token, auth_code, declined):
        response = {"psp": "adyen-sim", "result": "Refused" if declined else "Authorised",
                    "auth_code": None if declined else auth_code,
                    "card": {"brand": "visa" if card_token[4] < "8" else "mastercard", "last4": auth_code[-4:]}}
        payment_id = flows.authorise_payment(self.db.payments, self._id(self.orders, ref), amount_cents,
                                             card_token=card_token, processor_response=response, declined=declined)
        if not declined:
            self.payments.remember(ref, payment_id)

    def _capture_payment(self, ref, capture_reference):
        return flows.capture_payment(self.db.payments, self.db.orders, self._id(self.payments, ref),
                                     capture_reference=capture_reference)

    def _reserve_stock(self, ref, items):
        return flows.reserve_stock(self.db.warehouse, self._id(self.orders, ref), items)

    def _pick(self, ref, picker_id):
        return flows.pick(self.db.warehouse, self._id(self.orders, ref), picker_id=picker_id)

    def _pack(self, ref):
        return flows.pack(self.db.warehouse, self.db.orders, self._id(self.orders, ref))

    def _ship(self, ref, carrier, tracking_number):
        return flows.ship(self.db.warehouse, self.db.orders, self._id(self.orders, ref), carrier=carrier,
                          tracking_number=tracking_number)

    def _refund_payment(self, ref, amount_cents, full):
        outcome = flows.refund_payment(self.db.payments, self.db.orders, self._id(self.payments, ref),
                                       None if full else amount_cents, reason="return")
        if full:
            self._forget_order(ref)
        return outcome

    def _cancel_order(self, ref):
        try:
            return flows.cancel_order(self.db.warehouse, self.db.payments, self.db.orders, self._id(self.orders, ref))
        finally:
            self._forget_order(ref)

    def _change_price(self, sku, price_cents):
        return flows.change_price(self.db.warehouse, sku, price_cents)

    def _adjust_stock(self, sku, site, delta):
        return flows.adjust_stock(self.db.warehouse, sku, site, delta)


class _Display:
    """Live progress: overall and per-flow operations per second (last few seconds), totals, errors."""

    WINDOW_S = 3.0

    def __init__(self, report: SimulationReport, duration: float) -> None:
        from rich.console import Console
        from rich.live import Live

        self.report = report
        self.duration = duration
        self.samples: deque[tuple[float, int, Counter]] = deque()
        self.live = Live(console=Console(stderr=True), auto_refresh=False, transient=False)
        self.next_refresh = 0.0

    def __enter__(self) -> _Display:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.refresh(time.perf_counter(), force=True)
        self.live.__exit__(*exc)
        if not self.live.console.is_terminal:  # off a terminal rich leaves the last line of the table open
            self.live.console.line()

    def refresh(self, now: float, force: bool = False) -> None:
        if not force and now < self.next_refresh:
            return
        self.next_refresh = now + 0.25
        from rich.table import Table

        per_flow = Counter(self.report.per_flow)
        self.samples.append((now, self.report.operations, per_flow))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.WINDOW_S:
            self.samples.popleft()
        t0, ops0, flows0 = self.samples[0]
        span = max(now - t0, 1e-9)
        r = self.report
        table = Table(title=f"MusicCorp simulator  seed={r.seed}  target={_rate_text(r.target_rate)}  "
                            f"{r.elapsed_s:,.0f}/{self.duration:,.0f}s", title_justify="left")
        table.add_column("flow", overflow="fold")  # never cut a value (80 columns, a pipe)
        table.add_column("ops/s", justify="right", overflow="fold")
        table.add_column("total", justify="right", overflow="fold")
        table.add_column("errors", justify="right", overflow="fold")
        for flow in Flow:
            name = flow.value
            rate = (per_flow[name] - flows0[name]) / span if len(self.samples) > 1 else 0.0
            table.add_row(name, f"{rate:,.0f}", f"{per_flow[name]:,}", str(r.errors.get(name, 0) or ""))
        overall = (r.operations - ops0) / span if len(self.samples) > 1 else 0.0
        table.add_row("[bold]all", f"[bold]{overall:,.0f}", f"[bold]{r.operations:,}",
                      str(sum(r.errors.values()) or ""))
        self.live.update(table, refresh=True)


def _rate_text(rate: float) -> str:
    return "unlimited" if rate <= 0 else f"{rate:,.0f} ops/s"


_MARIADB_RETRYABLE = (1205, 1213)  # lock wait timeout, deadlock: the whole flow is retried


class _Worker(threading.Thread):
    """One simulated stream of shoppers: its own planner, connections and pacing."""

    def __init__(self, index: int, urls: Mapping[str, str], seed: int | str, rate: float, until: float,
                 max_operations: float, catalog_size: int, max_errors: int, stop: threading.Event,
                 email_tag: str) -> None:
        super().__init__(name=f"estate-simulator-{index}", daemon=True)
        self.email_tag = email_tag
        self.urls, self.rate, self.until, self.max_operations = urls, rate, until, max_operations
        self.max_errors, self.stop = max_errors, stop
        self.planner = Planner(seed, catalog_size)
        self.per_flow: Counter = Counter()
        self.errors: Counter = Counter()
        self.operations = 0
        self.skipped = 0
        self.digest = hashlib.sha256()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            with Estate.connect(dict(self.urls)) as estate:
                self._loop(Executor(estate, self.email_tag), estate)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.failure = exc
            self.stop.set()

    def _loop(self, executor: Executor, estate: Estate) -> None:
        interval = 1.0 / self.rate if self.rate > 0 else 0.0
        scheduled = time.perf_counter()
        while self.operations < self.max_operations and not self.stop.is_set():
            now = time.perf_counter()
            if now >= self.until:
                break
            if interval:
                if scheduled > now:
                    time.sleep(scheduled - now)
                elif now - scheduled > 1.0:  # fell behind by more than a second: do not burst
                    scheduled = now
                scheduled += interval
            op = self.planner.next()
            self.digest.update(operation_line(op))
            try:
                self._execute(executor, op)
            except _UnknownEntity:
                self.skipped += 1
            except (psycopg.Error, pymysql.Error, ValueError) as exc:
                self.errors[op.flow.value] += 1
                if sum(self.errors.values()) >= self.max_errors or _broken(estate):
                    raise RuntimeError(f"simulator stopped at operation {op.seq} ({op.flow.value}): "
                                       f"{type(exc).__name__}: {exc}") from exc
            self.per_flow[op.flow.value] += 1
            self.operations += 1

    @staticmethod
    def _execute(executor: Executor, op: Operation) -> None:
        for attempt in range(3):
            try:
                executor.execute(op)
                return
            except pymysql.err.OperationalError as exc:
                # every flow's MariaDB transaction comes first, so a retry never repeats another service's tx
                if exc.args[0] not in _MARIADB_RETRYABLE or attempt == 2:
                    raise


def run(urls: Mapping[str, str], rate: float = 1000.0, duration: float = 60.0, seed: int = 0,
        progress: bool = True, *, operations: int | None = None, workers: int = 1, catalog_size: int = 2000,
        max_errors: int = 1000) -> SimulationReport:
    """Drive the estate's flows for `duration` seconds (or `operations` operations) at `rate` ops/s.

    `urls` maps each service (customers, orders, payments, warehouse) to a SQLAlchemy URL; the
    private schemas must exist (`estate.services.create_all`). `rate <= 0` means as fast as
    possible. With one worker (the default) the same `seed` yields the same sequence of operations
    (`SimulationReport.digest`); database ids and timestamps differ between runs. `workers > 1` runs
    that many independent shopper streams, each with its own connections, deterministic per
    worker (worker 0 uses `seed` itself), sharing `rate` and `operations` equally; they only meet
    on catalog stock, where a MariaDB deadlock is retried. The catalog (`catalog_size` SKUs with
    stock at every site) is created first if missing. Ctrl-C stops the run and returns the report.
    """
    if duration <= 0 and operations is None:
        raise ValueError("give a positive duration or a number of operations")
    if workers < 1:
        raise ValueError("workers must be >= 1")
    missing = {"customers", "orders", "payments", "warehouse"} - set(urls)
    if missing:
        raise ValueError(f"simulator: no URL for {', '.join(sorted(missing))}")
    report = SimulationReport(seed=seed, target_rate=rate)
    with Estate.connect(dict(urls)) as estate:
        ensure_catalog(estate.warehouse, catalog_size)
        known_customers = estate.customers.execute("SELECT COALESCE(max(id), 0) FROM customers").fetchone()[0]
    stop = threading.Event()
    start = time.perf_counter()
    until = start + duration if duration > 0 else float("inf")
    pool = []
    for i in range(workers):
        share = float("inf") if operations is None else operations // workers + (1 if i < operations % workers else 0)
        pool.append(_Worker(i, urls, seed if i == 0 else f"{seed}:{i}", rate / workers if rate > 0 else 0,
                            until, share, catalog_size, max_errors, stop,
                            _email_tag(known_customers, i)))
    display = _Display(report, duration) if progress else None

    def collect() -> None:
        report.elapsed_s = time.perf_counter() - start
        report.operations = sum(w.operations for w in pool)
        report.skipped = sum(w.skipped for w in pool)
        report.per_flow = dict(sum((w.per_flow for w in pool), Counter()))
        report.errors = dict(sum((w.errors for w in pool), Counter()))

    try:
        if display:
            display.__enter__()
        for w in pool:
            w.start()
        while any(w.is_alive() for w in pool):
            for w in pool:
                w.join(timeout=0.25)
                if display:
                    collect()
                    display.refresh(time.perf_counter())
    except KeyboardInterrupt:
        report.interrupted = True
        stop.set()
        for w in pool:
            w.join()
    finally:
        collect()
        if display:
            display.__exit__(None, None, None)
    combined = hashlib.sha256()
    for w in pool:
        combined.update(w.digest.digest())
    report.digest = combined.hexdigest() if workers > 1 else pool[0].digest.hexdigest()
    failures = [w.failure for w in pool if w.failure is not None]
    if failures:
        raise failures[0]
    return report


def _email_tag(known_customers: int, worker: int) -> str:
    """Keeps planned e-mail addresses unique: empty on a fresh estate's first worker (addresses exactly
    as planned), else derived from the customers already there and the worker number."""
    parts = ([f"r{known_customers}"] if known_customers else []) + ([f"w{worker}"] if worker else [])
    return "".join(parts)


def _broken(estate: Estate) -> bool:
    """True when a connection is gone (then going on would only pile up errors)."""
    return any(c.closed for c in (estate.customers, estate.orders, estate.payments)) or not estate.warehouse.open


def benchmark(urls: Mapping[str, str], duration: float = 30.0, seed: int = 0, progress: bool = False, *,
              workers: int = 1, catalog_size: int = 2000) -> float:
    """Run the simulator flat out for `duration` seconds and return the achieved operations per second.

    Each operation is one business flow (one transaction per service it touches), so this is the
    figure to compare with the 1,000 ops/s target. Writes real data: use a disposable estate.
    """
    report = run(urls, rate=0, duration=duration, seed=seed, progress=progress, workers=workers,
                 catalog_size=catalog_size)
    return report.ops_per_second
