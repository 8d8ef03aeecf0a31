"""Canonical contract values: one representation per contract type, reachable from Python AND from SQL. Pure.

Reconciliation compares the rows the projection computes from a source database (Python values out of
the pipeline's own planner) with the rows stored in the reporting database (DuckDB or PostgreSQL). Both
sides are brought to the same *canonical* form before hashing, so that `Decimal('12.3')` and a stored
`DECIMAL(12,2)` 12.30, or a UTC datetime and a TIMESTAMPTZ read in another session time zone, compare
equal, and nothing else does.

| contract type            | canonical value                      | reporting side (SQL, both dialects)       |
|--------------------------|--------------------------------------|-------------------------------------------|
| smallint/integer/bigint  | int                                  | the column                                |
| boolean                  | bool                                 | the column                                |
| varchar/text             | str                                  | the column                                |
| decimal(p,s), p <= 18    | int: the value * 10**s (exact)       | CAST(col * 10^s AS BIGINT)                |
| decimal(p,s), p > 18     | str of that int                      | col as text, scaled in Python             |
| double                   | float; NaN/inf as 'nan'/'inf'/'-inf' | the column                                |
| date                     | int days since 1970-01-01            | col - DATE '1970-01-01'                   |
| time                     | int microseconds since midnight      | hour/minute/microsecond parts             |
| timestamp                | int microseconds since epoch (UTC)   | epoch_us(col) / EXTRACT(EPOCH ...)*1e6    |
| timestamptz              | int microseconds since epoch (UTC)   | epoch_us(col) / EXTRACT(EPOCH ...)*1e6    |
| json                     | compact JSON text, keys sorted       | col as text, re-serialised in Python      |
| uuid                     | lower-case hyphenated str            | col as text                               |

NULL is None everywhere. Pushing most of the work into SQL matters: fetching TIMESTAMPTZ and DECIMAL as
Python objects costs ~10 µs per row in DuckDB, the canonical integers ~1 µs.

A row's digest is Python's (SipHash, 64-bit, per-process keyed) hash of the orjson encoding of its
canonical tuple: both sides are hashed in the same process, so the per-process key does not matter,
and the encoding is unambiguous (`1` ≠ `true` ≠ `"1"`, NULL ≠ ''). The chance that a changed row keeps
its digest is about 2**-64 per row.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

import orjson

from pipelines.contract.ddl import quote_ident
from pipelines.contract.model import Column, Contract

__all__ = ["ColumnCanon", "RowCanon", "column_canon"]

Fn = Callable[[Any], Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_ONE_US = timedelta(microseconds=1)
_CTX = Context(prec=80, rounding=ROUND_HALF_EVEN)
_INT_TYPES = ("smallint", "integer", "bigint")
_DIALECTS = ("duckdb", "postgres")


# --- Python side: any plausible value of the type → canonical ---------------------------------------

def _micros(v: Any) -> int:
    """Microseconds since the epoch; a naive datetime is UTC (what Debezium's epoch encodings mean)."""
    if isinstance(v, datetime):
        if v.tzinfo is None:
            return (v - _EPOCH_NAIVE) // _ONE_US
        return (v - _EPOCH) // _ONE_US
    if type(v) is int:
        return v
    if isinstance(v, str):
        return _micros(datetime.fromisoformat(v))
    raise TypeError(f"{v!r} is not a timestamp")


def _days(v: Any) -> int:
    if type(v) is int:
        return v
    if isinstance(v, datetime):
        raise TypeError(f"{v!r} is a timestamp, not a date")
    if isinstance(v, date):
        return v.toordinal() - _EPOCH_ORDINAL
    if isinstance(v, str):
        return date.fromisoformat(v).toordinal() - _EPOCH_ORDINAL
    raise TypeError(f"{v!r} is not a date")


def _time_micros(v: Any) -> int:
    if type(v) is int:
        return v
    if isinstance(v, time):
        return ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond
    if isinstance(v, timedelta):  # PyMySQL reads TIME as a timedelta
        return v // _ONE_US
    if isinstance(v, str):
        return _time_micros(time.fromisoformat(v))
    raise TypeError(f"{v!r} is not a time of day")


def _double(v: Any) -> Any:
    f = float(v)
    if math.isfinite(f):
        return f
    return repr(f)  # 'nan', 'inf', '-inf': orjson would turn them into null


def _json_text(v: Any) -> str:
    if isinstance(v, (str, bytes)):
        v = orjson.loads(v)
    return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()


def _uuid(v: Any) -> str:
    return str(v if isinstance(v, uuid.UUID) else uuid.UUID(str(v)))


def _decimal_scaled(scale: int, as_text: bool) -> Fn:
    exp = Decimal(1).scaleb(-scale)

    def scaled(v: Any) -> Any:
        if type(v) is not Decimal:
            if isinstance(v, float):
                v = Decimal(repr(v))
            else:
                v = Decimal(v) if not isinstance(v, str) else Decimal(v.strip())
        n = int(v.quantize(exp, context=_CTX).scaleb(scale, _CTX))
        return str(n) if as_text else n

    return scaled


# --- display: canonical → readable text (for the rows shown to an operator) -------------------------

def _show_micros(v: Any) -> str:
    return (_EPOCH + timedelta(microseconds=v)).isoformat().replace("+00:00", "Z")


def _show_naive_micros(v: Any) -> str:
    return (_EPOCH_NAIVE + timedelta(microseconds=v)).isoformat()


def _show_days(v: Any) -> str:
    return date.fromordinal(_EPOCH_ORDINAL + v).isoformat()


def _show_time(v: Any) -> str:
    seconds, micros = divmod(v, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return time(hour, minute, second, micros).isoformat()


def _show_decimal(scale: int) -> Fn:
    return lambda v: format(Decimal(int(v)).scaleb(-scale), "f")


@dataclass(frozen=True)
class ColumnCanon:
    """How one contract column is canonicalised, on each side, and shown."""

    name: str
    python: Fn | None
    """Python value (from the projection) → canonical; None = the value is already canonical."""
    stored: Fn | None
    """Value selected by `sql(dialect)` → canonical; None = the SQL already yields the canonical value."""
    sql_template: str
    """SQL expression with `{c}` for the quoted column; `{text}` for the dialect's text type."""
    show: Fn

    def sql(self, dialect: str) -> str:
        if dialect not in _DIALECTS:
            raise ValueError(f"unknown SQL dialect {dialect!r} (supported: {', '.join(_DIALECTS)})")
        return self.sql_template.format(c=quote_ident(self.name), text="VARCHAR" if dialect == "duckdb" else "TEXT",
                                        epoch_us=_EPOCH_US[dialect].format(c=quote_ident(self.name)))


_EPOCH_US = {
    "duckdb": "epoch_us({c})",
    "postgres": "CAST(EXTRACT(EPOCH FROM {c}) * 1000000 AS BIGINT)",
}
_TIME_SQL = ("CAST(EXTRACT(HOUR FROM {c}) * 3600000000 + EXTRACT(MINUTE FROM {c}) * 60000000"
             " + EXTRACT(MICROSECONDS FROM {c}) AS BIGINT)")


def column_canon(column: Column) -> ColumnCanon:
    """The canonical form of one contract column (see the module table)."""
    base, name = column.base_type, column.name
    if base in _INT_TYPES or base in ("boolean", "varchar", "text"):
        return ColumnCanon(name, None, None, "{c}", repr if base not in ("varchar", "text") else str)
    if base == "decimal":
        precision, scale = int(column.precision or 38), int(column.scale or 0)
        if precision <= 18:
            sql = "CAST({c} AS BIGINT)" if scale == 0 else f"CAST({{c}} * {10 ** scale} AS BIGINT)"
            return ColumnCanon(name, _decimal_scaled(scale, False), None, sql, _show_decimal(scale))
        return ColumnCanon(name, _decimal_scaled(scale, True), _decimal_scaled(scale, True), "CAST({c} AS {text})",
                           _show_decimal(scale))
    if base == "double":
        return ColumnCanon(name, _double, _double, "{c}", repr)
    if base == "date":
        return ColumnCanon(name, _days, None, "CAST({c} - DATE '1970-01-01' AS BIGINT)", _show_days)
    if base == "time":
        return ColumnCanon(name, _time_micros, None, _TIME_SQL, _show_time)
    if base == "timestamp":
        return ColumnCanon(name, _micros, None, "{epoch_us}", _show_naive_micros)
    if base == "timestamptz":
        return ColumnCanon(name, _micros, None, "{epoch_us}", _show_micros)
    if base == "json":
        return ColumnCanon(name, _json_text, _json_text, "CAST({c} AS {text})", str)
    if base == "uuid":
        return ColumnCanon(name, _uuid, None, "CAST({c} AS {text})", str)
    raise ValueError(f"{name}: unsupported contract type {base!r}")


def _apply(fns: tuple[tuple[int, Fn], ...]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    if not fns:
        return tuple

    def canon(values: Sequence[Any]) -> tuple[Any, ...]:
        out = list(values)
        for i, fn in fns:
            v = out[i]
            if v is not None:
                out[i] = fn(v)
        return tuple(out)

    return canon


class RowCanon:
    """Canonicalisation of whole rows of one contract table (its data columns, in contract order)."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.columns: tuple[ColumnCanon, ...] = tuple(column_canon(c) for c in contract.columns)
        self.names: tuple[str, ...] = tuple(c.name for c in contract.columns)
        self.width = len(self.columns)
        self.key_names: tuple[str, ...] = tuple(contract.primary_key)
        self.key_indexes: tuple[int, ...] = tuple(self.names.index(k) for k in contract.primary_key)
        n = self.width
        python = _apply(tuple((i, c.python) for i, c in enumerate(self.columns) if c.python is not None))
        self.stored: Callable[[Sequence[Any]], tuple[Any, ...]] = _apply(
            tuple((i, c.stored) for i, c in enumerate(self.columns) if c.stored is not None))
        """A row selected with `select_list(dialect)` → canonical tuple."""

        def expected(values: Sequence[Any]) -> tuple[Any, ...]:
            return python(values[:n])

        self.expected: Callable[[Sequence[Any]], tuple[Any, ...]] = expected
        """Projected values (contract order; extra trailing values such as provenance ignored) → canonical."""
        if len(self.key_indexes) == 1:
            (ki,) = self.key_indexes
            self.key: Callable[[Sequence[Any]], Any] = lambda row: row[ki]
        else:
            kis = self.key_indexes
            self.key = lambda row: tuple([row[i] for i in kis])
        """Canonical row → its key: the scalar for a one-column primary key, else a tuple."""

    def select_list(self, dialect: str) -> list[str]:
        """SQL expressions selecting the canonical form of each column, in contract order."""
        return [c.sql(dialect) for c in self.columns]

    def key_sql(self, dialect: str) -> list[str]:
        """SQL expressions of the canonical key columns (to look rows up by canonical key)."""
        return [self.columns[i].sql(dialect) for i in self.key_indexes]

    def key_parts(self, key: Any) -> tuple[Any, ...]:
        """A key as returned by `key` → tuple of its canonical column values."""
        return key if len(self.key_indexes) > 1 else (key,)

    def canonical_value(self, column: str, value: Any) -> Any:
        """One Python value of `column` → canonical (used for keys of rows the projection rejected)."""
        c = self.columns[self.names.index(column)]
        return value if value is None or c.python is None else c.python(value)

    @staticmethod
    def digest(canonical: tuple[Any, ...]) -> int:
        """64-bit digest of a canonical row (stable within one process)."""
        return hash(orjson.dumps(canonical))

    def show(self, index: int, value: Any) -> str:
        """A canonical value of column `index` as readable text."""
        if value is None:
            return "null"
        try:
            return self.columns[index].show(value)
        except (TypeError, ValueError, OverflowError):
            return repr(value)

    def show_key(self, key: Any) -> tuple[tuple[str, str], ...]:
        """(column, readable value) pairs of a canonical key."""
        return tuple((self.names[i], self.show(i, v)) for i, v in zip(self.key_indexes, self.key_parts(key),
                                                                       strict=True))
