"""Strict decoding of Debezium plain-JSON values by declared source type."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest

from pipelines.cdc.types import (
    UNAVAILABLE,
    UNAVAILABLE_PLACEHOLDER,
    TypeDecodeError,
    Unavailable,
    canonical_type,
    decode,
    decoder_for,
    is_placeholder,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("type_name", "raw", "expected"), [
    ("smallint", 12, 12),
    ("int2", -32768, -32768),
    ("integer", 2_000_000_000, 2_000_000_000),
    ("int4", 7, 7),
    ("bigint", 9_007_199_254_740_993, 9_007_199_254_740_993),
    ("int8", -1, -1),
    ("boolean", True, True),
    ("bool", False, False),
    ("boolean", 1, True),  # MariaDB TINYINT(1)
    ("boolean", 0, False),
    ("text", "hello", "hello"),
    ("varchar(32)", "LP-0042", "LP-0042"),
    ("char(3)", "eur", "eur"),
    ("character varying", "x", "x"),
    ("enum", "PAID", "PAID"),
    ("numeric", "12.30", Decimal("12.30")),
    ("numeric(5,4)", "0.0420", Decimal("0.0420")),
    ("decimal", "-1E+3", Decimal("-1E+3")),
    ("double", 1.5, 1.5),
    ("real", 2, 2.0),
    ("date", 0, date(1970, 1, 1)),
    ("date", 20052, date(2024, 11, 25)),
    ("date", -1, date(1969, 12, 31)),
    ("time", 0, time(0, 0)),
    ("time", 37_230_000_123, time(10, 20, 30, 123)),
    ("timestamp", 1_732_528_800_123_456, datetime(2024, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)),
    ("timestamp", -1, datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ("timestamp_ms", 1_732_528_800_123, datetime(2024, 11, 25, 10, 0, 0, 123000, tzinfo=UTC)),
    ("datetime", 1_732_528_800_000_001, datetime(2024, 11, 25, 10, 0, 0, 1, tzinfo=UTC)),
    ("timestamptz", "2024-11-25T10:00:00.123456Z", datetime(2024, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)),
    ("timestamptz", "2024-11-25T10:00:00Z", datetime(2024, 11, 25, 10, 0, tzinfo=UTC)),
    ("timestamptz", "2024-11-25T12:00:00.5+02:00", datetime(2024, 11, 25, 10, 0, 0, 500000, tzinfo=UTC)),
    ("timestamptz", "2024-11-25T10:00:00.123456789Z", datetime(2024, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)),
    ("jsonb", '{"channel": "web", "n": [1, 2]}', {"channel": "web", "n": [1, 2]}),
    ("json", "[1]", [1]),
    ("json", "null", None),
    ("uuid", "6F9619FF-8B86-D011-B42D-00CF4FC964FF", "6f9619ff-8b86-d011-b42d-00cf4fc964ff"),
    ("bytea", base64.b64encode(b"\x00\x01ab").decode(), b"\x00\x01ab"),
    ("array", [1, "a"], [1, "a"]),
    ("integer[]", [1, 2, 3], [1, 2, 3]),
    ("text[]", ["a", "b"], ["a", "b"]),
])
def test_decodes_each_type(type_name, raw, expected):
    value = decode(type_name, raw, "t.c")
    assert value == expected
    assert type(value) is type(expected)
    if isinstance(expected, datetime):
        assert value.tzinfo is not None and value.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("type_name", [
    "smallint", "integer", "bigint", "boolean", "text", "numeric", "double", "date", "time", "timestamp",
    "timestamp_ms", "timestamptz", "jsonb", "uuid", "bytea", "array", "integer[]",
])
def test_null_is_none_for_every_type(type_name):
    assert decode(type_name, None) is None


@pytest.mark.parametrize(("type_name", "raw"), [
    ("smallint", True),
    ("smallint", "12"),
    ("smallint", 12.0),
    ("smallint", 70000),
    ("integer", 2**32),
    ("bigint", 2**64),
    ("bigint", "9"),
    ("boolean", 2),
    ("boolean", "true"),
    ("text", 12),
    ("text", {"a": 1}),
    ("numeric", 12.3),  # decimal.handling.mode=string drifted to double
    ("numeric", 12),
    ("numeric", "twelve"),
    ("double", "1.5"),
    ("date", "2024-11-25"),
    ("date", 1.5),
    ("time", -1),
    ("time", 86_400_000_000),
    ("time", "10:00"),
    ("timestamp", "2024-11-25T10:00:00Z"),
    ("timestamp", True),
    ("timestamp_ms", 1.0),
    ("timestamptz", 1_732_528_800_000),
    ("timestamptz", "2024-11-25T10:00:00"),  # no zone
    ("timestamptz", "yesterday"),
    ("jsonb", {"channel": "web"}),  # already parsed: not what the connector sends
    ("jsonb", "{not json"),
    ("uuid", "not-a-uuid"),
    ("bytea", "***"),
    ("bytea", 5),
    ("array", "1,2"),
    ("integer[]", [1, "2"]),
])
def test_rejects_wrong_types(type_name, raw):
    with pytest.raises(TypeDecodeError):
        decode(type_name, raw, "public.orders.col")


def test_error_names_column_type_and_value():
    with pytest.raises(TypeDecodeError) as err:
        decode("smallint", "10", "public.orders.state_code")
    assert str(err.value) == "column public.orders.state_code: '10' is not a valid smallint (got str)"
    assert err.value.column == "public.orders.state_code"
    assert err.value.value == "10"


def test_long_values_are_shortened_in_messages():
    with pytest.raises(TypeDecodeError) as err:
        decode("integer", "x" * 500, "t.c")
    assert len(str(err.value)) < 160


@pytest.mark.parametrize(("type_name", "raw"), [
    ("text", UNAVAILABLE_PLACEHOLDER),
    ("jsonb", UNAVAILABLE_PLACEHOLDER),
    ("bytea", base64.b64encode(UNAVAILABLE_PLACEHOLDER.encode()).decode()),
    ("text[]", [UNAVAILABLE_PLACEHOLDER]),
    ("array", [UNAVAILABLE_PLACEHOLDER]),
    ("numeric", UNAVAILABLE_PLACEHOLDER),
])
def test_toast_placeholder_becomes_unavailable(type_name, raw):
    assert decode(type_name, raw) is UNAVAILABLE
    assert is_placeholder(raw)


def test_unavailable_is_a_singleton_with_a_readable_repr():
    assert Unavailable() is UNAVAILABLE
    assert repr(UNAVAILABLE) == "UNAVAILABLE"
    assert not is_placeholder("plain text")


@pytest.mark.parametrize(("declared", "canonical"), [
    ("INT8", "bigint"), ("varchar(32)", "text"), ("Character Varying (10)", "text"), ("numeric(12, 2)", "decimal"),
    ("jsonb", "json"), ("timestamp with time zone", "timestamptz"), ("int[]", "integer[]"), ("bytea", "bytes"),
    ("DATETIME", "timestamp"), ("timestamp_ms", "timestamp_ms"),
])
def test_canonical_type(declared, canonical):
    assert canonical_type(declared) == canonical


@pytest.mark.parametrize("declared", ["money", "geometry", "", 5, "int[][x]"])
def test_unknown_source_type_is_an_error(declared):
    with pytest.raises(ValueError):
        decoder_for(declared, "t.c")
