"""Per-key comparison of expected contract rows with stored ones. Pure (no I/O).

`TableDiffer` first indexes the stored rows (canonical key → digest), then consumes the expected rows
as they stream in: a key that is not stored is *missing*, a key whose digest differs is *different*,
a source row the pipeline would reject (dead letter) is *invalid*; stored keys nobody claimed are
*extra*. Counts are always complete; samples keep the N smallest keys of each kind, so a rerun shows
the same rows. For the different rows the differing columns are computed afterwards from the stored
rows of the sampled keys only (one small lookup), which keeps memory at one digest per stored row.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.reconcile.canonical import RowCanon

__all__ = ["KINDS", "ColumnDifference", "RowDifference", "TableDiffer", "TableReconciliation"]

KINDS = ("missing", "extra", "different", "invalid")
"""missing: in the source, not in reporting; extra: in reporting, not in the source; different: both,
with other values; invalid: a source row the pipeline cannot apply (it would be a dead letter)."""


@dataclass(frozen=True)
class ColumnDifference:
    column: str
    expected: str
    """Readable value computed from the source."""
    actual: str
    """Readable value stored in the reporting database."""


@dataclass(frozen=True)
class RowDifference:
    kind: str
    key: tuple[tuple[str, str], ...]
    """(contract key column, readable value) pairs; empty when an invalid row's key cannot be decoded."""
    columns: tuple[ColumnDifference, ...] = ()
    reason: str = ""
    """For invalid rows: why the pipeline rejects the source row."""

    @property
    def key_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.key) or "(key not decodable)"


@dataclass
class TableReconciliation:
    """The result of reconciling one contract table with its source table."""

    table: str
    """Contract table, physical name (`orders_v1`), in schema `reporting`."""
    source_table: str = ""
    """`<service>:<schema or db>.<table>`."""
    source_rows: int = 0
    reporting_rows: int = 0
    """Live rows (soft-deleted rows excluded)."""
    missing: int = 0
    extra: int = 0
    different: int = 0
    invalid: int = 0
    missing_samples: list[RowDifference] = field(default_factory=list)
    extra_samples: list[RowDifference] = field(default_factory=list)
    different_samples: list[RowDifference] = field(default_factory=list)
    invalid_samples: list[RowDifference] = field(default_factory=list)
    seconds: float = 0.0
    """Wall time of the comparison (a source table read once for several targets: the shared time)."""
    error: str | None = None
    """Set when the table could not be reconciled (one line naming what failed)."""
    skipped: str | None = None
    """Set when the table was not reconciled on purpose (e.g. no projection feeds it yet)."""

    @property
    def differences(self) -> int:
        return self.missing + self.extra + self.different + self.invalid

    @property
    def ok(self) -> bool:
        return self.error is None and self.differences == 0

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        if self.skipped is not None:
            return "skipped"
        return "ok" if self.differences == 0 else "differences"

    def samples(self, kind: str) -> list[RowDifference]:
        return getattr(self, f"{kind}_samples")


class _Reversed:
    """Heap item ordered backwards, so a min-heap keeps the N smallest keys (the root is the largest)."""

    __slots__ = ("key", "payload")

    def __init__(self, key: Any, payload: Any) -> None:
        self.key = key
        self.payload = payload

    def __lt__(self, other: _Reversed) -> bool:
        return other.key < self.key


class _Smallest:
    """The `n` smallest keys offered (with a payload each)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.heap: list[_Reversed] = []

    def offer(self, key: Any, payload: Any = None) -> None:
        if self.n <= 0:
            return
        if len(self.heap) < self.n:
            heapq.heappush(self.heap, _Reversed(key, payload))
        elif key < self.heap[0].key:
            heapq.heapreplace(self.heap, _Reversed(key, payload))

    def sorted(self) -> list[tuple[Any, Any]]:
        return sorted(((i.key, i.payload) for i in self.heap), key=lambda kp: kp[0])


def _sort_key(key: Any) -> tuple:
    """A total order over canonical keys, tolerant of None inside invalid rows' keys."""
    parts = key if isinstance(key, tuple) else (key,)
    return tuple((p is None, type(p).__name__, p if p is not None else 0) for p in parts)


