"""The DuckLake engine: a small server run by the DuckLake venv's interpreter (never imported by the product).

DuckLake's DuckDB extension is published only for DuckDB 1.5.x while the product runs DuckDB 2.0.x, whose
small statements cost about half (measured 2026-12-02: a 20-row MERGE into 100,000 rows, p50 ~3.2 ms on
2.0.1 against ~6 ms on 1.5.5). So the product stays on 2.0 and DuckLake runs here, in a process of its own
with DuckDB 1.5.5 (`pipelines/ducklake/requirements.lock`), driven over stdin/stdout by
`pipelines/ducklake/client.py`: one request, one answer, each a length-prefixed pickle. Only the standard
library, duckdb and pyarrow are imported.

Requests (tuples): ("open", {catalog, data_path, read_only, extensions, inlining, snapshot_time}),
("execute", sql, params), ("query", sql, params), ("query_described", sql, params),
("stage", name, arrow_ipc_bytes), ("unstage", name), ("close",).
Answers: ("ok", value) or ("error", exception class name, message).
"""

from __future__ import annotations

import datetime as dt
import io
import pickle
import struct
import sys


def _frames_in(stream):
    while True:
        head = stream.read(4)
        if len(head) < 4:
            return
        (size,) = struct.unpack(">I", head)
        yield pickle.loads(stream.read(size))  # noqa: S301 - our own client, over a private pipe


def _send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


def _plain(value):
    """Values the product's interpreter can unpickle without DuckDB's or pytz's classes."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    return value


class Engine:
    def __init__(self) -> None:
        self.con = None
        self.name = "lake"

    def open(self, cfg: dict) -> str:
        import duckdb

        self.con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                                      "autoload_known_extensions": False})
        for path in cfg["extensions"]:  # the extension files of the venv's wheels: nothing is downloaded
            self.con.execute(f"LOAD '{path}'")
        self.con.execute("SET TimeZone = 'UTC'")
        options = []
        if not cfg.get("read_only"):
            options.append(f"DATA_PATH '{cfg['data_path']}'")
            if cfg.get("inlining") is not None:
                options.append(f"DATA_INLINING_ROW_LIMIT {int(cfg['inlining'])}")
        else:
            options.append("READ_ONLY")
            if cfg.get("snapshot_time"):  # the whole lake as it was then (history)
                options.append("SNAPSHOT_TIME '" + str(cfg["snapshot_time"]).replace("'", "''") + "'")
        self.con.execute(f"ATTACH 'ducklake:{cfg['catalog']}' AS {self.name} ({', '.join(options)})")
        self.con.execute(f"USE {self.name}")
        return duckdb.__version__

    def execute(self, sql: str, params) -> None:
        self.con.execute(sql, params) if params is not None else self.con.execute(sql)

    def query(self, sql: str, params) -> list[tuple]:
        cur = self.con.execute(sql, params) if params is not None else self.con.execute(sql)
        return [tuple(_plain(v) for v in row) for row in cur.fetchall()]

    def query_described(self, sql: str, params) -> tuple[list[str], list[tuple]]:
        """(column names, rows); no columns for a statement that returns none."""
        cur = self.con.execute(sql, params) if params is not None else self.con.execute(sql)
        if not cur.description:
            return [], []
        return [d[0] for d in cur.description], [tuple(_plain(v) for v in row) for row in cur.fetchall()]

    def stage(self, name: str, ipc: bytes) -> None:
        import pyarrow as pa

        self.con.register(name, pa.ipc.open_stream(io.BytesIO(ipc)).read_all())

    def unstage(self, name: str) -> None:
        self.con.unregister(name)

    def close(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None


def main() -> int:
    engine = Engine()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers on the answer pipe
    for request in _frames_in(stdin):
        op, args = request[0], request[1:]
        try:
            value = getattr(engine, op)(*args)
            _send(stdout, ("ok", value))
        except Exception as exc:  # noqa: BLE001 - every error goes back to the client, which raises it
            _send(stdout, ("error", type(exc).__name__, str(exc)))
        if op == "close":
            return 0
    engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
