"""A stand-in for `reporting stream` on DuckDB, run as its own process by the replica tests.

    python -m tests.integration.bi.duckdb_writer <main.duckdb> <replica.duckdb> <every_s>

Holds the main file read-write and, until SIGTERM, applies batches: each batch inserts 100 orders
and 200 order lines (2 per order) in ONE transaction, then calls the replica publisher, exactly where
the worker calls it. A consistent replica therefore always has lines == 2 * orders.
"""

from __future__ import annotations

import signal
import sys

import duckdb

from pipelines.bi.replica import ReplicaPublisher

ORDERS_PER_BATCH = 100


def main(main_path: str, replica: str, every_s: float) -> None:
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    conn = duckdb.connect(main_path)
    conn.execute("CREATE SCHEMA IF NOT EXISTS reporting")
    conn.execute("CREATE TABLE IF NOT EXISTS reporting.orders_v1 (order_id BIGINT PRIMARY KEY, batch INTEGER NOT NULL)")
    conn.execute("CREATE TABLE IF NOT EXISTS reporting.order_lines_v1 (order_id BIGINT NOT NULL, "
                 "line_number INTEGER NOT NULL, batch INTEGER NOT NULL, PRIMARY KEY (order_id, line_number))")
    publisher = ReplicaPublisher(replica, every_s)
    print("writing", flush=True)
    batch = 0
    while not stop:
        batch += 1
        first = (batch - 1) * ORDERS_PER_BATCH
        conn.execute("BEGIN TRANSACTION")
        conn.execute("INSERT INTO reporting.orders_v1 SELECT range, ? FROM range(?, ?)",
                     [batch, first, first + ORDERS_PER_BATCH])
        conn.execute("INSERT INTO reporting.order_lines_v1 SELECT o.range, l.range, ? FROM range(?, ?) o, range(1, 3) l",
                     [batch, first, first + ORDERS_PER_BATCH])
        conn.execute("COMMIT")
        publisher.maybe_publish(conn)
    final = publisher.close(conn)
    conn.close()
    print(f"stopped after {batch} batches; last replica {final.rows if final else None} rows", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
