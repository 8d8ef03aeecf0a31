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
5. Truncates (op t) become `TablePlan.truncates` of every target of the source table; changes before
   a truncate in the batch are superseded by it (see `_supersede_by_truncate`).

Snapshot reads (op r) are upserts. One bad event never fails the batch: every per-event failure,
even an unexpected one, becomes a dead letter.

Key check: the Kafka key must name the row the value holds (op d: `before`, else `after`). A record
whose key says another row (e.g. key {"id":900099} with before.id 900006) is a dead letter (stage
'decode', no target) naming topic[partition]@offset, the key columns and both values; it is applied
under neither key. Tombstones (value null) carry only the key and produce no row. A record without a
key is not checked.

Performance: everything is compiled once per Planner (build it once, or let `plan_batch` cache it);
per event only the envelope is parsed and the key read until the batch is reduced. The Kafka key's
JSON is not parsed on the hot path: its bytes are compared with the key rendered from the row
(`_key_reader`), and parsed only when they differ byte-wise.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from pipelines.cdc.events import ChangeEvent, DecodeError, EventKind, Op, json_type, parse
from pipelines.cdc.types import (
    UNAVAILABLE,
    UNAVAILABLE_PLACEHOLDER,
    TypeDecodeError,
    is_placeholder,
    out_of_range,
)
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

STAGES = ("decode", "route", "drift", "project", "validate")
"""`drift`: the source's shape no longer matches the projection (a declared column is missing, or a value
has another kind than the declared type): heal with a projection fix, or `reporting resnapshot` once the
source is fixed."""


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
    truncates: list[tuple[int, datetime | None]] = field(default_factory=list)
    """The truncates of the source table in this batch, (source position, source ts), positions
    ascending. The adapter applies them in this order after `upserts`/`deletes`: each deletes every
    stored live row older than its position (soft or hard, per the contract). Changes of the batch that
    came before a truncate are not in `upserts`: a key they left live is in `deletes` at that
    truncate's position (with its last image in `delete_images`), as if the batch had ended there."""

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
    key_of: Callable[[dict[str, Any], bytes | None], tuple[Any, ...]]
    """(row image, raw Kafka key) → the row's key tuple; raises KeyError for a missing key column and
    _KeyMismatch when the Kafka key names another row (see `_key_reader`)."""


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
            self._routes[topic] = _Route(table, table.key, tuple(targets), _key_reader(table.key))

    @property
    def topics(self) -> tuple[str, ...]:
        """The Kafka topics this planner has projections for (what the consumer subscribes to)."""
        return tuple(self._routes)

    @property
    def feeds(self) -> dict[str, tuple[str, ...]]:
        """Topic and source table → the contract tables (physical names) its projection feeds.

        For attributing dead letters that failed before a target was known (pipelines.apply.status)."""
        out: dict[str, tuple[str, ...]] = {}
        for topic, route in self._routes.items():
            names = tuple(t.physical_name for t in route.targets)
            out[topic] = names
            out[route.table.source_table] = tuple(dict.fromkeys(out.get(route.table.source_table, ()) + names))
        return out

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
        # per route: the truncates of the batch, positions ascending (see _supersede_by_truncate)
        truncates: dict[str, list[ChangeEvent]] = {}
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
                changes += 1
                superseded += _supersede_by_truncate(ev, truncates, states.get(ev.topic), pre_delete)
                continue
            if truncates and ev.topic in truncates and ev.position < truncates[ev.topic][-1].position:
                changes += 1  # older than a truncate of this batch (a replay arriving late): truncated
                superseded += 1
                continue
            changes += 1
            row = ev.before if op is _DELETE else ev.after
            try:
                key = route.key_of(row, ev.raw_key)  # type: ignore[arg-type]
            except KeyError as exc:
                dead.append(_dead_letter(ev, "drift", f"source column {exc.args[0]} missing in "
                                                        f"{route.table.source_table} (schema drift?)"))
                continue
            except _KeyMismatch as exc:
                dead.append(_dead_letter(ev, "decode", exc.reason(ev, route, "before" if op is _DELETE else "after")))
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
        for topic, applied in truncates.items():
            _emit_truncates(routes[topic], applied, tables)
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
                    if isinstance(exc, TypeDecodeError):
                        stage, reason = _type_dead(exc, ev, table, "before")
                    else:
                        stage, reason = ("drift" if isinstance(exc, SourceColumnMissing) else "project"), str(exc)
                    for t, _ in pairs:
                        dead.append(_dead_letter(ev, stage, reason, t.physical_name))
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
                    dead.append(_dead_letter(ev, *_type_dead(exc, ev, table, "after"), t.physical_name))
                    continue
                except SourceColumnMissing as exc:
                    dead.append(_dead_letter(ev, "drift", exc.reason, t.physical_name))
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
                raise SourceColumnMissing(f"source column {name} missing in {table.source_table} (schema drift?)")
            out[name] = dec(row[name])
    return out


