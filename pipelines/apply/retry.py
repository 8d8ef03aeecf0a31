"""Which reporting-DB errors are worth retrying, and the one retry policy (tenacity) that retries them.

Errors are classified by exception type and SQLSTATE, never by message text (one exception: a login
the server rejects, whose SQLSTATE libpq does not expose; see `_LOGIN_REJECTED`):

* transient (retry): the database is unavailable or lost a race. PostgreSQL (psycopg 3) SQLSTATE
  class 08 (connection exception), class 40 (transaction rollback: 40001 serialization failure,
  40P01 deadlock; except 40002, an integrity violation found at commit), 55P03 lock not available,
  57P01/57P02/57P03 (admin shutdown, crash shutdown, cannot connect now), class 53 (insufficient
  resources), and a psycopg `OperationalError` without SQLSTATE (connection refused or closed, raised
  by the client library) unless the server rejected the login (wrong password, no pg_hba.conf entry,
  unknown role or database). DuckDB `IOException` (among others the file lock "Could not set lock on
  file" held by another process) and `TransactionException` (write-write conflict). The stdlib
  `ConnectionError`, `TimeoutError` and other `OSError`s, except those naming a missing or
  forbidden path.
* permanent (stop at once): everything else, e.g. PostgreSQL 22 (data exception), 23 (integrity),
  42 (syntax / undefined object); DuckDB `ConversionException`, `ConstraintException`,
  `BinderException`, `CatalogException`, `ParserException`, `InvalidInputException`. Retrying them
  only delays the same failure.

The exception and its `__cause__` / `__context__` chain are walked outwards-in; the first exception
that is a database or OS error decides (so a wrapper raised `from` a lock error is transient, and a
data error raised while handling a connection error is permanent).

Pure: no I/O besides the sleeps between attempts, no environment variables.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import psycopg
import tenacity

OnRetry = Callable[[BaseException, int, float], None]
"""Called before each backoff sleep with (the failed attempt's error, its attempt number, seconds to sleep)."""

# DuckDB (duckdb 2.0.1): IOException and TransactionException both subclass OperationalError, which
# also covers OutOfMemoryException, SerializationException (storage (de)serialisation, not MVCC),
# ConnectionException (a closed connection object) and ResourceInUseException: those are not
# retried, so OperationalError itself is not a transient class. HTTPException subclasses IOException.
# ConversionException subclasses DataError (not OperationalError), ConstraintException IntegrityError,
# Binder/Catalog/Parser/InvalidInput ProgrammingError: none overlaps a transient class.
_DUCKDB_TRANSIENT: tuple[type[BaseException], ...] = (duckdb.IOException, duckdb.TransactionException)

# PostgreSQL SQLSTATEs: whole classes (first two characters) and single codes
_PG_TRANSIENT_CLASSES = frozenset({"08", "40", "53"})
_PG_TRANSIENT_CODES = frozenset({"55P03", "57P01", "57P02", "57P03"})
_PG_PERMANENT_CODES = frozenset({"40002"})  # transaction_integrity_constraint_violation: the same again

# OSErrors that name a missing or forbidden path do not go away by waiting
_OS_PERMANENT: tuple[type[BaseException], ...] = (FileNotFoundError, NotADirectoryError, IsADirectoryError,
                                                  PermissionError, FileExistsError)


# libpq reports why the server rejected a new connection only as text: the SQLSTATE of the server's
# FATAL (28P01 invalid password, 28000 no pg_hba.conf entry, 3D000 unknown database) is not exposed
# for connection failures (psycopg 3.3 `sqlstate` is None). These server messages (PostgreSQL's
# English ones: a server with another lc_messages gives its own text, and then the retry budget ends it)
# mean the estate's login or database is wrong: waiting does not fix it.
_LOGIN_REJECTED = ("password authentication failed", "no pg_hba.conf entry", "authentication failed for user",
                   "does not exist")


def _login_rejected(exc: BaseException) -> bool:
    text = str(exc)
    return "FATAL:" in text and any(m in text for m in _LOGIN_REJECTED)


def _classify(exc: BaseException) -> bool | None:
    """True = transient, False = permanent, None = not a database or OS error (look at its cause)."""
    if isinstance(exc, duckdb.Error):
        return isinstance(exc, _DUCKDB_TRANSIENT)
    if isinstance(exc, psycopg.Error):
        state = getattr(exc, "sqlstate", None)
        if not state:
            # raised by the client library, not the server: refused / lost / closed connection; but a
            # login the server rejected is configuration, not an outage
            return isinstance(exc, psycopg.OperationalError) and not _login_rejected(exc)
        if state in _PG_PERMANENT_CODES:
            return False
        return state in _PG_TRANSIENT_CODES or state[:2] in _PG_TRANSIENT_CLASSES
    if isinstance(exc, OSError):  # includes ConnectionError and TimeoutError
        return not isinstance(exc, _OS_PERMANENT)
    return None


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` (or the database error it wraps) is worth retrying: see the module docstring."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        verdict = _classify(current)
        if verdict is not None:
            return verdict
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return False


def first_line(exc: BaseException) -> str:
    """The first line of the error message (DuckDB appends the SQL and a caret), or the class name. A first
    line that only introduces the cause ("Failed to probe DuckLake metadata:") gets the next line with it."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return exc.__class__.__name__
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[1]}"
    return lines[0]


def _before_sleep(on_retry: OnRetry | None) -> Callable[[tenacity.RetryCallState], None] | None:
    if on_retry is None:
        return None

    def call(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        if exc is not None:
            on_retry(exc, state.attempt_number, state.upcoming_sleep)

    return call


def _policy(stop: tenacity.stop.stop_base, initial_wait_s: float, max_wait_s: float, on_retry: OnRetry | None,
            wait: tenacity.wait.wait_base | None, sleep: Callable[[float], None] | None) -> tenacity.Retrying:
    extra = {"sleep": sleep} if sleep is not None else {}
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        stop=stop,
        wait=wait if wait is not None else tenacity.wait_exponential(multiplier=initial_wait_s, max=max_wait_s),
        before_sleep=_before_sleep(on_retry),
        reraise=True,  # the original error, not tenacity.RetryError
        **extra,
    )


def retrying(max_attempts: int, max_wait_s: float = 10.0, on_retry: OnRetry | None = None, *,
             initial_wait_s: float = 0.5, wait: tenacity.wait.wait_base | None = None,
             sleep: Callable[[float], None] | None = None) -> tenacity.Retrying:
    """Retry transient errors up to `max_attempts` attempts in all (1 = no retry), waiting
    `initial_wait_s`, doubling up to `max_wait_s`, between them. A permanent error, or the last
    transient one, is re-raised as it is. Use: `retrying(6)(fn, *args)`. `wait` / `sleep` replace
    the backoff or the sleeping (tests: `tenacity.wait_none()`)."""
    return _policy(tenacity.stop_after_attempt(max(1, max_attempts)), initial_wait_s, max_wait_s, on_retry,
                   wait, sleep)


def retrying_for(max_delay_s: float, max_wait_s: float = 5.0, on_retry: OnRetry | None = None, *,
                 initial_wait_s: float = 0.5, wait: tenacity.wait.wait_base | None = None,
                 sleep: Callable[[float], None] | None = None) -> tenacity.Retrying:
    """Like `retrying`, bounded by total time instead of attempts: no retry would start after
    `max_delay_s` seconds (the next sleep is not begun if it would end past them; 0 = no retry)."""
    return _policy(tenacity.stop_before_delay(max(0.0, max_delay_s)), initial_wait_s, max_wait_s, on_retry,
                   wait, sleep)
