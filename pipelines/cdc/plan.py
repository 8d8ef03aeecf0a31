"""Batch planning: a batch of Debezium events → per contract table upserts and deletes. Pure, hot path.

`Planner(projections, contracts).plan(events)` (or `.plan_records(kafka_records)`, which also decodes)
returns a `BatchPlan` that an apply adapter writes in ONE transaction together with `plan.offsets`:

1. Route: topic → TableProjection (`load_projections`); no projection → dead letter, stage 'route'.
2. Reduce: per (source table, key) only the newest change survives, by (source position, Kafka
   offset). Later changes of a key arriving with an older position (replays) are dropped here; the
   adapter drops changes older than the stored row the same way (`_source_position`).
   TOAST: when the newest change lacks a column (Debezium's unavailable placeholder), the value is
   taken from an older change of the same key in the batch; if there is none, the column is
   UNAVAILABLE and marked "keep stored" in `TablePlan.keep_masks`.
3. Project + validate only the survivors: decode by declared source type, evaluate the target
   expressions, check against the contract. A failure dead-letters that event for that target
   (stage 'decode', 'project' or 'validate'); other targets and events go on.
4. Deletes (op d) become `(key, position, source_ts)` per target; the key comes from `before`, whose
   non-key columns are placeholders under REPLICA IDENTITY DEFAULT. Tombstones, heartbeats,
   transaction markers, schema changes and logical messages produce no rows, but every record's
   offset counts, so offsets always advance.

Snapshot reads (op r) are upserts. One bad event never fails the batch: every per-event failure,
even an unexpected one, becomes a dead letter.

Performance: everything is compiled once per Planner (build it once, or let `plan_batch` cache it);
per event only the envelope is parsed and the key read until the batch is reduced.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pipelines.cdc.events import ChangeEvent, DecodeError, EventKind, Op, parse
from pipelines.cdc.types import UNAVAILABLE, UNAVAILABLE_PLACEHOLDER, TypeDecodeError, is_placeholder
from pipelines.projection.errors import ProjectionError
from pipelines.projection.fastpath import tuple_builder
from pipelines.projection.model import Projection, TableProjection, TargetProjection
from pipelines.projection.validate import ContractLike, ContractViolation, column_checker, contract_columns

__all__ = [
    "PROVENANCE_COLUMNS",
    "BatchPlan",
    "DeadLetter",
    "Planner",
    "TablePlan",
    "plan_batch",
    "plan_records",
]

PROVENANCE_COLUMNS = ("_source_position", "_source_ts", "_op")
"""Appended to every upsert row, in this order (`_ingested_at`/`_deleted_at` are the adapter's)."""

STAGES = ("decode", "route", "project", "validate")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event that could not be applied, with the original bytes for replay.

    `stage`: 'decode' (envelope or a value's declared type), 'route' (no projection for the topic,
    or an op the pipeline does not apply), 'project' (missing source column, unmapped value,
    expression error), 'validate' (contract violation). `target`: the contract table concerned, or
    None when the event failed before any target (decode of the envelope, route).
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    stage: str
    reason: str
    target: str | None = None


@dataclass(slots=True)
class TablePlan:
    """What to write to one contract table (`reporting.<physical_name>`) for one batch.

    `columns`: contract data columns in contract order, then PROVENANCE_COLUMNS.
    `upserts`: one tuple per key, aligned with `columns`; `_source_position` is an int, `_source_ts`
    an aware UTC datetime (or None), `_op` 'r'/'c'/'u'.
    `keep_masks`: None when no row has a kept (TOAST) column; else one tuple of bools per upsert,
    aligned with `columns`, True = keep the stored value (the row holds None there).
    `deletes`: (key tuple in `key_columns` order, source position, source ts) per deleted key.
    A key appears at most once in upserts + deletes.
    """

    physical_name: str
    key_columns: tuple[str, ...]
    columns: tuple[str, ...]
    upserts: list[tuple[Any, ...]] = field(default_factory=list)
    keep_masks: list[tuple[bool, ...]] | None = None
    deletes: list[tuple[tuple[Any, ...], int, datetime | None]] = field(default_factory=list)
    delete_images: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    """For deletes that superseded an upsert of the same key in this batch: index in `deletes` → the
    last row image before the delete (aligned with `columns`). Soft-delete tables store it, so a
    soft-deleted row holds the same values whatever the batch boundaries were."""

    @property
    def key_indexes(self) -> tuple[int, ...]:
        """Positions of `key_columns` inside `columns` (to read keys out of upsert tuples)."""
        return tuple(self.columns.index(k) for k in self.key_columns)


@dataclass(slots=True)
class BatchPlan:
    """The result of planning one batch.

    `offsets`: the highest Kafka offset seen per (topic, partition), over every record of the batch
    (rows, tombstones, heartbeats, dead letters...). Commit `offset + 1` (`next_offsets()`) in the
    same transaction as the rows.
    """

    tables: dict[str, TablePlan]
    dead_letters: list[DeadLetter]
    offsets: dict[tuple[str, int], int]
    records: int = 0
    """Records in the batch."""
    changes: int = 0
    """Row changes routed to a projection (before reduction)."""
    superseded: int = 0
    """Row changes dropped because a newer change of the same key is in the batch."""
    skipped: int = 0
    """Tombstones, heartbeats, transaction markers, schema changes, logical messages."""

    def next_offsets(self) -> dict[tuple[str, int], int]:
        """Offsets to commit/store: the next offset to read per (topic, partition)."""
        return {tp: o + 1 for tp, o in self.offsets.items()}


# --- compiled per target ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Target:
    physical_name: str
    key_columns: tuple[str, ...]
    columns: tuple[str, ...]
    build: Callable[..., tuple[Any, ...]]
    """(decoded source row, position, ts, op) → upsert tuple aligned with `columns`;
    raises ProjectionError / ContractViolation."""
    key_order: tuple[int, ...]
    """Index into the decoded source key for each of `key_columns`."""
    used_columns: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Route:
    table: TableProjection
    key: tuple[str, ...]
    targets: tuple[_Target, ...]


def _contract_for(contracts: Mapping[str, ContractLike], name: str) -> ContractLike | None:
    return contracts.get(name) or contracts.get(f"reporting.{name}")


def _compile_target(table: TableProjection, target: TargetProjection, contract: ContractLike) -> _Target:
    name = target.physical_name

    def fail(reason: str) -> ProjectionError:
        return ProjectionError(reason, table.path, target.line)

    cols = contract_columns(contract)
    names = tuple(c.name for c in cols)
    for c in target.columns:
        if c not in names:
            raise fail(f"{name}.{c} is not a column of the contract {name} (contract columns: {', '.join(names)})")
    entries: list[tuple[str | None, Callable[[Any], Any] | None, Callable[[Any], Any]]] = []
    for col in cols:
        check = column_checker(name, col)
        if col.name in target.columns:
            expr = target.expression(col.name)
            entries.append((expr.plain_column, None if expr.plain_column else expr.fn, check))
        elif col.required:
            raise fail(f"{name}.{col.name} is required by the contract but the projection does not produce it")
        else:
            entries.append((None, None, check))
    pk = tuple(getattr(contract, "primary_key", ()) or target.key_columns)
    if set(pk) != set(target.key_columns):
        raise fail(f"{name}: the contract's primary key ({', '.join(pk)}) is not what the projection copies from "
                   f"the source key {table.source_table}({', '.join(table.key)}) → ({', '.join(target.key_columns)})")
    key_order = tuple(target.key_columns.index(k) for k in pk)
    build = tuple_builder(entries, extra=len(PROVENANCE_COLUMNS))
    used = frozenset(table.key).union(*(e.columns for e in target.expressions))
    return _Target(name, pk, names + PROVENANCE_COLUMNS, build, key_order, used)


def _routes_of(projections: Mapping[str, TableProjection] | Projection | Iterable[Projection]
               ) -> dict[str, TableProjection]:
    if isinstance(projections, Projection):
        return projections.by_topic
    if isinstance(projections, Mapping):
        return dict(projections)
    out: dict[str, TableProjection] = {}
    for p in projections:
        out.update(p.by_topic)
    return out


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PH = UNAVAILABLE_PLACEHOLDER
_PH_B64 = base64.b64encode(UNAVAILABLE_PLACEHOLDER.encode()).decode()
_PH_ARRAY = [UNAVAILABLE_PLACEHOLDER]
_UNAV = UNAVAILABLE
_CHANGE = EventKind.CHANGE
_DELETE = Op.DELETE
_TRUNCATE = Op.TRUNCATE
_MESSAGE = Op.MESSAGE


def _ts(ms: int | None) -> datetime | None:
    return None if ms is None else _EPOCH + timedelta(milliseconds=ms)


def _fill_unavailable(after: dict[str, Any], older: dict[str, Any]) -> dict[str, Any]:
    """`after` with TOAST placeholders replaced by the older in-batch value of the same key, if real."""
    merged = dict(after)
    for k, v in after.items():
        if is_placeholder(v):
            old = older.get(k, v)
            if not is_placeholder(old):
                merged[k] = old
    return merged


MAX_RECORD_BYTES = 1024 * 1024
"""Default size limit of one change event (the estate's pipeline.max_record_bytes). Larger events are
dead letters (stage 'decode'), not decoded: a contract row is small, so a huge value is a bug or an
attack, and decoding it would stall the batch."""


class Planner:
    """Compiled routing + projection + validation for a set of projections and contracts.

    `projections`: {topic: TableProjection} (what `load_projections` returns), a `Projection`, or an
    iterable of Projections. `contracts_by_physical_name`: {"orders_v1" (or "reporting.orders_v1"):
    contract}; a contract needs `.columns` (name, base_type, length, precision, scale, required,
    enum) and `.primary_key` (see pipelines.projection.validate). Raises ProjectionError (file:line)
    when a projection target has no contract, writes a column the contract lacks, misses a required
    column, or disagrees with the contract's primary key.
    """

    def __init__(self, projections: Mapping[str, TableProjection] | Projection | Iterable[Projection],
                 contracts_by_physical_name: Mapping[str, ContractLike],
                 max_record_bytes: int = MAX_RECORD_BYTES) -> None:
        self.max_record_bytes = max_record_bytes
        self._routes: dict[str, _Route] = {}
        for topic, table in _routes_of(projections).items():
            targets = []
            for t in table.targets:
                contract = _contract_for(contracts_by_physical_name, t.physical_name)
                if contract is None:
                    raise ProjectionError(f"target {t.physical_name} has no contract (none of that name loaded)",
                                          table.path, t.line)
                targets.append(_compile_target(table, t, contract))
            self._routes[topic] = _Route(table, table.key, tuple(targets))

    @property
    def topics(self) -> tuple[str, ...]:
        """The Kafka topics this planner has projections for (what the consumer subscribes to)."""
        return tuple(self._routes)

    def plan_records(self, records: Iterable[Any]) -> BatchPlan:
        """Decode and plan raw Kafka records (.topic/.partition/.offset/.key/.value, bytes or None).

        Records are decoded one at a time while the batch is reduced, so superseded events are
        freed at once (less memory and garbage-collector work than decoding the batch first).
        """
        dead: list[DeadLetter] = []
        offsets: dict[tuple[str, int], int] = {}
        failed = [0]
        plan = self._plan(self._decode(records, dead, offsets, failed, self.max_record_bytes), dead, offsets)
        plan.records += failed[0]
        return plan

    @staticmethod
    def _decode(records: Iterable[Any], dead: list[DeadLetter], offsets: dict[tuple[str, int], int],
                failed: list[int], limit: int = MAX_RECORD_BYTES) -> Iterator[ChangeEvent]:
        for r in records:
            topic, partition, offset = r.topic, r.partition, r.offset
            try:
                if r.value is not None and len(r.value) > limit:
                    raise DecodeError(f"record of {len(r.value):,} bytes exceeds the {limit:,}-byte limit "
                                      "(pipeline.max_record_bytes)")
                yield parse(topic, partition, offset, r.key, r.value, False)
                continue
            except DecodeError as exc:
                dead.append(DeadLetter(topic, partition, offset, r.key, r.value, "decode", exc.reason))
            except Exception as exc:  # noqa: BLE001 - one bad record never fails the batch
                dead.append(DeadLetter(topic, partition, offset, r.key, r.value, "decode",
                                       f"internal error while decoding: {type(exc).__name__}: {exc}"))
            failed[0] += 1
            tp = (topic, partition)
            if offset > offsets.get(tp, -1):
                offsets[tp] = offset

    def plan(self, events: Iterable[ChangeEvent]) -> BatchPlan:
        """Plan a batch of decoded events (see the module docstring)."""
        return self._plan(events, [], {})

    def _plan(self, events: Iterable[ChangeEvent], dead: list[DeadLetter],
              offsets: dict[tuple[str, int], int]) -> BatchPlan:
        routes = self._routes
        # per route: raw key → (event, effective after row)
        states: dict[str, dict[Any, tuple[ChangeEvent, dict[str, Any] | None]]] = {}
        # per route: raw key → the after image a delete of this batch superseded (see TablePlan.delete_images)
        pre_delete: dict[str, dict[Any, dict[str, Any]]] = {}
        changes = superseded = skipped = seen = 0
        for ev in events:
            seen += 1
            tp = (ev.topic, ev.partition)
            if ev.offset > offsets.get(tp, -1):
                offsets[tp] = ev.offset
            if ev.kind is not _CHANGE:
                skipped += 1
                continue
            op = ev.op
            if op is _MESSAGE:
                skipped += 1
                continue
            route = routes.get(ev.topic)
            if route is None:
                dead.append(_dead_letter(ev, "route", f"no projection for topic {ev.topic} "
                                                      f"(source table {ev.source_table})"))
                continue
            if op is _TRUNCATE:
                dead.append(_dead_letter(ev, "route", f"truncate of {ev.source_table} is not applied to the "
                                                      f"contract tables (re-snapshot the table)"))
                continue
            changes += 1
            row = ev.before if op is _DELETE else ev.after
            try:
                key = tuple([row[k] for k in route.key])  # type: ignore[index]
            except KeyError as exc:
                dead.append(_dead_letter(ev, "project", f"source column {exc.args[0]} missing in "
                                                        f"{route.table.source_table} (schema drift?)"))
                continue
            try:
                hash(key)
            except TypeError:
                dead.append(_dead_letter(ev, "decode", f"source key of {route.table.source_table} is not "
                                                       f"made of scalars: {key!r}"))
                continue
            table_states = states.get(ev.topic)
            if table_states is None:
                table_states = states[ev.topic] = {}
            prev = table_states.get(key)
            if prev is None:
                table_states[key] = (ev, row if op is not _DELETE else None)
                continue
            old = prev[0]
            if ev.position < old.position or (ev.position == old.position and ev.offset < old.offset):
                superseded += 1  # an older change arriving late (a replay): the newer one stays
                continue
            superseded += 1
            old_after = prev[1]
            if op is _DELETE:
                table_states[key] = (ev, None)
                if old_after is not None:
                    pre_delete.setdefault(ev.topic, {})[key] = old_after
            else:
                images = pre_delete.get(ev.topic)
                if images:
                    images.pop(key, None)
                if old_after is not None and _has_placeholder(row):  # type: ignore[arg-type]
                    table_states[key] = (ev, _fill_unavailable(row, old_after))  # type: ignore[arg-type]
                else:
                    table_states[key] = (ev, row)
        tables: dict[str, TablePlan] = {}
        for topic, table_states in states.items():
            self._emit(routes[topic], table_states, tables, dead, pre_delete.get(topic) or {})
        plan = BatchPlan(tables, dead, offsets)
        plan.records = seen
        plan.changes = changes
        plan.superseded = superseded
        plan.skipped = skipped
        return plan

    def _emit(self, route: _Route, table_states: dict[Any, tuple[ChangeEvent, dict[str, Any] | None]],
              tables: dict[str, TablePlan], dead: list[DeadLetter],
              pre_delete: dict[Any, dict[str, Any]] | None = None) -> None:
        table = route.table
        targets = route.targets
        plans = []
        for t in targets:
            tp = tables.get(t.physical_name)
            if tp is None:
                tp = tables[t.physical_name] = TablePlan(t.physical_name, t.key_columns, t.columns)
            plans.append(tp)
        pairs = tuple(zip(targets, plans, strict=True))
        decode_row = table.row_decoder
        pre_delete = pre_delete or {}
        for raw_key, (ev, after) in table_states.items():
            ts = _ts(ev.source_ts_ms)
            if after is None:  # delete
                try:
                    skey = table.decode_key(ev.before)  # type: ignore[arg-type]
                except (TypeDecodeError, ProjectionError) as exc:
                    stage = "decode" if isinstance(exc, TypeDecodeError) else "project"
                    for t, _ in pairs:
                        dead.append(_dead_letter(ev, stage, str(exc), t.physical_name))
                    continue
                image = pre_delete.get(raw_key)
                decoded_image = None
                if image is not None:
                    try:
                        decoded_image = decode_row(image)
                        if _UNAV in decoded_image.values():
                            decoded_image = None
                    except Exception:  # noqa: BLE001 - the image is optional; the delete still applies
                        decoded_image = None
                for t, tp in pairs:
                    tp.deletes.append((tuple([skey[i] for i in t.key_order]), ev.position, ts))
                    if decoded_image is not None:
                        try:
                            tp.delete_images[len(tp.deletes) - 1] = t.build(decoded_image, ev.position, ts, "d")
                        except Exception:  # noqa: BLE001 - an invalid image only loses the soft-delete values
                            pass
                continue
            position, op = ev.position, ev.op.value  # type: ignore[union-attr]
            try:
                decoded = decode_row(after)
                kept = _UNAV in decoded.values()
            except Exception:  # noqa: BLE001 - slow path: find out which targets are affected
                decoded = None
                kept = True
            for t, tp in pairs:
                try:
                    row_decoded = decoded if decoded is not None else _decode_subset(table, after, t.used_columns)
                    values = t.build(row_decoded, position, ts, op)
                except TypeDecodeError as exc:
                    dead.append(_dead_letter(ev, "decode", exc.reason, t.physical_name))
                    continue
                except ProjectionError as exc:
                    dead.append(_dead_letter(ev, "project", exc.reason, t.physical_name))
                    continue
                except ContractViolation as exc:
                    dead.append(_dead_letter(ev, "validate", exc.reason, t.physical_name))
                    continue
                except Exception as exc:  # noqa: BLE001 - one bad event never fails the batch
                    dead.append(_dead_letter(ev, "project", f"internal error: {type(exc).__name__}: {exc}",
                                             t.physical_name))
                    continue
                if kept and _UNAV in values:
                    _add_kept(tp, values)
                else:
                    tp.upserts.append(values)
                    if tp.keep_masks is not None:
                        tp.keep_masks.append((False,) * len(values))


def _add_kept(tp: TablePlan, values: tuple[Any, ...]) -> None:
    """Append a row with UNAVAILABLE columns: None in the row, True in its keep mask."""
    if tp.keep_masks is None:
        tp.keep_masks = [(False,) * len(values)] * len(tp.upserts)
    tp.keep_masks.append(tuple([v is _UNAV for v in values]))
    tp.upserts.append(tuple([None if v is _UNAV else v for v in values]))


def _decode_subset(table: TableProjection, row: dict[str, Any], columns: frozenset[str]) -> dict[str, Any]:
    out = {}
    for name, dec in table.decoders:
        if name in columns:
            if name not in row:
                raise ProjectionError(f"source column {name} missing in {table.source_table} (schema drift?)")
            out[name] = dec(row[name])
    return out


def _has_placeholder(row: dict[str, Any]) -> bool:
    values = tuple(row.values())
    return _PH in values or _PH_B64 in values or _PH_ARRAY in values


def _dead_letter(ev: ChangeEvent, stage: str, reason: str, target: str | None = None) -> DeadLetter:
    return DeadLetter(ev.topic, ev.partition, ev.offset, ev.raw_key, ev.raw_value, stage, reason, target)


_CACHE: dict[tuple[int, int], tuple[Any, Any, Planner]] = {}


def _planner(projections: Any, contracts: Any) -> Planner:
    k = (id(projections), id(contracts))
    hit = _CACHE.get(k)
    if hit is not None and hit[0] is projections and hit[1] is contracts:
        return hit[2]
    planner = Planner(projections, contracts)
    if len(_CACHE) >= 8:
        _CACHE.clear()
    _CACHE[k] = (projections, contracts, planner)
    return planner


def plan_batch(events: Sequence[ChangeEvent],
               projections: Mapping[str, TableProjection] | Projection | Iterable[Projection],
               contracts_by_physical_name: Mapping[str, ContractLike]) -> BatchPlan:
    """Plan decoded events. The compiled Planner is cached per (projections, contracts) object pair,
    so pass the same objects every batch (or build a `Planner` once and call `.plan`)."""
    return _planner(projections, contracts_by_physical_name).plan(events)


def plan_records(records: Iterable[Any],
                 projections: Mapping[str, TableProjection] | Projection | Iterable[Projection],
                 contracts_by_physical_name: Mapping[str, ContractLike]) -> BatchPlan:
    """Decode raw Kafka records and plan them (decode failures become dead letters, stage 'decode')."""
    return _planner(projections, contracts_by_physical_name).plan_records(records)
