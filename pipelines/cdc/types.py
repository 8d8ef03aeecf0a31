"""Strict decoders from Debezium plain-JSON values to Python values, by declared SOURCE type. Pure.

The connectors run with JSON converters and `schemas.enable=false`, so a change event carries no type
information: `12` may be a smallint, a date (days since epoch) or a DATETIME(3) (millis). The
projection file therefore declares the source type of every column it reads, and each column gets a
decoder from `decoder_for(type_name, column)` once, at load time. Decoders are strict: a value of the
wrong JSON type raises `TypeDecodeError` naming the column and the value (schema drift shows up as a
dead letter, never as a silently wrong row).

Connector settings these decoders rely on (see connectors/<service>/connector.json):
decimal.handling.mode=string, time.precision.mode=adaptive_time_microseconds, binary.handling.mode=base64.

| declared type                    | Debezium JSON value                       | Python value              |
|----------------------------------|-------------------------------------------|---------------------------|
| smallint, integer, bigint (+ tinyint, mediumint, int2/int4/int8) | number       | int (range-checked)       |
| boolean                          | true/false (MariaDB TINYINT(1): 0/1)      | bool                      |
| text, varchar, char, enum, ...   | string                                    | str                       |
| numeric, decimal                 | string "12.30"                            | Decimal                   |
| real, double                     | number                                    | float                     |
| date                             | int days since 1970-01-01                 | date                      |
| time                             | int micros since midnight (MicroTime)     | time                      |
| timestamp (PG, MariaDB DATETIME(4-6)) | int micros since epoch (MicroTimestamp) | datetime, tz=UTC    |
| timestamp_ms (MariaDB DATETIME(0-3))  | int millis since epoch (Timestamp)      | datetime, tz=UTC    |
| timestamptz (PG; MariaDB TIMESTAMP)   | ISO-8601 string (ZonedTimestamp)        | datetime, tz=UTC    |
| json, jsonb                      | string holding JSON                       | parsed value              |
| uuid                             | string                                    | str (lower case)          |
| bytes, bytea, blob, binary, varbinary | base64 string                        | bytes                     |
| array, <type>[]                  | JSON array                                | list (elements decoded)   |

A wall-clock `timestamp` (no zone) is read as UTC, which is what Debezium's epoch encoding means.
JSON null decodes to None for every type; nullability is the contract's business (validation).

Debezium's placeholder for an unchanged out-of-line (TOAST) value, `__debezium_unavailable_value`
(also its base64 form for bytea and `[placeholder]` for arrays), decodes to the `UNAVAILABLE`
sentinel: the apply step must keep the stored value and never write the sentinel.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

__all__ = [
    "SOURCE_TYPES",
    "UNAVAILABLE",
    "UNAVAILABLE_PLACEHOLDER",
    "TypeDecodeError",
    "Unavailable",
    "canonical_type",
    "decode",
    "decoder_for",
    "is_placeholder",
    "out_of_range",
]

UNAVAILABLE_PLACEHOLDER = "__debezium_unavailable_value"
"""Debezium's default `unavailable.value.placeholder` for unchanged TOAST columns."""
_PH = UNAVAILABLE_PLACEHOLDER
_PLACEHOLDER_B64 = base64.b64encode(UNAVAILABLE_PLACEHOLDER.encode()).decode()
_PLACEHOLDER_ARRAY = [UNAVAILABLE_PLACEHOLDER]


class Unavailable:
    """Type of the `UNAVAILABLE` sentinel: 'this column did not change and its value was not sent'."""

    __slots__ = ()
    _instance: Unavailable | None = None

    def __new__(cls) -> Unavailable:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNAVAILABLE"

    def __reduce__(self) -> str:
        return "UNAVAILABLE"


UNAVAILABLE = Unavailable()
"""Sentinel for a value Debezium did not send (TOAST): keep the stored value, never overwrite it."""


def is_placeholder(value: Any) -> bool:
    """True when a raw JSON value is one of Debezium's unavailable-value placeholders."""
    return value == UNAVAILABLE_PLACEHOLDER or value == _PLACEHOLDER_B64 or value == _PLACEHOLDER_ARRAY


