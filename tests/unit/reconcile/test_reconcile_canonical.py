"""Canonical values: equal contract values compare equal whatever their Python spelling; nothing else does."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from reconcile_kit import ALL_TYPES, col, contract

from pipelines.reconcile.canonical import RowCanon, column_canon

pytestmark = pytest.mark.unit

UTC = dt.UTC
CET = dt.timezone(dt.timedelta(hours=1))


def py(column, value):
    c = column_canon(column)
    return value if c.python is None else c.python(value)


@pytest.mark.parametrize("value", [Decimal("12.3"), Decimal("12.30"), Decimal("12.300"), "12.30", 12.3])
def test_decimal_is_the_scaled_integer(value):
    assert py(col("a", "decimal", precision=12, scale=2), value) == 1230


def test_decimal_rounds_half_even_like_the_database_and_keeps_sign():
    amount = col("a", "decimal", precision=12, scale=2)
    assert py(amount, Decimal("0.125")) == 12
    assert py(amount, Decimal("-0.135")) == -14
    assert py(amount, Decimal("-0.00")) == 0
    assert py(amount, 7) == 700


def test_wide_decimal_is_text_on_both_sides():
    wide = column_canon(col("w", "decimal", precision=30, scale=4))
    assert wide.python(Decimal("123456789012345678.5")) == "1234567890123456785000"
    assert wide.stored("123456789012345678.5000") == "1234567890123456785000"
    assert wide.show("1234567890123456785000") == "123456789012345678.5000"


def test_timestamptz_is_utc_micros_whatever_the_zone():
    instant = col("t", "timestamptz")
    utc = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    micros = py(instant, utc)
    assert py(instant, utc.astimezone(CET)) == micros
    assert py(instant, utc.replace(tzinfo=None)) == micros  # naive: UTC, as Debezium's epoch encodings
    assert py(instant, "2026-01-02T04:04:05.000006+01:00") == micros
    assert py(instant, utc + dt.timedelta(microseconds=1)) == micros + 1
    assert column_canon(instant).show(micros) == "2026-01-02T03:04:05.000006Z"


def test_dates_times_json_uuid_double():
    assert py(col("d", "date"), dt.date(1970, 1, 2)) == 1
    assert py(col("d", "date"), dt.date(1969, 12, 31)) == -1
    assert py(col("c", "time"), dt.time(1, 2, 3, 4)) == 3_723_000_004
    assert py(col("c", "time"), dt.timedelta(hours=1, minutes=2, seconds=3, microseconds=4)) == 3_723_000_004
    assert py(col("j", "json"), {"b": 1, "a": [1, 2]}) == py(col("j", "json"), '{"a": [1, 2], "b": 1}')
    assert py(col("j", "json"), {"a": 1}) != py(col("j", "json"), {"a": "1"})
    u = uuid.uuid4()
    assert py(col("u", "uuid"), u) == py(col("u", "uuid"), str(u).upper()) == str(u)
    assert py(col("r", "double"), 1) == 1.0
    assert py(col("r", "double"), float("nan")) == "nan"


def test_select_list_per_dialect():
    canon = RowCanon(contract("every", ALL_TYPES))
    duck = dict(zip(canon.names, canon.select_list("duckdb"), strict=True))
    pg = dict(zip(canon.names, canon.select_list("postgres"), strict=True))
    assert duck["id"] == pg["id"] == '"id"'
    assert duck["amount"] == pg["amount"] == 'CAST("amount" * 100 AS BIGINT)'
    assert duck["instant"] == 'epoch_us("instant")'
    assert pg["instant"] == 'CAST(EXTRACT(EPOCH FROM "instant") * 1000000 AS BIGINT)'
    assert duck["doc"] == 'CAST("doc" AS VARCHAR)' and pg["doc"] == 'CAST("doc" AS TEXT)'
    assert pg["day"] == "CAST(\"day\" - DATE '1970-01-01' AS BIGINT)"
    with pytest.raises(ValueError, match="dialect"):
        canon.select_list("oracle")


def test_row_canon_keys_digests_and_provenance_ignored():
    lines = contract("lines", [col("order_id", "bigint", pk=True), col("line_number", "integer", pk=True),
                               col("amount", "decimal"), col("sku", "varchar")])
    canon = RowCanon(lines)
    a = canon.expected((1, 2, Decimal("1.5"), "X", 99, None, "r"))
    assert a == (1, 2, 150, "X")
    assert canon.key(a) == (1, 2)
    assert canon.digest(a) == canon.digest(canon.stored((1, 2, 150, "X")))
    assert canon.digest(a) != canon.digest((1, 2, 150, "Y"))
    assert canon.digest((1, 2, 150, None)) != canon.digest((1, 2, 150, ""))
    assert canon.show_key((1, 2)) == (("order_id", "1"), ("line_number", "2"))
    single = RowCanon(contract("orders", [col("order_id", "bigint", pk=True), col("flag", "boolean")]))
    assert single.key((7, True)) == 7
    assert single.digest((7, True)) != single.digest((7, 1))


def test_unsupported_type_is_an_error():
    bad = col("x", "bigint")
    object.__setattr__(bad, "base_type", "money")
    with pytest.raises(ValueError, match="unsupported contract type 'money'"):
        column_canon(bad)
