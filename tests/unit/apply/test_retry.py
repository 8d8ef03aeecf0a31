"""Reporting-DB errors are classified by exception type and SQLSTATE (never message text), and one
tenacity policy retries the transient ones. Real DuckDB / psycopg exception objects; no test sleeps."""

from __future__ import annotations

import time
from types import SimpleNamespace

import duckdb
import psycopg
import pytest
import tenacity
from psycopg import errors as pg_errors

from pipelines.apply import runner
from pipelines.apply.backend import ApplyBatch, ApplyResult
from pipelines.apply.retry import first_line, is_transient, retrying, retrying_for
from pipelines.apply.worker import ApplyFailed, Worker

pytestmark = pytest.mark.unit


def _duckdb_error(*statements: str) -> duckdb.Error:
    con = duckdb.connect(":memory:")
    try:
        for sql in statements:
            con.execute(sql)
    except duckdb.Error as exc:
        return exc
    finally:
        con.close()
    raise AssertionError(f"no error from {statements}")


def _write_write_conflict() -> duckdb.Error:
    con = duckdb.connect(":memory:")
    try:
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
        con.execute("INSERT INTO t VALUES (1, 0)")
        a, b = con.cursor(), con.cursor()
        a.execute("BEGIN TRANSACTION")
        b.execute("BEGIN TRANSACTION")
        a.execute("UPDATE t SET v = 1 WHERE id = 1")
        with pytest.raises(duckdb.Error) as info:
            b.execute("UPDATE t SET v = 2 WHERE id = 1")
        return info.value
    finally:
        con.close()


# -- DuckDB ---------------------------------------------------------------------------------------

def test_duckdb_conversion_error_is_permanent():
    exc = _duckdb_error("SELECT CAST('x' AS INTEGER)")
    assert isinstance(exc, duckdb.ConversionException)  # message "Could not convert ...": not a lock
    assert not is_transient(exc)


@pytest.mark.parametrize("statements, cls", [
    (["CREATE TABLE t (id INTEGER PRIMARY KEY)", "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (1)"],
     duckdb.ConstraintException),
    (["SELECT no_such_column FROM range(1)"], duckdb.BinderException),
    (["SELECT * FROM no_such_table"], duckdb.CatalogException),
    (["SELEC 1"], duckdb.ParserException),
    (["SELECT 2147483647::INTEGER + 1::INTEGER"], duckdb.OutOfRangeException),
])
def test_duckdb_data_and_sql_errors_are_permanent(statements, cls):
    exc = _duckdb_error(*statements)
    assert isinstance(exc, cls)
    assert not is_transient(exc)


def test_duckdb_invalid_input_is_permanent():
    assert not is_transient(duckdb.InvalidInputException("bad input"))


def test_duckdb_write_write_conflict_is_transient():
    exc = _write_write_conflict()
    assert isinstance(exc, duckdb.TransactionException)
    assert is_transient(exc)


def test_duckdb_io_error_is_transient():
    exc = duckdb.IOException('IO Error: Could not set lock on file "/x/reporting.duckdb": Conflicting lock is held')
    assert is_transient(exc)


def test_duckdb_operational_subclasses_other_than_io_and_transaction_are_permanent():
    # they share OperationalError with IOException / TransactionException
    for cls in (duckdb.OutOfMemoryException, duckdb.SerializationException, duckdb.ConnectionException):
        assert issubclass(cls, duckdb.OperationalError)
        assert not is_transient(cls("x"))


# -- PostgreSQL (psycopg 3) ---------------------------------------------------------------------

@pytest.mark.parametrize("sqlstate", ["40001", "40P01", "55P03", "08006", "08001", "57P01", "57P02", "57P03",
                                      "53300"])
def test_postgres_transient_sqlstates(sqlstate):
    exc = pg_errors.lookup(sqlstate)("server said no")
    assert exc.sqlstate == sqlstate
    assert is_transient(exc)


@pytest.mark.parametrize("sqlstate", ["22003", "23505", "42P01", "42601", "40002", "57014", "XX000"])
def test_postgres_permanent_sqlstates(sqlstate):
    # 57014 (query canceled) and 40002 subclass OperationalError like the transient ones: the SQLSTATE decides
    assert not is_transient(pg_errors.lookup(sqlstate)("server said no"))


def test_postgres_client_side_connection_errors():
    assert is_transient(psycopg.OperationalError("connection failed: Connection refused"))
    assert not is_transient(psycopg.InterfaceError("connection is closed"))  # misuse, not unavailability
    assert not is_transient(psycopg.ProgrammingError("query has 2 placeholders but 1 parameters"))


