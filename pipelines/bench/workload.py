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