def _has_placeholder(row: dict[str, Any]) -> bool:
    values = tuple(row.values())
    return _PH in values or _PH_B64 in values or _PH_ARRAY in values


def _dead_letter(ev: ChangeEvent, stage: str, reason: str, target: str | None = None) -> DeadLetter:
    return DeadLetter(ev.topic, ev.partition, ev.offset, ev.raw_key, ev.raw_value, stage, reason, target)


# --- the Kafka key against the row's key -----------------------------------------------------------

_dumps = orjson.dumps


class SourceColumnMissing(ProjectionError):
    """A column the projection declares is absent from the change event: the source's shape drifted."""


class _KeyMismatch(Exception):  # noqa: N818 - control flow inside the planner, never leaves it
    """The Kafka key does not name the row the value holds (raised by `_check_kafka_key`)."""

    def __init__(self, key_says: str, value_says: str) -> None:
        super().__init__(key_says)
        self.key_says = key_says
        self.value_says = value_says

    def reason(self, ev: ChangeEvent, route: _Route, image: str) -> str:
        cols = ", ".join(route.key)
        return (f"Kafka key does not match the primary key in the value at {ev.topic}[{ev.partition}]@{ev.offset} "
                f"({route.table.source_table}, key columns {cols}): the key says {self.key_says}, "
                f"the value's '{image}' row says {self.value_says}; not applied under either key")


def _render(columns: tuple[str, ...], values: Sequence[Any]) -> str:
    """`900006` for one key column, `(2, 1)` for several; values as JSON (strings quoted)."""
    parts = [_dumps(v).decode() for v in values]
    return parts[0] if len(columns) == 1 else f"({', '.join(parts)})"