@pytest.mark.parametrize(("message", "transient"), [
    ('connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication '
     'failed for user "w"', False),
    ('connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  database "x" does not exist',
     False),
    ('connection failed: connection to server at "10.0.0.1", port 5432 failed: FATAL:  no pg_hba.conf entry for host '
     '"10.0.0.2", user "w", database "r", no encryption', False),
    ('connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  the database system is '
     'starting up', True),
    ('connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  sorry, too many clients '
     'already', True),
])
def test_a_login_the_server_rejects_is_not_retried(message, transient):
    assert is_transient(psycopg.OperationalError(message)) is transient


# -- stdlib, chains, unknown errors -------------------------------------------------------------

@pytest.mark.parametrize("exc", [ConnectionRefusedError(111, "refused"), TimeoutError("timed out"),
                                 ConnectionResetError(104, "reset"), OSError(5, "I/O error")])
def test_stdlib_connection_and_os_errors_are_transient(exc):
    assert is_transient(exc)


def test_missing_path_and_unrelated_errors_are_permanent():
    assert not is_transient(FileNotFoundError(2, "No such file or directory"))
    assert not is_transient(PermissionError(13, "Permission denied"))
    assert not is_transient(ValueError("connection lock could not"))  # words do not matter
    assert not is_transient(RuntimeError("deadlock"))


def test_chained_exception_is_classified_by_its_cause():
    with pytest.raises(RuntimeError) as info:
        try:
            raise duckdb.IOException("IO Error: Could not set lock on file")
        except duckdb.IOException as io:
            raise RuntimeError("opening the reporting DB failed") from io
    assert is_transient(info.value)

    with pytest.raises(RuntimeError) as info:
        try:
            raise _duckdb_error("SELECT CAST('x' AS INTEGER)")
        except duckdb.Error as conv:
            raise RuntimeError("apply failed") from conv
    assert not is_transient(info.value)


def test_first_database_error_in_the_chain_decides():
    # a data error raised while handling a connection error is the failure that matters
    with pytest.raises(duckdb.ConversionException) as info:
        try:
            raise psycopg.OperationalError("connection lost")
        except psycopg.OperationalError:
            raise duckdb.ConversionException("Could not convert") from None
    assert not is_transient(info.value)
    with pytest.raises(duckdb.ConversionException) as info:
        try:
            raise psycopg.OperationalError("connection lost")
        except psycopg.OperationalError:
            raise duckdb.ConversionException("Could not convert")  # noqa: B904 - implicit context
    assert not is_transient(info.value)


def test_cyclic_chain_terminates():
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__cause__, b.__cause__ = b, a
    assert not is_transient(a)


def test_first_line():
    assert first_line(_duckdb_error("SELECT CAST('x' AS INTEGER)")).startswith("Conversion Error: Could not convert")
    assert first_line(duckdb.IOException()) == "IOException"
    # a line that only introduces the cause keeps it (the DuckLake engine's catalog errors)
    assert first_line(duckdb.Error("Failed to probe DuckLake metadata:\n  database is locked\nLINE 1: ...")) == \
        "Failed to probe DuckLake metadata: database is locked"


# -- the policy ---------------------------------------------------------------------------------

class Flaky:
    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_policy_retries_transient_then_succeeds():
    fn = Flaky(_write_write_conflict(), pg_errors.lookup("40P01")("deadlock detected"))
    retries: list[tuple[str, int]] = []
    policy = retrying(5, on_retry=lambda exc, n, _delay: retries.append((type(exc).__name__, n)),
                      wait=tenacity.wait_none())
    assert policy(fn) == "ok"
    assert fn.calls == 3
    assert retries == [("TransactionException", 1), ("DeadlockDetected", 2)]


def test_policy_stops_at_once_on_permanent_error():
    conversion = _duckdb_error("SELECT CAST('x' AS INTEGER)")
    fn = Flaky(conversion)
    with pytest.raises(duckdb.ConversionException) as info:
        retrying(5, wait=tenacity.wait_none())(fn)
    assert info.value is conversion  # the original error, not tenacity.RetryError
    assert fn.calls == 1


def test_policy_reraises_the_last_transient_error_when_exhausted():
    errors = [duckdb.IOException(f"lock {i}") for i in range(5)]
    fn = Flaky(*errors)
    with pytest.raises(duckdb.IOException) as info:
        retrying(3, wait=tenacity.wait_none())(fn)
    assert fn.calls == 3
    assert info.value is errors[2]


