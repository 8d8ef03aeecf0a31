"""The reporting-DB adapter interface and the logic both backends share.

A backend applies one `ApplyBatch` in ONE transaction: the staged changes of every touched
contract table, the dead letters of the batch, the per-table status, and the consumer offsets.
Either all of it is committed or none of it, which is what makes redelivery harmless.
"""

from __future__ import annotations

import datetime as dt
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import pyarrow as pa

from pipelines.apply import sql as apply_sql
from pipelines.apply.arrow import to_arrow
from pipelines.apply.pipeline_schema import deleted_keys_ddl, pipeline_ddl
from pipelines.contract.ddl import create_table_sql
from pipelines.contract.model import Contract

log = logging.getLogger(__name__)


@dataclass
class TableBatch:
    """The newest change per key of one contract table, column-major (see apply/arrow.py)."""

    contract: Contract
    columns: list[list]  # one list per contract column, in contract order
    positions: list[int]
    source_ts: list[dt.datetime | None]
    ops: list[str]
    is_delete: list[bool]
    keep: dict[str, list[bool]] = field(default_factory=dict)  # TOAST: column -> keep-stored flags
    has_values: list[bool] | None = None  # deletes: True when the row carries its last image (soft delete)
    truncates: list[tuple[int, dt.datetime | None]] = field(default_factory=list)
    """The source truncates of the batch for this table, (source position, source ts), positions
    ascending, applied in order after the rows (cdc/plan.py TablePlan.truncates, apply/sql.py)."""

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def keep_columns(self) -> list[str]:
        """TOAST columns with a keep-stored flag in this batch (the `_keep_<col>` staged columns)."""
        return sorted(self.keep)

    @property
    def has_deletes(self) -> bool:
        return any(self.is_delete)

    @property
    def newest_source_ts(self) -> dt.datetime | None:
        newest = max((t for t in self.source_ts if t is not None), default=None)
        for _, t in self.truncates:
            if t is not None:
                newest = t if newest is None else max(newest, t)
        return newest

    def to_arrow(self) -> pa.Table:
        keep_cols = self.keep_columns
        has_values = self.has_values if self.has_values is not None else [not d for d in self.is_delete]
        cols = [*self.columns, self.positions, self.source_ts, self.ops, self.is_delete, has_values,
                *[self.keep[c] for c in keep_cols]]
        return to_arrow(self.contract, cols, keep_cols)


@dataclass
class ArrowTableBatch:
    """A TableBatch already staged as Arrow (built by a planner process, see apply/planner_pool.py).

    Same interface as TableBatch for `Backend.apply`: `contract`, `keep_columns`, `has_deletes`,
    `newest_source_ts`, `len()`, `to_arrow()`.
    """

    contract: Contract
    table: pa.Table
    keep_columns: list[str]
    has_deletes: bool
    newest_source_ts: dt.datetime | None
    truncates: list[tuple[int, dt.datetime | None]] = field(default_factory=list)

    def __len__(self) -> int:
        return self.table.num_rows

    def to_arrow(self) -> pa.Table:
        return self.table


@dataclass(frozen=True)
class DeadLetterRow:
    topic: str
    partition: int
    offset: int
    stage: str
    reason: str
    source_table: str | None
    target_table: str | None
    key: bytes | None
    value: bytes | None


@dataclass
class ApplyBatch:
    tables: list[TableBatch | ArrowTableBatch]
    dead_letters: list[DeadLetterRow]
    next_offsets: dict[tuple[str, int], int]  # (topic, partition) -> next offset to read
    replayed_dead_letter_ids: list[int] = field(default_factory=list)
    failed_again: list[tuple[int, str]] = field(default_factory=list)  # (dead-letter id, new reason)
    events: int = 0  # records in the batch (for the batches log)


@dataclass(frozen=True)
class TruncateApplied:
    """A source truncate applied to one contract table (for the worker's status line and the log)."""

    physical_name: str
    position: int
    source_ts: dt.datetime | None
    rows_deleted: int  # live rows it deleted (soft: marked deleted; hard: removed)
    delete_semantics: str
    replayed: bool  # not newer than the truncate already applied to the table: it changed nothing


@dataclass(frozen=True)
class ApplyResult:
    rows: int
    dead_letters: int
    unappliable_toast: int
    truncates: tuple[TruncateApplied, ...] = ()


