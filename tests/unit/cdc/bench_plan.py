"""Micro-benchmark of the planner's hot path (not a test: run it by hand, no timing asserts).

    .venv/bin/python tests/unit/cdc/bench_plan.py [--events 200000] [--keys 40000] [--batch 10000] [--repeat 3]

Builds Debezium PG envelopes for public.orders (20% creates, 70% updates, 10% deletes over --keys keys,
each delete followed by its tombstone), serialises them to bytes like Kafka delivers them, then times
`Planner.plan_records` batch by batch: decode + route + reduce + project + validate.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cdc_helpers import ORDERS_PROJECTION, order_row, orders_contracts, pg_value  # noqa: E402

from pipelines.cdc.events import Record, parse  # noqa: E402
from pipelines.cdc.plan import Planner  # noqa: E402
from pipelines.projection import load_projection  # noqa: E402

TOPIC = "orders.public.orders"


def make_records(n: int, keys: int, seed: int = 7) -> list[Record]:
    rnd = random.Random(seed)
    live: set[int] = set()
    next_id = 1
    out: list[Record] = []
    lsn = 1_000_000
    while len(out) < n:
        lsn += rnd.randint(40, 400)
        r = rnd.random()
        if r < 0.2 or not live:
            key = next_id if next_id <= keys else rnd.randint(1, keys)
            next_id += 1
            live.add(key)
            value = pg_value("c", after=order_row(key, state_code=10), lsn=lsn)
        elif r < 0.9:
            key = rnd.choice(tuple(live)) if len(live) < 5000 else rnd.randint(1, max(live))
            live.add(key)
            meta = "__debezium_unavailable_value" if rnd.random() < 0.3 else '{"channel": "web"}'
            value = pg_value("u", after=order_row(key, state_code=rnd.choice((20, 30, 40, 95)),
                                                  total_cents=rnd.randint(100, 10**7), metadata=meta), lsn=lsn)
        else:
            key = rnd.choice(tuple(live)) if len(live) < 5000 else rnd.randint(1, max(live))
            live.discard(key)
            value = pg_value("d", before={"id": key, "customer_ref": 0, "state_code": 0, "total_cents": 0,
                                          "currency_iso": "", "created_ts": "1970-01-01T00:00:00Z",
                                          "modified_ts": "1970-01-01T00:00:00Z", "metadata": None}, lsn=lsn)
        k = orjson.dumps({"id": key})
        out.append(Record(TOPIC, 0, len(out), k, orjson.dumps(value)))
        if value["op"] == "d":
            out.append(Record(TOPIC, 0, len(out), k, None))
    return out[:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--keys", type=int, default=40_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    records = make_records(args.events, args.keys)
    planner = Planner(load_projection(ORDERS_PROJECTION), orders_contracts())
    batches = [records[i:i + args.batch] for i in range(0, len(records), args.batch)]

    # best of N, wall and CPU time: the machine is shared, and CPU time is what the planner costs
    parse_s = plan_s = plan_cpu = float("inf")
    rows = dead = 0
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for r in records:
            parse(r.topic, r.partition, r.offset, r.key, r.value)
        parse_s = min(parse_s, time.perf_counter() - t0)
        t0, c0 = time.perf_counter(), time.process_time()
        rows = dead = 0
        for b in batches:
            plan = planner.plan_records(b)
            rows += sum(len(t.upserts) + len(t.deletes) for t in plan.tables.values())
            dead += len(plan.dead_letters)
        plan_s = min(plan_s, time.perf_counter() - t0)
        plan_cpu = min(plan_cpu, time.process_time() - c0)
    n = len(records)
    print(f"{n} records, batch {args.batch}, {args.keys} keys, value ~{len(records[0].value)} bytes")
    print(f"parse only  : {n / parse_s:>10,.0f} events/s (wall)")
    print(f"plan_records: {n / plan_s:>10,.0f} events/s (wall), {n / plan_cpu:,.0f} events/s (CPU time); "
          f"{rows} target rows/deletes, {dead} dead letters")

if __name__ == "__main__":
    main()
