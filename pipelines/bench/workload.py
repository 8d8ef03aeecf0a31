"""Synthetic Debezium change streams for benchmarks: the issue's mix, deterministic for a seed.

`orders_changes(n_events, n_keys, seed)` yields (key bytes, value bytes) of Debezium PostgreSQL
plain-JSON envelopes for `orders.public.orders` (the orders service's private table): 20% creates,
70% updates, 10% deletes (each delete followed by its tombstone, as Debezium does), over a key
space of `n_keys`, with increasing LSNs. Updates and deletes only touch keys that exist.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import orjson

TOPIC = "orders.public.orders"
_T0_US = 1_795_000_000_000_000  # 2026-11-18, microseconds


def _after(oid: int, state: int, cents: int, ts_us: int) -> dict:
    iso = _iso(ts_us)
    return {"id": oid, "customer_ref": oid % 5000 + 1, "state_code": state, "total_cents": cents,
            "currency_iso": "eur" if oid % 3 else "gbp", "created_ts": iso, "modified_ts": iso,
            "terms_snapshot": "__debezium_unavailable_value", "metadata": '{"channel": "web"}'}


def _iso(ts_us: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts_us / 1e6, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def orders_changes(n_events: int, n_keys: int = 200_000, seed: int = 1) -> Iterator[tuple[bytes, bytes | None]]:
    rng = random.Random(seed)
    live: list[int] = []
    index: dict[int, int] = {}
    next_id = 1
    lsn = 30_000_000
    emitted = 0
    dumps = orjson.dumps
    while emitted < n_events:
        lsn += 64
        ts_us = _T0_US + lsn
        roll = rng.random()
        source = {"version": "3.6.1.Final", "connector": "postgresql", "name": "orders", "ts_ms": ts_us // 1000,
                  "snapshot": "false", "db": "orders", "schema": "public", "table": "orders", "txId": lsn // 64,
                  "lsn": lsn}
        if (roll < 0.2 or len(live) < 100) and next_id <= n_keys or not live:
            oid = next_id
            next_id += 1
            index[oid] = len(live)
            live.append(oid)
            env = {"before": None, "after": _after(oid, 10, rng.randint(500, 90_000), ts_us), "source": source,
                   "op": "c", "ts_ms": ts_us // 1000}
        elif roll < 0.9 or len(live) < 100:
            oid = live[rng.randrange(len(live))]
            env = {"before": None, "after": _after(oid, rng.choice((20, 30, 40, 90, 95)), rng.randint(500, 90_000),
                                                   ts_us),
                   "source": source, "op": "u", "ts_ms": ts_us // 1000}
        else:
            i = rng.randrange(len(live))
            oid = live[i]
            last = live.pop()
            if i < len(live):
                live[i] = last
                index[last] = i
            del index[oid]
            env = {"before": {"id": oid}, "after": None, "source": source, "op": "d", "ts_ms": ts_us // 1000}
            key = dumps({"id": oid})
            yield key, dumps(env)
            emitted += 1
            if emitted < n_events:
                yield key, None
                emitted += 1
            continue
        yield dumps({"id": oid}), dumps(env)
        emitted += 1


# --------------------------------------------------------------------------- the JDBC sink's copy
# The Debezium JDBC sink needs Connect schemas; our topics are schemaless JSON (the connectors run with
# value.converter.schemas.enable=false). The peer therefore reads a second copy of the same events,
# each wrapped as JsonConverter writes them with schemas enabled: {"schema": ..., "payload": <same>}.
# The value schema is the Debezium envelope (name ending in `.Envelope`), so the sink consumes it
# natively, extracting `after` exactly as ExtractNewRecordState would (no SMT needed).

def _field(name: str, type_: str, optional: bool = True, schema_name: str | None = None) -> dict:
    f = {"type": type_, "optional": optional, "field": name}
    if schema_name:
        f["name"] = schema_name
        f["version"] = 1
    return f


def _row_schema(topic_prefix: str) -> dict:
    return {"type": "struct", "optional": True, "name": f"{topic_prefix}.Value", "fields": [
        _field("id", "int64", optional=False),
        _field("customer_ref", "int64"),
        _field("state_code", "int16"),
        _field("total_cents", "int64"),
        _field("currency_iso", "string"),
        _field("created_ts", "string", schema_name="io.debezium.time.ZonedTimestamp"),
        _field("modified_ts", "string", schema_name="io.debezium.time.ZonedTimestamp"),
        _field("terms_snapshot", "string"),
        _field("metadata", "string", schema_name="io.debezium.data.Json"),
    ]}


def envelope_schemas(topic: str) -> tuple[bytes, bytes]:
    """(key schema, value schema) as JSON bytes for `topic`, in Debezium PostgreSQL's shape."""
    key = {"type": "struct", "optional": False, "name": f"{topic}.Key", "fields": [_field("id", "int64", False)]}
    source = {"type": "struct", "optional": False, "name": "io.debezium.connector.postgresql.Source", "fields": [
        _field("version", "string", False), _field("connector", "string", False), _field("name", "string", False),
        _field("ts_ms", "int64", False), _field("snapshot", "string"), _field("db", "string", False),
        _field("schema", "string", False), _field("table", "string", False), _field("txId", "int64"),
        _field("lsn", "int64")]}
    value = {"type": "struct", "optional": False, "name": f"{topic}.Envelope", "version": 2, "fields": [
        {**_row_schema(topic), "field": "before"}, {**_row_schema(topic), "field": "after"},
        {**source, "field": "source"}, _field("op", "string", False), _field("ts_ms", "int64")]}
    return orjson.dumps(key), orjson.dumps(value)


def with_schemas(changes: Iterator[tuple[bytes, bytes | None]], topic: str) -> Iterator[tuple[bytes, bytes | None]]:
    """The same (key, value) stream as JsonConverter-with-schemas bytes (tombstones stay None)."""
    key_schema, value_schema = envelope_schemas(topic)
    kpre, vpre = b'{"schema":' + key_schema + b',"payload":', b'{"schema":' + value_schema + b',"payload":'
    for k, v in changes:
        yield kpre + k + b"}", (None if v is None else vpre + v + b"}")


class FinalState:
    """The private rows that must remain after applying a change stream (creates/updates upsert,
    deletes remove), built while the stream is produced; both targets are checked against it."""

    def __init__(self) -> None:
        self.rows: dict[int, dict] = {}
        self.events = 0

    def feed(self, key: bytes, value: bytes | None) -> None:
        self.events += 1
        if value is None:
            return
        env = orjson.loads(value)
        if env["op"] == "d":
            self.rows.pop(env["before"]["id"], None)
        else:
            self.rows[env["after"]["id"]] = env["after"]

    def totals(self) -> tuple[int, int]:
        """(live rows, sum of total_cents): what a target must show when it is complete."""
        return len(self.rows), sum(r["total_cents"] for r in self.rows.values())
