"""The pipeline worker: poll → plan → apply (rows + dead letters + offsets in one transaction).

Polling and planning run on the caller's thread, applying on an applier thread, so batch N+1 is
fetched and planned while batch N is written (batches are still applied one at a time, in order).
With a `PlannerPool` the planning moves to planner processes (apply/planner_pool.py): the caller's
thread only fetches, and up to one batch per planner is planned while one is applied.

`run(until_caught_up=True)` drains every assigned partition to its end and returns (Dagster runs,
`reporting ingest`); `run()` streams until stopped (`reporting stream`). While streaming, `linger_s`
(the estate's `pipeline.linger_ms`) coalesces polls: a new batch is cut at most once every `linger_s`
(or as soon as `max_records` are waiting), so a steady stream is applied in fewer, larger
transactions (each batch has a fixed cost: a MERGE per touched table, status, offsets, commit) at the
price of up to `linger_s` more latency; a change arriving after a quiet period is applied at once. Transient reporting-DB
errors (classified by exception type and SQLSTATE in apply/retry.py) are retried with
exponential backoff up to `max_retries`; after that the worker stops with
a clear error and nothing is skipped, because the offsets were not advanced.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from pipelines.apply.backend import ApplyBatch, Backend
from pipelines.apply.planner_pool import PendingBatch, PlannerPool
from pipelines.apply.retry import retrying
from pipelines.cdc.events import Record
from pipelines.kafka.stall import STALL_RESTART_S, StallWatch

log = logging.getLogger(__name__)

Planner = Callable[[list[Record]], ApplyBatch]


FAULT_ENV = "REPORTING_FAULT_INJECT"
"""Fault injection for the fault tests only (read by the `reporting` command, an edge):
`<point>:<probability>[,...]` with points `mid_batch` (SIGKILL inside the DB transaction, before
commit) and `after_commit` (SIGKILL after the DB commit, before the advisory Kafka commit). Unset in
normal operation."""


def parse_fault_points(spec: str) -> dict[str, float]:
    points = {}
    for part in filter(None, spec.split(",")):
        name, _, prob = part.partition(":")
        points[name.strip()] = float(prob or 1.0)
    return points


def maybe_crash(point: str, points: dict[str, float]) -> None:
    p = points.get(point)
    if p and random.random() < p:  # noqa: S311 - not crypto
        log.warning("fault injection: SIGKILL at %s", point)
        os.kill(os.getpid(), signal.SIGKILL)


class ApplyFailed(RuntimeError):
    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


@dataclass
class RunStats:
    batches: int = 0
    events: int = 0
    rows: int = 0
    dead_letters: int = 0
    toast_missing: int = 0
    poll_s: float = 0.0  # polling thread: waiting for and decoding records
    plan_s: float = 0.0  # polling thread: decode, project, validate, reduce
    apply_s: float = 0.0  # applier thread: one transaction per batch (overlaps the next poll and plan)
    polls: int = 0  # polls that returned records (several make one batch when lingering)
    consumer_restarts: int = 0  # Kafka consumers opened anew after a stall (kafka/stall.py)
    # CPU seconds by stage (thread CPU time; DuckDB's and the reporting PostgreSQL's own threads and
    # processes are not counted): poll = fetch and record decoding, plan = decode, project, validate,
    # reduce (in-process planning only), apply = the transaction (rows, dead letters, table status,
    # batch log, offsets, commit), status = advisory Kafka commits, lag and status lines, metrics,
    # replica = the DuckDB read replica (the applier's check after each batch and the copy thread)
    poll_cpu: float = 0.0
    plan_cpu: float = 0.0
    apply_cpu: float = 0.0
    status_cpu: float = 0.0
    replica_cpu: float = 0.0
    replica_copy_cpu: float = 0.0  # the replica's copy thread (ReplicaPublisher.cpu_s), sampled
    started: float = field(default_factory=time.monotonic)
    process_cpu0: float = field(default_factory=time.process_time)  # "other": the process's CPU beyond the
    # stages: the Kafka client's IO thread (fetch responses), DuckDB's worker threads, the interpreter
    first_records_at: float | None = None  # monotonic time the first poll returned records
    first_records_wall: float | None = None  # the same moment as epoch seconds

    @property
    def seconds(self) -> float:
        return max(1e-9, time.monotonic() - self.started)

    def line(self, lag: int | None = None) -> str:
        rate = self.events / self.seconds
        lag_s = f", lag {lag:,}" if lag is not None else ""
        return (f"{self.events:,} events in {self.seconds:.1f}s ({rate:,.0f}/s), {self.rows:,} rows applied, "
                f"{self.dead_letters:,} dead letters{lag_s}; {self.cpu_line()}")

    def cpu_line(self) -> str:
        """`N batches, CPU s poll P plan P apply A status S replica R other O` (cumulative; bench/e2e_bench.py
        reads it)."""
        other = max(0.0, time.process_time() - self.process_cpu0 - self.poll_cpu - self.plan_cpu - self.apply_cpu
                    - self.status_cpu - self.replica_cpu - self.replica_copy_cpu)
        return (f"{self.batches:,} batches, CPU s poll {self.poll_cpu:.3f} plan {self.plan_cpu:.3f} "
                f"apply {self.apply_cpu:.3f} status {self.status_cpu:.3f} "
                f"replica {self.replica_cpu + self.replica_copy_cpu:.3f} other {other:.3f}")


def reconnect(backend: Backend) -> None:
    """A new connection before a retried attempt, when the backend has one to renew; a failure is only
    logged (the attempt that follows reports it)."""
    renew = getattr(backend, "reconnect", None)
    if renew:
        try:
            renew()
        except Exception as exc:  # noqa: BLE001 - the next attempt will report it
            log.warning("reconnect failed: %s", exc)


def stored_offsets_reader(backend: Backend, group: str, max_retries: int,
                          **policy) -> Callable[[], dict[tuple[str, int], int]]:
    """The group's stored offsets, read as a partition assignment needs them (consumer.py `_SeekToStored`).

    The read runs inside kafka-python's rebalance callback, where an exception ends the stream ("User
    rebalance callback throws an error"). A reporting DB that is down or restarting is therefore waited
    for as a batch's apply waits for it: transient errors (apply/retry.py) are retried with backoff,
    0.5 s doubling up to 10 s, `max_retries` times, reconnecting before each new attempt; a permanent
    error, or the last transient one, is raised. `policy`: `retrying` options (tests: no sleeping)."""

    def read() -> dict[tuple[str, int], int]:
        attempts = 0

        def attempt() -> dict[tuple[str, int], int]:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                reconnect(backend)
            return backend.stored_offsets(group)

        def on_retry(exc: BaseException, n: int, delay: float) -> None:
            log.warning("reading the stored offsets: transient reporting-DB error (attempt %d/%d), retrying in "
                        "%.1fs: %s", n, max_retries + 1, delay, exc)

        return retrying(max_retries + 1, max_wait_s=10.0, on_retry=on_retry, **policy)(attempt)

    return read


class Worker:
    def __init__(self, backend: Backend, consumer, planner: Planner, group: str,
                 dead_letter_sink: Callable[[ApplyBatch], None] | None = None,
                 max_retries: int = 5, say: Callable[[str], None] = print, status_every: float = 5.0,
                 after_batch: Callable[[bool], None] | None = None, pool: PlannerPool | None = None,
                 faults: dict[str, float] | None = None, metrics=None, linger_s: float = 0.0,
                 max_records: int = 20000, replica_cpu: Callable[[], float] | None = None,
                 clock: Callable[[], float] = time.monotonic, stall_restart_s: float = STALL_RESTART_S) -> None:
        self.backend = backend
        self.stall = StallWatch(stall_restart_s)  # a consumer that stopped making progress is opened anew
        self.linger_s = max(0.0, float(linger_s))  # streaming: at most one batch cut every linger_s
        self.max_records = max(1, int(max_records))  # ... or as soon as this many records wait
        self.replica_cpu = replica_cpu  # CPU seconds of the replica copy thread so far (RunStats.replica_cpu)
        self._clock = clock
        self.pool = pool  # planner processes (apply/planner_pool.py); None = plan on the polling thread
        self.consumer = consumer
        self.planner = planner
        self.group = group
        self.dead_letter_sink = dead_letter_sink
        self.max_retries = max_retries
        self.say = say
        self.status_every = status_every
        self.after_batch = after_batch  # called with applied=True/False after every poll (e.g. replica publishing)
        self.metrics = metrics  # pipelines.metrics.PipelineMetrics, or None
        self._stop = False
        self._faults = dict(faults or {})
        if self._faults:
            hook = getattr(self.backend, "before_commit_hooks", None)
            if hook is not None:
                hook.append(lambda: maybe_crash("mid_batch", self._faults))

    def stop(self, *_: object) -> None:
        self._stop = True

    def _apply_with_retry(self, batch: ApplyBatch):
        """Apply one batch; transient errors (apply/retry.py: by exception type and SQLSTATE) are
        retried with backoff, 0.5 s doubling up to 10 s, reconnecting before each new attempt."""
        attempts = 0

        def attempt():
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                reconnect(self.backend)  # after the backoff sleep (the failed attempt rolled back already)
            return self.backend.apply(self.group, batch)

        def on_retry(exc: BaseException, n: int, delay: float) -> None:
            log.warning("transient reporting-DB error (attempt %d/%d), retrying in %.1fs: %s",
                        n, self.max_retries, delay, exc)

        try:
            return retrying(self.max_retries + 1, max_wait_s=10.0, on_retry=on_retry)(attempt)
        except Exception as exc:  # noqa: BLE001 - permanent, or transient after max_retries retries
            where = ", ".join(f"{t}[{p}]<{o}" for (t, p), o in sorted(batch.next_offsets.items())[:3])
            raise ApplyFailed(f"applying a batch failed after {attempts} attempt(s): "
                              f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                              f" (offsets not advanced: {where})", repr(exc)) from exc

    def caught_up(self) -> bool:
        lag = self.consumer.lag()
        return bool(lag) and all(v == 0 for v in lag.values())

    def _apply_one(self, batch: ApplyBatch, events: int, stats: RunStats) -> None:
        """Runs on the applier thread: one transaction, then what follows a commit."""
        t0 = time.monotonic()
        c0 = time.thread_time()
        result = self._apply_with_retry(batch)
        if self.metrics is not None:
            self._record(batch, events, result.rows, time.monotonic() - t0)
        if self._faults:
            maybe_crash("after_commit", self._faults)
        if self.dead_letter_sink and batch.dead_letters:
            self.dead_letter_sink(batch)
        stats.apply_s += time.monotonic() - t0
        stats.batches += 1
        stats.events += events
        stats.rows += result.rows
        stats.dead_letters += result.dead_letters
        stats.toast_missing += result.unappliable_toast
        for t in getattr(result, "truncates", ()):
            if not t.replayed:  # a source TRUNCATE is rare and wipes a table: always say it
                what = "soft-deleted" if t.delete_semantics == "soft" else "removed"
                self.say(f"source truncate applied to {t.physical_name}: {t.rows_deleted:,} live row(s) {what} "
                         f"(position {t.position}, source time {t.source_ts})")
        stats.apply_cpu += time.thread_time() - c0  # the transaction, then metrics and the dead-letter topic
        if self.after_batch:
            c2 = time.thread_time()
            self.after_batch(True)
            stats.replica_cpu += time.thread_time() - c2

    def _record(self, batch: ApplyBatch, events: int, rows: int, apply_seconds: float) -> None:
        """Metrics of a committed batch: counts, dead letters by (table, stage), apply time, and per
        table the source-commit-to-visible latency of its newest change (also its freshness)."""
        committed = time.time()
        dead: dict[tuple[str, str], int] = {}
        for dl in batch.dead_letters:
            key = (dl.target_table or dl.source_table or dl.topic, dl.stage)
            dead[key] = dead.get(key, 0) + 1
        visible = []
        for table in batch.tables:
            newest = table.newest_source_ts
            if newest is not None:
                age = max(0.0, committed - newest.timestamp())
                visible.append(age)
                self.metrics.set_freshness(table.contract.physical_name, age)
        self.metrics.batch_applied(events, rows, dead, apply_seconds, visible)

    def run(self, until_caught_up: bool = False, idle_timeout: float = 60.0, install_signals: bool = True) -> RunStats:
        """Poll and plan on this thread while the previous batch is applied on the applier thread.

        At most two batches are in memory: the one being applied and the one being planned (with
        planner processes: one more per planner; a stop applies every batch already polled). The
        consumer is used from this thread only (kafka-python is not thread-safe), so the advisory
        offset commit of an applied batch is sent from here; on a rebalance the consumer waits until
        the batch in flight is committed before it reads the stored offsets.

        Streaming with `linger_s` > 0, the records of several polls are collected and cut into one
        batch when `linger_s` have passed since the previous cut, or when `max_records` wait (a
        batch then holds fewer than 2 × `max_records`). Collected records are never held across a
        rebalance (the consumer's quiesce callback cuts them first), a stop applies them, and
        `until_caught_up` runs never linger.
        """
        if install_signals:
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        stats = RunStats()
        # the applier thread waits for the GIL after every database call while this thread runs
        # Python; the default 5 ms switch interval made each small statement cost ~20 ms of wall time
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(0.001)
        pool = self.pool
        linger = 0.0 if until_caught_up else self.linger_s
        clock = self._clock

        def planned(seconds: float) -> None:
            stats.plan_s += seconds

        applier = Applier(lambda batch, events: self._apply_one(batch, events, stats),
                          depth=pool.processes + 1 if pool else 1, planned=planned)
        pending: list[Record] = []  # polled, not yet cut into a batch (lingering)
        last_cut = float("-inf")

        def cut() -> None:
            """Plan the collected records as one batch and hand it to the applier (this thread)."""
            nonlocal pending, last_cut
            if not pending:
                return
            records, pending = pending, []
            last_cut = clock()
            n = len(records)
            t0, c0 = time.monotonic(), time.thread_time()
            if pool is not None:
                batch = pool.submit(records)  # planned in a planner process (plan_s: its time)
            else:
                batch = self.planner(records)
                stats.plan_s += time.monotonic() - t0
            stats.plan_cpu += time.thread_time() - c0
            del records  # the raw records are not needed once planned (or sent)
            applier.submit(batch, n)

        def quiesce() -> None:
            # a rebalance: what was polled under the old assignment is applied (with its offsets) first
            cut()
            applier.wait_idle()

        self.consumer.set_quiesce(quiesce)
        last_status = time.monotonic()
        idle_since = time.monotonic()
        try:
            while not self._stop:
                applier.raise_if_failed()
                c0 = time.thread_time()
                self._commit_hints(applier)
                stats.status_cpu += time.thread_time() - c0
                timeout_ms = 300
                if pending:  # lingering: wait for more records only until the next cut is due
                    timeout_ms = max(0, min(300, int((last_cut + linger - clock()) * 1000)))
                t0, c0 = time.monotonic(), time.thread_time()
                records = self.consumer.poll(timeout_ms=timeout_ms)
                t1 = time.monotonic()
                stats.poll_s += t1 - t0
                stats.poll_cpu += time.thread_time() - c0
                if records:
                    idle_since = t1
                    stats.polls += 1
                    if stats.first_records_at is None:
                        stats.first_records_at, stats.first_records_wall = t1, time.time()
                    if pending:
                        pending.extend(records)
                    else:
                        pending = records
                    del records
                if pending and (len(pending) >= self.max_records or clock() - last_cut >= linger):
                    cut()
                elif not pending:
                    if until_caught_up:
                        if self.caught_up():
                            applier.wait_idle()
                            applier.raise_if_failed()
                            break
                        if not self.consumer.assignment() and time.monotonic() - idle_since > idle_timeout:
                            self.say(f"no change topics assigned after {idle_timeout:.0f}s; nothing to ingest")
                            break
                    elif self.after_batch and applier.idle():
                        c0 = time.thread_time()
                        self.after_batch(False)
                        stats.replica_cpu += time.thread_time() - c0
                if time.monotonic() - last_status >= self.status_every:
                    c0 = time.thread_time()
                    lags = self.consumer.lag()  # exactly the assigned partitions
                    if self.metrics is not None:
                        self.metrics.set_assignment(list(lags))
                        for (topic, partition), n in lags.items():
                            self.metrics.set_lag(topic, partition, n)
                    lag = sum(lags.values())
                    now = time.monotonic()
                    stable = self.consumer.group_stable()
                    stalled = self.stall.check(now, stable, lag, idle_since)
                    stats.status_cpu += time.thread_time() - c0
                    self._replica_cpu(stats)
                    rebalancing = self.stall.rebalancing_for(now)
                    self.say(stats.line(lag) if stable else
                             stats.line() + f"; consumer group rebalancing for {rebalancing or 0:.0f}s")
                    if stalled:
                        self.say(f"restarting the Kafka consumer: {stalled}")
                        log.warning("restarting the Kafka consumer: %s", stalled)
                        quiesce()  # what the old consumer returned is applied first (with its offsets)
                        self.consumer.restart()
                        self.stall.reset()
                        idle_since = time.monotonic()
                        stats.consumer_restarts += 1
                        if self.metrics is not None:
                            self.metrics.consumer_restarted("fetch" if stable else "rebalance")
                    last_status = time.monotonic()
            cut()  # a stop applies what was already polled
            applier.wait_idle()  # a stop finishes the batch in flight (its offsets are committed with it)
            applier.raise_if_failed()
        finally:
            applier.close()
            sys.setswitchinterval(switch_interval)
        self._commit_hints(applier)
        self._replica_cpu(stats)
        return stats

    def _replica_cpu(self, stats: RunStats) -> None:
        if self.replica_cpu is not None:
            stats.replica_copy_cpu = self.replica_cpu()

    def _commit_hints(self, applier: Applier) -> None:
        for offsets in applier.take_committed():
            self.consumer.commit_hint(offsets)


class Applier:
    """One thread that applies planned batches in order, one at a time.

    DuckDB and psycopg release the GIL while they execute, so the reporting DB works on batch N
    while the polling thread decodes and plans batch N+1. `submit` waits while `depth` batches are
    queued or in flight (1 in-process: the one being applied; with planner processes, one per
    planner plus the one being applied). A queued item is an ApplyBatch or a `PendingBatch` (being
    planned in a planner process), resolved here in submission order. A failure is kept and
    re-raised on the polling thread by `raise_if_failed`.
    """

    def __init__(self, apply: Callable[[ApplyBatch, int], None], depth: int = 1,
                 planned: Callable[[float], None] | None = None) -> None:
        self._apply = apply
        self._depth = max(1, depth)
        self._planned = planned
        self._cond = threading.Condition()
        self._pending: deque[tuple[ApplyBatch | PendingBatch, int]] = deque()
        self._busy = False
        self._closed = False
        self._error: BaseException | None = None
        self._committed: list[dict[tuple[str, int], int]] = []
        self._thread = threading.Thread(target=self._loop, name="reporting-applier", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return
                item, events = self._pending.popleft()
                self._busy = True
            try:
                if self._error is None:  # after a failure the queued batches are dropped, never applied
                    if isinstance(item, PendingBatch):
                        batch = item.result()
                        if self._planned:
                            self._planned(item.plan_seconds)
                    else:
                        batch = item
                    del item
                    self._apply(batch, events)
                    with self._cond:
                        self._committed.append(batch.next_offsets)
            except BaseException as exc:  # noqa: BLE001 - handed to the polling thread
                with self._cond:
                    self._error = exc
                    self._pending.clear()
            finally:
                batch = item = None  # not kept alive while the next one is planned
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _in_flight(self) -> int:
        return len(self._pending) + self._busy

    def submit(self, batch: ApplyBatch | PendingBatch, events: int) -> None:
        with self._cond:
            while self._in_flight() >= self._depth and self._error is None:
                self._cond.wait()
            self._raise_locked()
            self._pending.append((batch, events))
            self._cond.notify_all()

    def idle(self) -> bool:
        with self._cond:
            return not self._in_flight()

    def wait_idle(self) -> None:
        with self._cond:
            while self._in_flight():
                self._cond.wait()

    def take_committed(self) -> list[dict[tuple[str, int], int]]:
        with self._cond:
            out, self._committed = self._committed, []
            return out

    def raise_if_failed(self) -> None:
        with self._cond:
            self._raise_locked()

    def _raise_locked(self) -> None:
        if self._error is not None:
            exc, self._error = self._error, None
            raise exc

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=600)