class TableDiffer:
    """Compare one contract table: feed `add_stored` first, then `add_expected`/`add_invalid`, then `result`."""

    def __init__(self, canon: RowCanon, show: int = 10) -> None:
        self.canon = canon
        self.show = max(0, show)
        self.stored: dict[Any, int] = {}
        self.reporting_rows = 0
        self.source_rows = 0
        self.missing = 0
        self.different = 0
        self.invalid = 0
        self._missing = _Smallest(self.show)
        self._different = _Smallest(self.show)
        self._invalid = _Smallest(self.show)

    def add_stored(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rows selected with `canon.select_list(dialect)` (already canonical in SQL)."""
        stored_canon, key, digest, index = self.canon.stored, self.canon.key, self.canon.digest, self.stored
        n = 0
        for row in rows:
            c = stored_canon(row)
            index[key(c)] = digest(c)
            n += 1
        self.reporting_rows += n

    def add_expected(self, rows: Iterable[Sequence[Any]]) -> None:
        """Projected, validated rows (contract column order; trailing provenance values are ignored)."""
        expected, key, digest, pop = self.canon.expected, self.canon.key, self.canon.digest, self.stored.pop
        n = 0
        for row in rows:
            n += 1
            c = expected(row)
            k = key(c)
            got = pop(k, None)
            if got is None:
                self.missing += 1
                self._missing.offer(_sort_key(k), k)
            elif got != digest(c):
                self.different += 1
                self._different.offer(_sort_key(k), (k, c))
        self.source_rows += n

    def add_invalid(self, key: Any, reason: str) -> None:
        """A source row the pipeline would dead-letter. `key`: its canonical key, or None if unknown.

        The stored row of that key (if any) is stale by definition; it is accounted for here, not as extra.
        """
        self.source_rows += 1
        self.invalid += 1
        if key is not None:
            self.stored.pop(key, None)
        self._invalid.offer(_sort_key(key) if key is not None else ((True, "", 0),), (key, reason))

    def result(self, table: str, source_table: str,
               fetch_stored: Callable[[list[Any]], dict[Any, tuple[Any, ...]]] | None = None,
               seconds: float = 0.0) -> TableReconciliation:
        """Finish: whatever is left in the stored index is extra. `fetch_stored(keys)` returns the
        canonical stored rows of those keys (to name the differing columns of the sampled rows)."""
        canon = self.canon
        extras = heapq.nsmallest(self.show, self.stored, key=_sort_key) if self.show else []
        different = self._different.sorted()
        stored_rows = fetch_stored([k for _, (k, _) in different]) if (different and fetch_stored) else {}
        different_samples = []
        for _, (k, expected) in different:
            actual = stored_rows.get(k)
            cols: tuple[ColumnDifference, ...] = ()
            if actual is not None:
                cols = tuple(ColumnDifference(name, canon.show(i, e), canon.show(i, a))
                             for i, (name, e, a) in enumerate(zip(canon.names, expected, actual, strict=True))
                             if e != a or type(e) is not type(a))
            different_samples.append(RowDifference("different", canon.show_key(k), cols))
        return TableReconciliation(
            table=table,
            source_table=source_table,
            source_rows=self.source_rows,
            reporting_rows=self.reporting_rows,
            missing=self.missing,
            extra=len(self.stored),
            different=self.different,
            invalid=self.invalid,
            missing_samples=[RowDifference("missing", canon.show_key(k)) for _, k in self._missing.sorted()],
            extra_samples=[RowDifference("extra", canon.show_key(k)) for k in extras],
            different_samples=different_samples,
            invalid_samples=[RowDifference("invalid", canon.show_key(k) if k is not None else (), reason=r)
                             for _, (k, r) in self._invalid.sorted()],
            seconds=seconds,
        )
