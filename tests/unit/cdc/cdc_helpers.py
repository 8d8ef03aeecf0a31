"""Shared helpers for cdc unit tests: contract stand-ins, event builders (imported by the tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pipelines.cdc.events import Record

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "events"
ORDERS_PROJECTION = REPO / "connectors" / "orders" / "projection.yaml"
PLACEHOLDER = "__debezium_unavailable_value"


@dataclass(frozen=True)
class Col:
    """Stand-in for pipelines.contract.model.Column (only what validation reads)."""

    name: str
    base_type: str
    required: bool = True
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    enum: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Contract:
    """Stand-in for pipelines.contract.model.Contract."""

    columns: tuple[Col, ...]
    primary_key: tuple[str, ...]


ORDER_STATUS_V1 = ("PLACED", "PAID", "PACKED", "SHIPPED", "CANCELLED")


def orders_contracts() -> dict[str, Contract]:
    """The orders-owned contract tables of reporting_schema/ (orders v1, orders v2, order_lines v1)."""
    money = dict(precision=12, scale=2)
    return {
        "orders_v1": Contract((
            Col("order_id", "bigint"), Col("customer_id", "bigint"),
            Col("status", "varchar", length=16, enum=ORDER_STATUS_V1),
            Col("total_amount", "decimal", **money), Col("currency", "varchar", length=3),
            Col("placed_at", "timestamptz"), Col("updated_at", "timestamptz"),
        ), ("order_id",)),
        "orders_v2": Contract((
            Col("order_id", "bigint"), Col("customer_id", "bigint"),
            Col("order_status", "varchar", length=16, enum=(*ORDER_STATUS_V1, "REFUNDED")),
            Col("total_amount", "decimal", **money), Col("currency", "varchar", length=3),
            Col("order_placed_at", "timestamptz"), Col("updated_at", "timestamptz"),
            Col("sales_channel", "varchar", required=False, length=32),
        ), ("order_id",)),
        "order_lines_v1": Contract((
            Col("order_id", "bigint"), Col("line_number", "integer"), Col("sku", "varchar", length=32),
            Col("quantity", "integer"), Col("unit_price", "decimal", **money),
            Col("line_amount", "decimal", **money),
        ), ("order_id", "line_number")),
    }


def order_row(id_: int = 1, **changes: Any) -> dict[str, Any]:
    """A raw public.orders row image as the PG connector sends it (internal columns included)."""
    row = {
        "id": id_, "customer_ref": 501, "state_code": 10, "total_cents": 12345, "currency_iso": "eur",
        "created_ts": "2024-11-25T09:58:41.5Z", "modified_ts": "2024-11-25T10:00:00.123456Z",
        "fraud_score": "0.0420", "internal_note": "call back", "terms_snapshot": "terms...",
        "metadata": '{"channel": "web"}',
    }
    row.update(changes)
    return row


def pg_value(op: str, table: str = "orders", *, after: dict | None = None, before: dict | None = None,
             lsn: int = 1000, ts_ms: int = 1732528800000, tx: int = 600) -> dict[str, Any]:
    return {
        "before": before, "after": after,
        "source": {"version": "3.0.8.Final", "connector": "postgresql", "name": "orders", "ts_ms": ts_ms,
                   "snapshot": "true" if op == "r" else "false", "db": "orders", "sequence": None,
                   "ts_us": ts_ms * 1000, "ts_ns": ts_ms * 1000000, "schema": "public", "table": table,
                   "txId": tx, "lsn": lsn, "xmin": None},
        "transaction": None if op == "r" else {"id": f"{tx}:{lsn}", "total_order": 1, "data_collection_order": 1},
        "op": op, "ts_ms": ts_ms + 5,
    }


def rec(value: dict | None, offset: int, *, topic: str = "orders.public.orders", key: Any = None,
        partition: int = 0) -> Record:
    if key is None and value is not None:
        row = value.get("after") or value.get("before") or {}
        key = {"id": row.get("id")}
    return Record(topic, partition, offset, None if key is None else orjson.dumps(key),
                  None if value is None else orjson.dumps(value))