class Backend(ABC):
    """One reporting database. Subclasses provide connection, staging and SQL execution."""

    dialect: str  # the SQL the backend speaks: duckdb or postgres
    keyless: bool = False  # tables without primary keys (DuckLake): upserts as MERGE, see apply/sql.py

    @property
    def ddl_dialect(self) -> str:
        """The dialect of the CREATE statements (DuckLake speaks DuckDB SQL but takes no constraints)."""
        return "ducklake" if self.keyless else self.dialect

    before_commit_hooks: list  # callables run inside the transaction just before COMMIT (fault tests)

    # -- primitives -------------------------------------------------------------------------
    @abstractmethod
    def execute(self, sql: str, params: tuple | list | None = None) -> None: ...

    @abstractmethod
    def query(self, sql: str, params: tuple | list | None = None) -> list[tuple]: ...

    @abstractmethod
    def stage(self, name: str, table: pa.Table) -> str:
        """Make `table` readable as a relation for this transaction; return its SQL name."""

    @abstractmethod
    def unstage(self, name: str) -> None: ...

    @abstractmethod
    def begin(self) -> None: ...

    @abstractmethod
    def commit(self) -> None: ...

    @abstractmethod
    def rollback(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    # -- shared logic -----------------------------------------------------------------------
    def ensure_schema(self, contracts: list[Contract]) -> None:
        """Create `_pipeline` and every contract table (idempotent)."""
        self.begin()
        try:
            for stmt in pipeline_ddl(self.ddl_dialect):
                self.execute(stmt)
            for c in contracts:
                for stmt in create_table_sql(c, self.ddl_dialect):
                    self.execute(stmt)
                self.execute(deleted_keys_ddl(c, self.ddl_dialect))
            self.commit()
        except Exception:
            self.rollback()
            raise

    def stored_offsets(self, group: str) -> dict[tuple[str, int], int]:
        rows = self.query("SELECT topic, kafka_partition, next_offset FROM _pipeline.offsets "
                          "WHERE consumer_group = ?", (group,))
        return {(t, p): o for t, p, o in rows}

    @staticmethod
    def _p(n: int) -> str:
        """`n` placeholders; backends take `?` (PostgresBackend rewrites it for psycopg)."""
        return ", ".join(["?"] * n)

    def apply(self, group: str, batch: ApplyBatch) -> ApplyResult:
        """Apply rows, dead letters, status and offsets in one transaction."""
        rows = 0
        toast_missing = 0
        status: list[tuple] = []
        applied: list[TruncateApplied] = []
        self.begin()
        try:
            for tb in batch.tables:
                truncates = getattr(tb, "truncates", None) or ()
                if not len(tb) and not truncates:
                    continue
                counted = self._count_truncated(tb.contract, truncates) if truncates else []
                if len(tb):
                    name = f"staged_{tb.contract.physical_name}"
                    rel = self.stage(name, tb.to_arrow())
                    keep_cols = tb.keep_columns
                    count_sql = apply_sql.missing_toast_count_sql(tb.contract, rel, keep_cols)
                    if count_sql:
                        toast_missing += int(self.query(count_sql)[0][0])
                    for stmt in apply_sql.apply_statements(tb.contract, rel, keep_cols, tb.has_deletes,
                                                           keyless=self.keyless, **self._merge_shortcuts(tb.contract)):
                        self.execute(stmt)
                    self.unstage(name)
                    if tb.has_deletes:
                        self._noted_deletes(tb.contract)
                if truncates:
                    self._noted_truncate(tb.contract)
                for (position, source_ts), (stored, rows_deleted) in zip(truncates, counted, strict=True):
                    # after the rows: the batch's changes newer than the truncate are kept
                    for sql, params in apply_sql.truncate_statements(tb.contract, position, source_ts, rows_deleted,
                                                                     keyless=self.keyless):
                        self.execute(sql, params)
                    applied.append(TruncateApplied(tb.contract.physical_name, position, source_ts, rows_deleted,
                                                   tb.contract.delete_semantics,
                                                   replayed=stored is not None and position <= stored))
                status.append((tb.contract.physical_name, tb.newest_source_ts, len(tb)))
                rows += len(tb)
            if status:  # one statement for every table of the batch (statements are the fixed cost)
                self._write_status(status)
            for dl in batch.dead_letters:
                # redelivery (offsets reset, crash before commit) must not duplicate a dead letter
                id_col, id_val = self._dead_letter_id()
                self.execute(
                    f"INSERT INTO _pipeline.dead_letters ({id_col}topic, kafka_partition, kafka_offset, stage, reason, "
                    "source_table, target_table, record_key, record_value, first_seen_at) "
                    f"SELECT {id_val}{self._p(9)}, now() WHERE NOT EXISTS (SELECT 1 FROM _pipeline.dead_letters d "
                    f"WHERE d.topic = {self._p(1)} AND d.kafka_partition = {self._p(1)} AND d.kafka_offset = {self._p(1)}"
                    f" AND coalesce(d.target_table, '') = coalesce({self._p(1)}, ''))",
                    (dl.topic, dl.partition, dl.offset, dl.stage, dl.reason[:2000], dl.source_table,
                     dl.target_table, dl.key, dl.value, dl.topic, dl.partition, dl.offset, dl.target_table))
            for dl_id in batch.replayed_dead_letter_ids:
                self.execute(f"UPDATE _pipeline.dead_letters SET replayed_at = now() WHERE id = {self._p(1)}", (dl_id,))
            for dl_id, reason in batch.failed_again:
                self.execute(f"UPDATE _pipeline.dead_letters SET retries = retries + 1, reason = {self._p(1)} "
                             f"WHERE id = {self._p(1)}", (reason[:2000], dl_id))
            if batch.events:
                self.execute("INSERT INTO _pipeline.batches (consumer_group, applied_at, events, rows_applied, "
                             f"dead_letters) VALUES ({self._p(1)}, now(), {self._p(3)})",
                             (group, batch.events, rows, len(batch.dead_letters)))
            offsets = sorted(batch.next_offsets.items())
            if offsets:
                self._write_offsets(group, offsets)
            for hook in getattr(self, "before_commit_hooks", ()):
                hook()
            self.commit()
        except Exception:
            self.rollback()
            raise
        for t in applied:
            if not t.replayed:
                log.warning("source truncate applied to %s at position %d: %d live row(s) %s", t.physical_name,
                            t.position, t.rows_deleted, "soft-deleted" if t.delete_semantics == "soft" else "removed")
        return ApplyResult(rows=rows, dead_letters=len(batch.dead_letters), unappliable_toast=toast_missing,
                           truncates=tuple(applied))

    # -- per-batch bookkeeping statements; a backend with a single writer may take shortcuts ----------
    def _dead_letter_id(self) -> tuple[str, str]:
        """(column list prefix, value prefix) giving a new dead letter its id; empty: the column's default."""
        return "", ""

    def _merge_shortcuts(self, contract: Contract) -> dict[str, bool]:
        """`apply_statements` options this backend can prove safe (none by default: several writers)."""
        return {}

    def _noted_deletes(self, contract: Contract) -> None:  # noqa: B027 - a hook; nothing to note by default
        """A batch stored deletes of the contract's table (in `_pipeline.<table>__deleted`)."""

    def _noted_truncate(self, contract: Contract) -> None:  # noqa: B027 - a hook; nothing to note by default
        """A batch applied a source truncate to the contract's table."""

    def _write_status(self, status: list[tuple]) -> None:
        """Upsert (physical_name, newest_source_ts, rows) per table into `_pipeline.table_status`."""
        self.execute(
            "INSERT INTO _pipeline.table_status (physical_name, newest_source_ts, last_applied_at, rows_applied) "
            "VALUES " + ", ".join([f"({self._p(2)}, now(), {self._p(1)})"] * len(status)) +
            " ON CONFLICT (physical_name) DO UPDATE SET "
            "newest_source_ts = GREATEST(_pipeline.table_status.newest_source_ts, excluded.newest_source_ts), "
            "last_applied_at = excluded.last_applied_at, "
            "rows_applied = _pipeline.table_status.rows_applied + excluded.rows_applied",
            [v for row in status for v in row])

    def _write_offsets(self, group: str, offsets: list[tuple[tuple[str, int], int]]) -> None:
        """Upsert the group's next offset per (topic, partition) into `_pipeline.offsets`."""
        self.execute(
            "INSERT INTO _pipeline.offsets (consumer_group, topic, kafka_partition, next_offset, updated_at) "
            "VALUES " + ", ".join([f"({self._p(4)}, now())"] * len(offsets)) +
            " ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE SET "
            "next_offset = excluded.next_offset, updated_at = excluded.updated_at",
            [v for (topic, part), nxt in offsets for v in (group, topic, part, nxt)])

    def _count_truncated(self, contract: Contract, truncates) -> list[tuple[int | None, int]]:
        """Before the batch's rows: per truncate (positions ascending), the newest truncate position
        already applied to the table (None: none) and the stored live rows the truncate deletes."""
        stored = self.query(f"SELECT max(\"_source_position\") FROM _pipeline.truncates WHERE physical_name = "
                            f"{self._p(1)}", (contract.physical_name,))[0][0]
        out = []
        since = -1
        for position, _ in truncates:
            sql, params = apply_sql.truncate_count_sql(contract, position, since)
            out.append((stored, int(self.query(sql, params)[0][0])))
            stored = position if stored is None else max(stored, position)
            since = position
        return out
