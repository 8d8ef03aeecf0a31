"""Do two targets hold the same orders? Rows of each shape are brought to one canonical tuple.

Canonical order row: (order_id, customer_id, status (v2 name), total cents, currency (upper),
placed_at µs, updated_at µs, sales_channel). The private shape (the JDBC sink's table, the
workload's expected state) goes through the orders projection's v2 rules; our contract table
`reporting.orders_v2` (live rows, `_deleted_at IS NULL`) is read as is. Pure apart from the
`fetch_*` helpers, which only run SELECTs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal

import orjson

V2_STATUS = {10: "PLACED", 20: "PAID", 30: "PACKED", 40: "SHIPPED", 90: "CANCELLED", 95: "REFUNDED"}

Canon = tuple


def _us(value: object) -> int:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return round(value.timestamp() * 1_000_000)
    raise TypeError(f"not a timestamp: {value!r}")


def _channel(metadata: object) -> str | None:
    if metadata is None:
        return None
    if isinstance(metadata, (str, bytes)):
        metadata = orjson.loads(metadata)
    value = metadata.get("channel") if isinstance(metadata, Mapping) else None
    return None if value is None else str(value)


def from_private(oid: int, customer_ref: int, state_code: int, total_cents: int, currency_iso: str,
                 created_ts: object, modified_ts: object, metadata: object) -> Canon:
    return (int(oid), int(customer_ref), V2_STATUS[int(state_code)], int(total_cents),
            currency_iso.strip().upper(), _us(created_ts), _us(modified_ts), _channel(metadata))


def from_orders_v2(order_id: int, customer_id: int, order_status: str, total_amount: Decimal | float,
                   currency: str, order_placed_at: object, updated_at: object, sales_channel: str | None) -> Canon:
    cents = int((Decimal(str(total_amount)) * 100).to_integral_value())
    return (int(order_id), int(customer_id), order_status, cents, currency, _us(order_placed_at), _us(updated_at),
            sales_channel)


def expected_rows(rows: Mapping[int, Mapping]) -> dict[int, Canon]:
    """Canonical rows of a workload's final private state ({id: after image})."""
    return {oid: from_private(r["id"], r["customer_ref"], r["state_code"], r["total_cents"], r["currency_iso"],
                              r["created_ts"], r["modified_ts"], r["metadata"]) for oid, r in rows.items()}


def diff(a: Mapping[int, Canon], b: Mapping[int, Canon], show: int = 5) -> dict:
    """Counts of keys only in a, only in b, and in both with different values; a few examples."""
    only_a = [k for k in a if k not in b]
    only_b = [k for k in b if k not in a]
    differ = [k for k in a if k in b and a[k] != b[k]]
    return {"identical": not (only_a or only_b or differ), "rows_a": len(a), "rows_b": len(b),
            "only_a": len(only_a), "only_b": len(only_b), "different": len(differ),
            "examples": [{"key": k, "a": a[k], "b": b[k]} for k in differ[:show]]
            + [{"key": k, "only": "a"} for k in only_a[:show]] + [{"key": k, "only": "b"} for k in only_b[:show]]}


SINK_SELECT = ("SELECT id, customer_ref, state_code, total_cents, currency_iso, created_ts, modified_ts, metadata "
               "FROM {table}")
V2_SELECT = ("SELECT order_id, customer_id, order_status, total_amount, currency, order_placed_at, updated_at, "
             "sales_channel FROM reporting.orders_v2 WHERE _deleted_at IS NULL")


def canon_private(rows: Iterable[tuple]) -> dict[int, Canon]:
    out = {}
    for r in rows:
        c = from_private(*r)
        out[c[0]] = c
    return out


def canon_v2(rows: Iterable[tuple]) -> dict[int, Canon]:
    out = {}
    for r in rows:
        c = from_orders_v2(*r)
        out[c[0]] = c
    return out