def _check_kafka_key(raw: bytes, columns: tuple[str, ...], values: tuple[Any, ...]) -> None:
    """Slow path, when the raw key is not byte-equal to the key rendered from the row: parse it and
    compare column by column. Returns when they agree (other spacing, key order or escaping, the
    schemas-enabled `{"schema", "payload"}` wrapper, extra key columns); raises _KeyMismatch."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _KeyMismatch(f"nothing readable (not valid JSON: {exc})", _render(columns, values)) from None
    if type(obj) is dict and len(obj) == 2 and obj.keys() == {"schema", "payload"}:
        obj = obj["payload"]
    if type(obj) is not dict:
        raise _KeyMismatch(f"{_shown_json(raw)} (a JSON {json_type(obj)}, not an object)", _render(columns, values))
    missing = [c for c in columns if c not in obj]
    if missing:
        raise _KeyMismatch(f"{_shown_json(raw)} (no column {', '.join(missing)})", _render(columns, values))
    found = [obj[c] for c in columns]
    for a, b in zip(found, values, strict=True):
        if type(a) is not type(b) or a != b:
            raise _KeyMismatch(_render(columns, found), _render(columns, values))


def _shown_json(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return text if len(text) <= 80 else text[:77] + "..."


def _key_reader(columns: tuple[str, ...]) -> Callable[[dict[str, Any], bytes | None], tuple[Any, ...]]:
    """A generated `key_of(row, raw_key)` for one source key (hot path: once per row change).

    It reads the key columns from the row image and, when the record has a Kafka key, compares the
    key's bytes with the key rendered from those columns the way Debezium's JSON converter writes it
    (`{"id":42}`: orjson's compact output is the same text). Byte-equal is the normal case and costs
    one small dict and one orjson.dumps; anything else goes to `_check_kafka_key`, which parses the key.
    A record without a Kafka key (None) is not checked: there is nothing to compare.
    """
    names = [f"k{i}" for i in range(len(columns))]
    as_tuple = f"({', '.join(names)},)"
    as_dict = "{" + ", ".join(f"{c!r}: {n}" for c, n in zip(columns, names, strict=True)) + "}"
    lines = ["def key_of(row, raw):"]
    lines += [f"    {n} = row[{c!r}]" for c, n in zip(columns, names, strict=True)]
    lines += [f"    if raw is not None and raw != _dumps({as_dict}):",
              f"        _check(raw, _columns, {as_tuple})",
              f"    return {as_tuple}"]
    ns: dict[str, Any] = {"_dumps": _dumps, "_check": _check_kafka_key, "_columns": columns}
    exec(compile("\n".join(lines) + "\n", "<generated key reader>", "exec"), ns)  # noqa: S102 - names are repr()s
    return ns["key_of"]


# --- reasons that say what was written --------------------------------------------------------------

_INT_TYPES = frozenset({"tinyint", "smallint", "mediumint", "integer", "bigint"})


def _type_dead(exc: TypeDecodeError, ev: ChangeEvent, table: TableProjection, image: str) -> tuple[str, str]:
    """(stage, reason) of a value that does not decode: 'drift' when it is of another kind than the
    declared type (the source column's type changed), else 'decode' (e.g. an integer out of range)."""
    reason = _type_reason(exc, ev, table, image)
    return ("drift" if exc.wrong_kind and reason == exc.reason else "decode"), reason


def _type_reason(exc: TypeDecodeError, ev: ChangeEvent, table: TableProjection, image: str) -> str:
    """`exc.reason`, except for a float in an integer column: orjson reads an integer literal beyond
    64 bits as a float, so the raw value is read again with the standard library (exact integers) to
    report the number as written: `... 1000000000000000000000000000000 is out of range for bigint`.
    Only on this error path; the hot path never parses twice."""
    if type(exc.value) is not float or exc.type_name not in _INT_TYPES or ev.raw_value is None:
        return exc.reason
    prefix = f"{table.source_table}."
    column = exc.column[len(prefix):] if exc.column.startswith(prefix) else exc.column
    try:
        env = json.loads(ev.raw_value)
        if type(env) is dict and env.keys() == {"schema", "payload"}:
            env = env["payload"]
        written = env[image][column]
    except Exception:  # noqa: BLE001 - an unreadable value keeps the decoder's reason
        return exc.reason
    if type(written) is not int:
        return exc.reason  # a real float literal (e.g. 12.5 or 1e30): "(got float)" is right
    return out_of_range(exc.column, exc.type_name, written, str(written)).reason


# --- truncate (op t) ---------------------------------------------------------------------------------
# A truncate carries no key and no row: it deletes every row of its source table. In a batch it acts
# at its position: changes before it are superseded (a key they left live becomes a delete at the
# truncate's position, keeping its last image, as if the batch had ended at the truncate and the
# adapter's truncate had soft-deleted the stored row), changes after it are planned as usual, and a
# change older than it arriving later (a replay) is dropped. `TablePlan.truncates` tells the adapter
# to delete every stored row older than each truncate (apply/sql.py truncate_statements).

def _truncate_delete(truncate: ChangeEvent, image: dict[str, Any]) -> ChangeEvent:
    """The delete of one key that a truncate superseded: the truncate's position, time and record,
    `before` = the key's last row image (the key is read from it)."""
    return ChangeEvent(_CHANGE, _DELETE, truncate.source_table, truncate.engine, image, None, None,
                       truncate.position, truncate.source_ts_ms, truncate.tx_id, truncate.topic,
                       truncate.partition, truncate.offset, truncate.raw_key, truncate.raw_value)


def _supersede_by_truncate(ev: ChangeEvent, truncates: dict[str, list[ChangeEvent]],
                           table_states: dict[Any, tuple[ChangeEvent, dict[str, Any] | None]] | None,
                           pre_delete: dict[str, dict[Any, dict[str, Any]]]) -> int:
    """Record truncate `ev` of its topic and supersede the batch's older live states; returns how many
    changes it superseded. A truncate not newer than the last one of the batch changes nothing: every
    row older than it was deleted by that one already."""
    applied = truncates.get(ev.topic)
    if applied and ev.position <= applied[-1].position:
        return 1
    if applied is None:
        applied = truncates[ev.topic] = []
    applied.append(ev)
    if not table_states:
        return 0
    images = None
    n = 0
    for key, (old, after) in table_states.items():
        if after is None or old.position > ev.position:
            continue  # deleted already (not live at the truncate), or newer than the truncate (kept)
        table_states[key] = (_truncate_delete(ev, after), None)
        if images is None:
            images = pre_delete.setdefault(ev.topic, {})
        images[key] = after
        n += 1
    return n


def _emit_truncates(route: _Route, applied: list[ChangeEvent], tables: dict[str, TablePlan]) -> None:
    for t in route.targets:
        tp = tables.get(t.physical_name)
        if tp is None:
            tp = tables[t.physical_name] = TablePlan(t.physical_name, t.key_columns, t.columns)
        tp.truncates = [(ev.position, _ts(ev.source_ts_ms)) for ev in applied]


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
