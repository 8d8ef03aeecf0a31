"""Compiled projections: private source row → contract rows. Pure; built by pipelines.projection.loader.

A `Projection` is one service's projection file. It holds one `TableProjection` per source table
(e.g. `public.orders`), which holds one `TargetProjection` per contract table it feeds (`orders_v1`,
`orders_v2`). Everything is compiled once at load time: per source column a strict type decoder, per
target column a closure. `TableProjection.topic` (`<topic prefix>.<source table>`) is the routing key
from a Kafka topic to its projection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.projection.errors import ProjectionError
from pipelines.projection.expr import CompiledExpr
from pipelines.projection.fastpath import dict_decoder

__all__ = ["Projection", "TableProjection", "TargetProjection"]

Decoder = Callable[[Any], Any]


@dataclass(frozen=True)
class TargetProjection:
    """How one contract table (`<table>_v<major>`) is computed from one source row."""

    physical_name: str
    columns: tuple[str, ...]
    """Target (contract) column names, in file order."""
    expressions: tuple[CompiledExpr, ...]
    """One compiled expression per entry of `columns`."""
    key_columns: tuple[str, ...]
    """Target columns that carry the source key (plain references), in the source key's order."""
    line: int | None = None

    def expression(self, column: str) -> CompiledExpr:
        return self.expressions[self.columns.index(column)]

    def project_decoded(self, decoded: dict[str, Any]) -> dict[str, Any]:
        """Target row (column → value) from an already decoded source row."""
        return {c: e.fn(decoded) for c, e in zip(self.columns, self.expressions, strict=True)}


@dataclass(frozen=True)
class TableProjection:
    """Everything the pipeline needs for one source table of one service."""

    service: str
    engine: str
    topic: str
    """The Kafka topic of the table: `<topic prefix>.<schema or db>.<table>`; the routing key."""
    source_table: str
    """Debezium's name of the table: `public.orders` (PG schema.table) or `warehouse.stock` (db.table)."""
    key: tuple[str, ...]
    """Source primary-key columns."""
    column_types: Mapping[str, str]
    """Declared source column → canonical source type (pipelines.cdc.types.canonical_type)."""
    targets: tuple[TargetProjection, ...]
    path: Path | None = None
    decoders: tuple[tuple[str, Decoder], ...] = field(default=(), repr=False)
    key_decoders: tuple[tuple[str, Decoder], ...] = field(default=(), repr=False)
    row_decoder: Callable[[Mapping[str, Any]], dict[str, Any]] = field(default=None, repr=False,  # type: ignore[assignment]
                                                                       compare=False)
    """`decode_row` as one generated function (set from `decoders`; the planner calls it directly)."""

    def __post_init__(self) -> None:
        if self.row_decoder is None:
            object.__setattr__(self, "row_decoder", dict_decoder(self.decoders, self._missing))

    def _missing(self, column: str) -> ProjectionError:
        return ProjectionError(f"source column {column} missing in {self.source_table} (schema drift?)")

    def decode_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Decode the declared columns of a raw Debezium row image.

        Unknown extra columns are ignored (tolerant reader). Raises ProjectionError when a declared
        column is absent, TypeDecodeError when a value does not have its declared type.
        """
        return self.row_decoder(row)

    def decode_key(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        """The decoded source key of a row image (for a delete: its `before`, whose other columns
        are placeholders under REPLICA IDENTITY DEFAULT)."""
        out = []
        for name, dec in self.key_decoders:
            try:
                raw = row[name]
            except KeyError:
                raise self._missing(name) from None
            out.append(dec(raw))
        return tuple(out)

    def target(self, physical_name: str) -> TargetProjection:
        for t in self.targets:
            if t.physical_name == physical_name:
                return t
        raise KeyError(f"{self.source_table} has no target {physical_name!r}")

    def project(self, row: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Raw source row → {target physical name: {column: value}}.

        Values are decoded and evaluated; UNAVAILABLE (TOAST) propagates to every target column that
        depends on it. Contract validation is separate (pipelines.projection.validate).
        """
        decoded = self.decode_row(row)
        return {t.physical_name: t.project_decoded(decoded) for t in self.targets}


@dataclass(frozen=True)
class Projection:
    """One service's projection file."""

    service: str
    engine: str
    topic_prefix: str
    tables: Mapping[str, TableProjection]
    """Source table name (`public.orders`) → its projection."""
    path: Path | None = None

    @property
    def by_topic(self) -> dict[str, TableProjection]:
        """Kafka topic → table projection (what the planner routes with)."""
        return {t.topic: t for t in self.tables.values()}

    def table(self, source_table: str) -> TableProjection:
        try:
            return self.tables[source_table]
        except KeyError:
            raise ProjectionError(f"no projection for source table {source_table} in service {self.service}",
                                  self.path) from None

    def project(self, source_table: str, row: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Raw source row of `source_table` → {target physical name: {column: value}}."""
        return self.table(source_table).project(row)
