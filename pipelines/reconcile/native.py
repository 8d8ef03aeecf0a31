"""Database-native Python values → the plain-JSON values Debezium puts in a change event. Pure.

Reconciliation reads source rows with psycopg / PyMySQL, which return Python objects (`Decimal`,
`datetime`, `date`, parsed JSON...). Instead of a second, "native" decoding path, each value is turned
back into what the connector would have sent with this product's settings
(connectors/<service>/connector.json: decimal.handling.mode=string,
time.precision.mode=adaptive_time_microseconds, binary.handling.mode=base64), and the row then goes
through the pipeline's own decoders, projection expressions and contract validation
(pipelines.cdc.plan.Planner). So a reconcile can only agree with
the pipeline by computing exactly what the pipeline computes.

| declared source type (canonical) | native value (psycopg / PyMySQL)        | Debezium JSON value              |
|----------------------------------|-----------------------------------------|----------------------------------|
| ints, boolean, text, double      | int / bool / str / float                | unchanged (MariaDB BOOLEAN: 0/1) |
| decimal                          | Decimal (or text, see reading.py)       | plain string "12.30"             |
| date                             | date                                    | int days since epoch             |
| time                             | time (PG) / timedelta (MariaDB)         | int microseconds since midnight  |
| timestamp (PG, DATETIME(4-6))    | naive datetime                          | int microseconds since epoch     |
| timestamp_ms (DATETIME(0-3))     | naive datetime                          | int milliseconds since epoch     |
| timestamptz (PG; MariaDB TIMESTAMP, read with time_zone UTC) | datetime | ISO-8601 string in UTC           |
| json, jsonb                      | str (or parsed value)                   | JSON text                        |
| uuid                             | UUID / str                              | str                              |
| bytes                            | bytes / memoryview                      | base64 text                      |
| <type>[] / array                 | list                                    | list of converted elements       |

A naive datetime is read as UTC, which is what Debezium's epoch encodings mean.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import orjson

from pipelines.cdc.types import canonical_type

__all__ = ["debezium_value", "encoder_for", "row_encoder"]

Fn = Callable[[Any], Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_ONE_US = timedelta(microseconds=1)
_ONE_MS = timedelta(milliseconds=1)
_PASS_THROUGH = ("tinyint", "smallint", "mediumint", "integer", "bigint", "boolean", "text", "double")


def _epoch_delta(v: datetime) -> timedelta:
    return v - (_EPOCH_NAIVE if v.tzinfo is None else _EPOCH)


def _decimal(v: Any) -> Any:
    if type(v) is str:
        return v
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    return v  # anything else: let the pipeline's decoder reject it, as it would the event


def _date(v: Any) -> Any:
    if isinstance(v, date) and not isinstance(v, datetime):
        return v.toordinal() - _EPOCH_ORDINAL
    return v


def _time(v: Any) -> Any:
    if isinstance(v, time):
        return ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond
    if isinstance(v, timedelta):
        return v // _ONE_US
    return v


def _timestamp_us(v: Any) -> Any:
    if isinstance(v, datetime):
        return _epoch_delta(v) // _ONE_US
    return v


def _timestamp_ms(v: Any) -> Any:
    if isinstance(v, datetime):
        return _epoch_delta(v) // _ONE_MS
    return v


def _timestamptz(v: Any) -> Any:
    if isinstance(v, datetime):
        v = v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
        return v.isoformat().replace("+00:00", "Z")
    return v


def _json(v: Any) -> Any:
    if type(v) is str:
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).decode()
    return orjson.dumps(v).decode()


def _uuid(v: Any) -> Any:
    return str(v) if isinstance(v, uuid.UUID) else v


def _bytes(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode()
    return v


_CONVERTERS: dict[str, Fn] = {
    "decimal": _decimal,
    "date": _date,
    "time": _time,
    "timestamp": _timestamp_us,
    "timestamp_ms": _timestamp_ms,
    "timestamptz": _timestamptz,
    "json": _json,
    "uuid": _uuid,
    "bytes": _bytes,
}


def encoder_for(type_name: str) -> Fn | None:
    """Native → Debezium JSON value for one declared source type; None when the value passes unchanged.

    Never called with None (NULL stays None). Raises ValueError for an unknown type name.
    """
    canonical = canonical_type(type_name)
    if canonical.endswith("[]"):
        element = encoder_for(canonical[:-2])
        if element is None:
            return list
        return lambda v: [None if x is None else element(x) for x in v]
    if canonical == "array" or canonical in _PASS_THROUGH:
        return None
    return _CONVERTERS[canonical]


def debezium_value(type_name: str, value: Any) -> Any:
    """Convert one value (tests and tools; the hot path uses `row_encoder`)."""
    if value is None:
        return None
    enc = encoder_for(type_name)
    return value if enc is None else enc(value)


def row_encoder(column_types: Mapping[str, str], columns: Sequence[str] | None = None
                ) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """A function turning one selected row (values in `columns` order, default: `column_types` order)
    into the `after` image of a Debezium event: {column: Debezium JSON value}."""
    names = tuple(columns if columns is not None else column_types)
    convert = tuple((i, enc) for i, name in enumerate(names) if (enc := encoder_for(column_types[name])) is not None)

    if not convert:
        return lambda row: dict(zip(names, row, strict=True))

    def encode(row: Sequence[Any]) -> dict[str, Any]:
        values = list(row)
        for i, enc in convert:
            v = values[i]
            if v is not None:
                values[i] = enc(v)
        return dict(zip(names, values, strict=True))

    return encode