def test_policy_backoff_doubles_up_to_the_cap():
    slept: list[float] = []
    fn = Flaky(*[duckdb.IOException("lock")] * 6)
    assert retrying(7, max_wait_s=4.0, sleep=slept.append)(fn) == "ok"
    assert slept == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_time_bounded_policy():
    fn = Flaky(duckdb.IOException("lock"))
    with pytest.raises(duckdb.IOException):
        retrying_for(0, sleep=lambda _s: None)(fn)  # 0 s = no retry
    assert fn.calls == 1

    fn = Flaky(duckdb.IOException("lock"), psycopg.OperationalError("refused"))
    assert retrying_for(60, sleep=lambda _s: None)(fn) == "ok"
    assert fn.calls == 3

    fn = Flaky(*[duckdb.IOException("lock")] * 3)
    with pytest.raises(duckdb.IOException):
        retrying_for(1.0, initial_wait_s=0.6, sleep=lambda _s: None)(fn)  # the 2nd sleep would end past 1 s
    assert fn.calls == 2


# -- the callers ----------------------------------------------------------------------------------

class FlakyBackend:
    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.reconnects = 0

    def apply(self, group: str, batch: ApplyBatch) -> ApplyResult:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return ApplyResult(rows=1, dead_letters=0, unappliable_toast=0)

    def reconnect(self) -> None:
        self.reconnects += 1


def _batch() -> ApplyBatch:
    return ApplyBatch(tables=[], dead_letters=[], next_offsets={("t", 0): 7}, events=1)


@pytest.fixture
def no_sleep(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


def test_worker_retries_transient_error_and_reconnects(no_sleep):
    backend = FlakyBackend(pg_errors.lookup("57P01")("terminating connection due to administrator command"),
                           psycopg.OperationalError("the connection is closed"))
    worker = Worker(backend, consumer=None, planner=None, group="g", say=lambda _m: None, max_retries=5)
    assert worker._apply_with_retry(_batch()).rows == 1
    assert backend.calls == 3
    assert backend.reconnects == 2
    assert no_sleep == [0.5, 1.0]


def test_worker_stops_at_once_on_permanent_error(no_sleep):
    backend = FlakyBackend(_duckdb_error("SELECT CAST('x' AS INTEGER)"))
    worker = Worker(backend, consumer=None, planner=None, group="g", say=lambda _m: None, max_retries=5)
    with pytest.raises(ApplyFailed, match=r"after 1 attempt\(s\): ConversionException: Conversion Error") as info:
        worker._apply_with_retry(_batch())
    assert "t[0]<7" in str(info.value)
    assert isinstance(info.value.__cause__, duckdb.ConversionException)
    assert backend.calls == 1 and backend.reconnects == 0 and no_sleep == []


def test_worker_gives_up_after_max_retries(no_sleep):
    backend = FlakyBackend(*[duckdb.IOException("IO Error: Could not set lock on file")] * 10)
    worker = Worker(backend, consumer=None, planner=None, group="g", say=lambda _m: None, max_retries=2)
    with pytest.raises(ApplyFailed, match=r"after 3 attempt\(s\): IOException"):
        worker._apply_with_retry(_batch())
    assert backend.calls == 3
    assert no_sleep == [0.5, 1.0]


def test_open_backend_waits_for_transient_and_fails_at_once_on_permanent(monkeypatch, no_sleep):
    settings = SimpleNamespace(backend="duckdb")
    opened = Flaky(duckdb.IOException('IO Error: Could not set lock on file "r.duckdb"'))
    monkeypatch.setattr(runner, "_open_backend_once", lambda _s: opened())
    said: list[str] = []
    assert runner.open_backend(settings, wait_s=60, say=said.append) == "ok"
    assert opened.calls == 2
    assert said == ['waiting for the reporting DB (duckdb): IO Error: Could not set lock on file "r.duckdb"']

    opened = Flaky(duckdb.IOException("IO Error: Could not set lock on file"))
    with pytest.raises(RuntimeError, match=r"^reporting DB \(duckdb\) unavailable: IO Error: Could not set lock"):
        runner.open_backend(settings, wait_s=0)
    assert opened.calls == 1

    opened = Flaky(pg_errors.lookup("42P01")('relation "x" does not exist'))
    with pytest.raises(RuntimeError, match=r"unavailable: relation \"x\" does not exist") as info:
        runner.open_backend(settings, wait_s=300)
    assert opened.calls == 1
    assert isinstance(info.value.__cause__, pg_errors.UndefinedTable)