class TypeDecodeError(ValueError):
    """A raw value does not have the declared source type. `str(err)` names column, type and value."""

    def __init__(self, column: str, type_name: str, value: Any, detail: str = "", *,
                 reason: str | None = None, wrong_kind: bool = False) -> None:
        if reason is None:
            reason = f"column {column}: {_shown(value)} is not a valid {type_name}"
            if detail:
                reason += f" ({detail})"
        super().__init__(reason)
        self.column = column
        self.type_name = type_name
        self.value = value
        self.reason = reason
        self.wrong_kind = wrong_kind
        """The value is of another kind than the declared type (text for an integer...): Debezium encodes
        each value from its column's type, so this means the source column's type changed (drift)."""


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def out_of_range(column: str, type_name: str, value: int | float, written: str | None = None) -> TypeDecodeError:
    """`column c: 1000000000000000000000000000000 is out of range for bigint`.

    `written`: the number as the JSON text wrote it, when known. orjson reads an integer beyond
    -2**63..2**64-1 as a float, so the decoder itself only sees e.g. 1e+30; the planner, which has the
    raw bytes, passes the literal (see pipelines.cdc.plan)."""
    shown = written if written is not None else str(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return TypeDecodeError(column, type_name, value, "out of range",
                           reason=f"column {column}: {shown} is out of range for {type_name}")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MICROS_PER_DAY = 86_400_000_000
_INT_RANGES = {
    "tinyint": (-(2**7), 2**8 - 1),  # MariaDB TINYINT (signed or unsigned) arrives as INT16
    "smallint": (-(2**15), 2**16 - 1),  # unsigned SMALLINT arrives as INT32
    "mediumint": (-(2**23), 2**24 - 1),
    "integer": (-(2**31), 2**32 - 1),  # unsigned INT arrives as INT64
    "bigint": (-(2**63), 2**64 - 1),  # bigint.unsigned.handling.mode=long wraps; precise mode is a string
}

_ALIASES = {
    "int2": "smallint",
    "int": "integer",
    "int4": "integer",
    "serial": "integer",
    "int8": "bigint",
    "bigserial": "bigint",
    "bool": "boolean",
    "varchar": "text",
    "character varying": "text",
    "char": "text",
    "character": "text",
    "bpchar": "text",
    "string": "text",
    "citext": "text",
    "tinytext": "text",
    "mediumtext": "text",
    "longtext": "text",
    "enum": "text",
    "set": "text",
    "numeric": "decimal",
    "real": "double",
    "float": "double",
    "float4": "double",
    "float8": "double",
    "double precision": "double",
    "time without time zone": "time",
    "timestamp without time zone": "timestamp",
    "datetime": "timestamp",
    "timestamp_us": "timestamp",
    "timestamp with time zone": "timestamptz",
    "jsonb": "json",
    "bytea": "bytes",
    "blob": "bytes",
    "binary": "bytes",
    "varbinary": "bytes",
}
_BASE = (
    "tinyint", "smallint", "mediumint", "integer", "bigint", "boolean", "text", "decimal", "double",
    "date", "time", "timestamp", "timestamp_ms", "timestamptz", "json", "uuid", "bytes", "array",
)
SOURCE_TYPES: tuple[str, ...] = tuple(sorted(set(_BASE) | set(_ALIASES)))
"""Every declared source type name `decoder_for` accepts (plus `<type>[]` for arrays)."""

_LENGTH_RE = re.compile(r"\(\s*\d+\s*(?:,\s*\d+\s*)?\)")


def canonical_type(type_name: str) -> str:
    """Normalise a declared source type (`VARCHAR(32)` → `text`, `int8` → `bigint`, `int[]` → `integer[]`).

    Raises ValueError for an unknown type. Length/precision are dropped: the source database already
    enforced them, and the contract validation checks the target's own limits.
    """
    if not isinstance(type_name, str):
        raise ValueError(f"source type must be a string, got {type_name!r}")
    text = " ".join(_LENGTH_RE.sub("", type_name).strip().lower().split())
    if text.endswith("[]"):
        return canonical_type(text[:-2]) + "[]"
    text = _ALIASES.get(text, text)
    if text not in _BASE:
        raise ValueError(f"unknown source type {type_name!r} (known: {', '.join(SOURCE_TYPES)}, or <type>[])")
    return text


Decoder = Callable[[Any], Any]


def _int_decoder(column: str, type_name: str) -> Decoder:
    lo, hi = _INT_RANGES[type_name]

    def dec(v: Any) -> Any:
        if type(v) is int and lo <= v <= hi:
            return v
        if v is None:
            return None
        if v == UNAVAILABLE_PLACEHOLDER:
            return UNAVAILABLE
        if type(v) is int:
            raise out_of_range(column, type_name, v)
        if type(v) is float and v.is_integer() and not lo <= v <= hi:
            # an integer literal too big for orjson's 64-bit parse arrives as a float (10**30 → 1e+30)
            raise out_of_range(column, type_name, v)
        raise TypeDecodeError(column, type_name, v, f"got {type(v).__name__}", wrong_kind=True)

    return dec


_CONVERSION_ERRORS = (TypeError, ValueError, OverflowError, ArithmeticError)


def _simple(column: str, type_name: str, convert: Callable[[Any], Any], raw_type: type) -> Decoder:
    """Wrap `convert` (which may raise anything on bad input) with None/placeholder handling.

    `raw_type` is the JSON type the connector sends for this type; it takes the fast path.
    """

    def fail(v: Any, exc: Exception) -> TypeDecodeError:
        return TypeDecodeError(column, type_name, v, str(exc) or type(exc).__name__)

    if raw_type is str:
        def dec_str(v: Any) -> Any:
            if type(v) is str:
                if v == _PH:
                    return UNAVAILABLE
                try:
                    return convert(v)
                except _CONVERSION_ERRORS as exc:
                    raise fail(v, exc) from None
            return slow(v)
        dec = dec_str
    else:
        def dec_other(v: Any) -> Any:
            if type(v) is raw_type:
                try:
                    return convert(v)
                except _CONVERSION_ERRORS as exc:
                    raise fail(v, exc) from None
            return slow(v)
        dec = dec_other

    def slow(v: Any) -> Any:
        if v is None:
            return None
        if v == _PH:
            return UNAVAILABLE
        try:
            return convert(v)
        except TypeDecodeError:
            raise
        except _CONVERSION_ERRORS as exc:
            raise fail(v, exc) from None

    return dec


def _text_decoder(column: str, type_name: str) -> Decoder:
    def dec(v: Any) -> Any:
        if type(v) is str:
            return v if v != _PH else UNAVAILABLE
        if v is None:
            return None
        raise TypeDecodeError(column, type_name, v, f"got {type(v).__name__}", wrong_kind=True)

    return dec


def _boolean(v: Any) -> bool:
    if v is True or v is False:
        return v
    if type(v) is int and v in (0, 1):  # MariaDB BOOLEAN is TINYINT(1), sent as INT16
        return bool(v)
    raise TypeError(f"got {type(v).__name__}")


def _decimal(v: Any) -> Decimal:
    if type(v) is not str:  # decimal.handling.mode=string: a number here means the setting drifted
        raise TypeError(f"got {type(v).__name__}; expected a string (decimal.handling.mode=string)")
    try:
        return Decimal(v)
    except InvalidOperation:
        raise ValueError("not a decimal number") from None


def _double(v: Any) -> float:
    if type(v) is float or type(v) is int:
        return float(v)
    if v in ("NaN", "Infinity", "-Infinity"):
        return float(v)
    raise TypeError(f"got {type(v).__name__}")


def _date(v: Any) -> date:
    if type(v) is not int:
        raise TypeError(f"got {type(v).__name__}; expected int days since epoch")
    return date.fromordinal(_EPOCH_ORDINAL + v)


def _time(v: Any) -> time:
    if type(v) is not int:
        raise TypeError(f"got {type(v).__name__}; expected int microseconds since midnight")
    if not 0 <= v < _MICROS_PER_DAY:
        raise ValueError("outside 00:00..24:00")
    seconds, micros = divmod(v, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return time(hour, minute, second, micros)


def _timestamp_us(v: Any) -> datetime:
    if type(v) is not int:
        raise TypeError(f"got {type(v).__name__}; expected int microseconds since epoch")
    return _EPOCH + timedelta(microseconds=v)


def _timestamp_ms(v: Any) -> datetime:
    if type(v) is not int:
        raise TypeError(f"got {type(v).__name__}; expected int milliseconds since epoch")
    return _EPOCH + timedelta(milliseconds=v)


def _timestamptz(v: Any) -> datetime:
    if type(v) is not str:
        raise TypeError(f"got {type(v).__name__}; expected an ISO-8601 string")
    parsed = datetime.fromisoformat(v)
    tz = parsed.tzinfo
    if tz is UTC:  # what Debezium sends (…Z)
        return parsed
    if tz is None:
        raise ValueError("no time zone")
    return parsed.astimezone(UTC)


def _json(v: Any) -> Any:
    if type(v) is not str:
        raise TypeError(f"got {type(v).__name__}; expected a string holding JSON")
    try:
        return orjson.loads(v)
    except orjson.JSONDecodeError:
        raise ValueError("invalid JSON") from None


def _uuid(v: Any) -> str:
    if type(v) is not str:
        raise TypeError(f"got {type(v).__name__}")
    return str(uuid.UUID(v))


def _bytes(v: Any) -> bytes:
    if type(v) is not str:
        raise TypeError(f"got {type(v).__name__}; expected base64 text")
    if v == _PLACEHOLDER_B64:
        return UNAVAILABLE  # type: ignore[return-value]
    try:
        return base64.b64decode(v, validate=True)
    except binascii.Error:
        raise ValueError("invalid base64") from None


_CONVERTERS: dict[str, tuple[Callable[[Any], Any], type]] = {
    "boolean": (_boolean, bool),
    "decimal": (_decimal, str),
    "double": (_double, float),
    "date": (_date, int),
    "time": (_time, int),
    "timestamp": (_timestamp_us, int),
    "timestamp_ms": (_timestamp_ms, int),
    "timestamptz": (_timestamptz, str),
    "json": (_json, str),
    "uuid": (_uuid, str),
    "bytes": (_bytes, str),
}


def _array_decoder(column: str, type_name: str, element: Decoder | None) -> Decoder:
    def dec(v: Any) -> Any:
        if v is None:
            return None
        if v == UNAVAILABLE_PLACEHOLDER or v == _PLACEHOLDER_ARRAY:
            return UNAVAILABLE
        if type(v) is not list:
            raise TypeDecodeError(column, type_name, v, f"got {type(v).__name__}", wrong_kind=True)
        if element is None:
            return v
        try:
            return [element(x) for x in v]
        except TypeDecodeError as exc:
            raise TypeDecodeError(column, type_name, v, f"element: {exc.reason}") from None

    return dec


def decoder_for(type_name: str, column: str) -> Decoder:
    """A fast decoder for one column: raw JSON value → Python value (see the module table).

    Raises ValueError for an unknown type name (a projection-file error); the returned decoder
    raises TypeDecodeError for a value that does not fit.
    """
    canonical = canonical_type(type_name)
    if canonical.endswith("[]"):
        return _array_decoder(column, canonical, decoder_for(canonical[:-2], column))
    if canonical == "array":
        return _array_decoder(column, canonical, None)
    if canonical in _INT_RANGES:
        return _int_decoder(column, canonical)
    if canonical == "text":
        return _text_decoder(column, canonical)
    convert, raw_type = _CONVERTERS[canonical]
    return _simple(column, canonical, convert, raw_type)


def decode(type_name: str, value: Any, column: str = "?") -> Any:
    """Decode one value (convenience for tests and tools; the hot path uses `decoder_for`)."""
    return decoder_for(type_name, column)(value)
