"""The product's side of the DuckLake engine (`engine.py`, run by the DuckLake venv's interpreter).

`EngineProcess` starts the engine, sends one request at a time and returns its answer. An error the engine
reports is raised here as the product's DuckDB exception class of the same name (duckdb.IOException,
duckdb.TransactionException, duckdb.BinderException ...), so retry classification (apply/retry.py) and error
handling treat the DuckLake backend like the DuckDB file; an engine that died raises ConnectionError.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import subprocess
from pathlib import Path

import duckdb
import pyarrow as pa

ENGINE = Path(__file__).with_name("engine.py")


CATALOG_BUSY = ("database is locked",)
"""SQLite's answer when another process's commit holds the catalog (DuckLake raises it as a plain Error): a
concurrent writer won this time, as with a refused commit, so it comes back as a TransactionException and
the batch is retried like any conflict."""


def remote_error(name: str, message: str) -> Exception:
    """The product's duckdb exception class called `name` (duckdb.Error for unknown names)."""
    cls = getattr(duckdb, name, None)
    if not (isinstance(cls, type) and issubclass(cls, duckdb.Error)):
        cls = duckdb.Error
    if any(busy in message for busy in CATALOG_BUSY) and not issubclass(cls, duckdb.TransactionException):
        cls = duckdb.TransactionException
    return cls(message)


def arrow_ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


class EngineProcess:
    """`env`: variables added to the engine's environment (PGPASSWORD of a PostgreSQL catalog: libpq reads
    it, so the password is in no connection string DuckDB could quote in an error); any of their values
    that still shows up in an error message is replaced by ***."""

    def __init__(self, python: Path, log: Path, env: dict[str, str] | None = None) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = log.open("ab")
        self._hidden = [v for v in (env or {}).values() if v]
        self.proc = subprocess.Popen([str(python), str(ENGINE)], stdin=subprocess.PIPE,  # noqa: S603
                                     stdout=subprocess.PIPE, stderr=self._log,
                                     env={**os.environ, **env} if env else None)

    def _scrub(self, message: str) -> str:
        for value in self._hidden:
            message = message.replace(value, "***")
        return message

    def call(self, op: str, *args):
        if self.proc.poll() is not None:
            raise ConnectionError(f"the DuckLake engine exited (code {self.proc.returncode}; log {self._log.name})")
        data = pickle.dumps((op, *args), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self.proc.stdin.write(struct.pack(">I", len(data)) + data)
            self.proc.stdin.flush()
            head = self.proc.stdout.read(4)
            if len(head) < 4:
                raise ConnectionError(f"the DuckLake engine closed its pipe (log {self._log.name})")
            answer = pickle.loads(self.proc.stdout.read(struct.unpack(">I", head)[0]))  # noqa: S301 - own engine
        except (BrokenPipeError, OSError) as exc:
            raise ConnectionError(f"the DuckLake engine is gone: {exc} (log {self._log.name})") from exc
        if answer[0] == "ok":
            return answer[1]
        raise remote_error(answer[1], self._scrub(answer[2]))

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("close")
            except (ConnectionError, duckdb.Error):
                pass
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
