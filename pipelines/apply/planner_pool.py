"""Planning in separate processes: raw Kafka records in, Arrow record batches out.

One Python process runs one thread of Python at a time (the GIL). In-process, the polling thread
(fetch, decode, project, validate, reduce) and the applier thread (Arrow conversion, SQL) take
turns, and the DuckDB apply rate stops near 38k events/s on two cores (docs/benchmarks.md §6).
With `planners=N` the worker keeps fetching on its own thread and applying on the applier thread,
and N planner processes turn each polled batch into the same `ApplyBatch` the in-process planner
builds, with every contract table already staged as an Arrow table:

- parent → planner: the records of one poll, column-major (topics, partitions, offsets, keys,
  values: bytes objects, pickled with one memo entry per distinct topic);
- planner → parent: per contract table an Arrow IPC stream (read back without copying the column
  buffers) and its source truncates if any, the dead letters, the next offsets and the planning time.

Batches are applied in the order they were polled, whichever planner finishes first, so the
apply semantics (one transaction per batch with its offsets) are unchanged. The planner processes
are spawned (nothing of the parent's threads, DuckDB or Kafka connections is inherited), build
their parts once through `factory` (a picklable callable that returns `PipelineParts`), and ignore
SIGINT/SIGTERM: the parent decides when to stop. They exit when the parent closes the pool, and
are killed by the kernel when the parent dies (PR_SET_PDEATHSIG), even by kill -9.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import pyarrow as pa

from pipelines.apply.backend import ApplyBatch, ArrowTableBatch
from pipelines.contract.model import Contract

__all__ = ["PendingBatch", "PlannerPool"]

_parts: Any = None
_init_error: BaseException | None = None


def _die_with_parent(parent: int) -> None:
    """Linux: SIGKILL this process when its parent dies (a kill -9 of the pipeline must not leave
    planners behind: they would block on their task queue forever). The kernel ties this to the
    parent *thread* that started the process, so a PlannerPool must be created on a thread that
    outlives it (the pipeline's own thread does; a pool created on a short-lived thread would see
    its planners killed, which the worker reports as a broken pool, never as a silent loss)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent's pool shutdown still stops us
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)


def _init(factory: Callable[[], Any], parent: int) -> None:
    import gc

    global _parts, _init_error
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        _parts = factory()
    except BaseException as exc:  # noqa: BLE001 - handed to the parent by `_ready` (an initializer error
        _init_error = exc         # would only break the pool, without the reason)
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _ready() -> None:
    if _init_error is not None:
        raise _init_error


def _ipc(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def plan_columns(columns: tuple[list[str], list[int], list[int], list[bytes | None], list[bytes | None]]) -> tuple:
    """Runs in a planner process: plan one poll's records; return what `PendingBatch` rebuilds."""
    from pipelines.cdc.events import Record

    if _init_error is not None:
        raise _init_error
    t0 = time.perf_counter()
    topics, partitions, offsets, keys, values = columns
    records = list(map(Record, topics, partitions, offsets, keys, values))
    batch: ApplyBatch = _parts.plan(records)
    tables = [(tb.contract.physical_name, _ipc(tb.to_arrow()), tb.keep_columns, tb.has_deletes, tb.newest_source_ts,
               tb.truncates)
              for tb in batch.tables if len(tb) or tb.truncates]
    return tables, batch.dead_letters, batch.next_offsets, batch.events, time.perf_counter() - t0


def to_columns(records: Sequence[Any]) -> tuple[list, list, list, list, list]:
    """Records (.topic/.partition/.offset/.key/.value) → the column-major form sent to a planner."""
    return ([r.topic for r in records], [r.partition for r in records], [r.offset for r in records],
            [r.key for r in records], [r.value for r in records])


class PendingBatch:
    """A batch being planned in a planner process; `result()` waits and returns the ApplyBatch."""

    def __init__(self, future: Future, contracts: Mapping[str, Contract]) -> None:
        self._future = future
        self._contracts = contracts
        self.plan_seconds = 0.0

    def result(self) -> ApplyBatch:
        tables, dead, next_offsets, events, seconds = self._future.result()
        self.plan_seconds = seconds
        staged = [ArrowTableBatch(self._contracts[name], pa.ipc.open_stream(buf).read_all(), keep, has_deletes, newest,
                                  truncates)
                  for name, buf, keep, has_deletes, newest, truncates in tables]
        return ApplyBatch(staged, dead, next_offsets, events=events)


class PlannerPool:
    """`processes` planner processes built from `factory` (returns PipelineParts; must be picklable,
    e.g. a module-level function or a functools.partial of one). `contracts` are the parent's, by
    physical name, to re-attach to the staged tables."""

    def __init__(self, processes: int, factory: Callable[[], Any], contracts: Mapping[str, Contract]) -> None:
        if processes < 1:
            raise ValueError(f"planner processes must be at least 1, not {processes}")
        self.processes = processes
        self._contracts = contracts
        self._executor = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init, initargs=(factory, os.getpid()))
        # start every process now and surface a broken factory (bad projection file...) at once
        try:
            for f in [self._executor.submit(_ready) for _ in range(processes)]:
                f.result()
        except BaseException as exc:
            self._executor.shutdown(wait=True, cancel_futures=True)
            raise RuntimeError(f"planner processes could not start: {type(exc).__name__}: {exc}") from exc

    def submit(self, records: Sequence[Any]) -> PendingBatch:
        return PendingBatch(self._executor.submit(plan_columns, to_columns(records)), self._contracts)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> PlannerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
