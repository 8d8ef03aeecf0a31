"""Validation of projected rows against contract columns (stand-ins for the contract model)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest

from pipelines.cdc.types import UNAVAILABLE
from pipelines.projection import ContractViolation, compile_validator, validate

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Col:
    name: str
    base_type: str
    required: bool = True
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    enum: tuple[str, ...] | None = None


NOW = datetime(2024, 11, 25, 10, tzinfo=UTC)


@pytest.mark.parametrize(("col", "value", "stored"), [
    (Col("n", "smallint"), 32767, 32767),
    (Col("n", "integer"), -(2**31), -(2**31)),
    (Col("n", "bigint"), 2**63 - 1, 2**63 - 1),
    (Col("n", "bigint"), Decimal("12"), 12),
    (Col("d", "decimal", precision=12, scale=2), Decimal("123.45"), Decimal("123.45")),
    (Col("d", "decimal", precision=12, scale=2), Decimal("123.4"), Decimal("123.40")),
    (Col("d", "decimal", precision=12, scale=2), Decimal("123.450"), Decimal("123.45")),
    (Col("d", "decimal", precision=12, scale=2), 7, Decimal("7.00")),
    (Col("d", "decimal", precision=12, scale=2), Decimal("9999999999.99"), Decimal("9999999999.99")),
    (Col("d", "decimal", precision=12, scale=2), Decimal("-9999999999.99"), Decimal("-9999999999.99")),
    (Col("f", "double"), Decimal("1.5"), 1.5),
    (Col("b", "boolean"), False, False),
    (Col("s", "varchar", length=3), "EUR", "EUR"),
    (Col("s", "varchar", length=16, enum=("PAID", "PLACED")), "PAID", "PAID"),
    (Col("s", "text"), "x" * 10000, "x" * 10000),
    (Col("t", "timestamptz"), NOW, NOW),
    (Col("t", "timestamp"), datetime(2024, 1, 1), datetime(2024, 1, 1)),
    (Col("t", "date"), date(2024, 1, 1), date(2024, 1, 1)),
    (Col("t", "time"), time(10, 0), time(10, 0)),
    (Col("j", "json"), {"a": [1]}, {"a": [1]}),
    (Col("u", "uuid"), "6F9619FF-8B86-D011-B42D-00CF4FC964FF", "6f9619ff-8b86-d011-b42d-00cf4fc964ff"),
    (Col("n", "bigint", required=False), None, None),
    (Col("n", "bigint"), UNAVAILABLE, UNAVAILABLE),  # kept, never written
])
def test_accepts(col, value, stored):
    (out,) = validate({col.name: value}, [col], "t_v1")
    assert out == stored and type(out) is type(stored)


@pytest.mark.parametrize(("col", "value", "message"), [
    (Col("n", "bigint"), None, "t_v1.n is required but the projection gave null"),
    (Col("n", "smallint"), 40000, "t_v1.n: 40000 does not fit smallint"),
    (Col("n", "bigint"), 2**63, "does not fit bigint"),
    (Col("n", "integer"), True, "t_v1.n: True (bool) is not a integer"),
    (Col("n", "integer"), "1", "'1' (str) is not a integer"),
    (Col("n", "integer"), Decimal("1.5"), "Decimal('1.5') does not fit integer"),
    (Col("d", "decimal", precision=12, scale=2), Decimal("1.234"), "1.234 has more than 2 decimal places"),
    (Col("d", "decimal", precision=12, scale=2), Decimal("10000000000"), "does not fit decimal(12,2)"),
    (Col("d", "decimal", precision=12, scale=2), Decimal("NaN"), "is not a finite number"),
    (Col("d", "decimal", precision=12, scale=2), 1.5, "(float) is not a decimal(12,2)"),
    (Col("d", "decimal", precision=12, scale=2), "1.50", "(str) is not a decimal(12,2)"),
    (Col("f", "double"), "1", "is not a double"),
    (Col("b", "boolean"), 1, "1 (int) is not a boolean"),
    (Col("s", "varchar", length=3), "EURO", "t_v1.s: 'EURO' is longer than varchar(3)"),
    (Col("s", "varchar", length=3), 3, "3 (int) is not a varchar(3)"),
    (Col("s", "varchar", length=16, enum=("PAID", "PLACED")), "paid", "t_v1.s: 'paid' is not one of PAID, PLACED"),
    (Col("t", "timestamptz"), datetime(2024, 1, 1), "has no time zone"),
    (Col("t", "timestamptz"), "2024-01-01", "is not a timestamptz"),
    (Col("t", "timestamp"), date(2024, 1, 1), "is not a timestamp"),
    (Col("t", "date"), NOW, "is not a date"),
    (Col("t", "time"), 5, "is not a time"),
    (Col("u", "uuid"), "nope", "is not a uuid"),
])
def test_rejects(col, value, message):
    with pytest.raises(ContractViolation) as err:
        validate({col.name: value}, [col], "t_v1")
    assert message in str(err.value)


def test_missing_key_counts_as_null_and_order_is_the_contracts():
    cols = [Col("a", "bigint"), Col("b", "text", required=False), Col("c", "bigint")]
    assert validate({"c": 3, "a": 1}, cols, "t_v1") == (1, None, 3)


def test_unknown_column_is_a_violation():
    with pytest.raises(ContractViolation, match="t_v1.extra is not a column of the contract"):
        validate({"a": 1, "extra": 2}, [Col("a", "bigint")], "t_v1")


def test_provenance_names_are_skipped_by_the_compiled_validator():
    check = compile_validator("t_v1", [Col("a", "bigint"), Col("_source_position", "bigint")])
    assert check({"a": 1}) == (1,)


def test_unknown_contract_type():
    with pytest.raises(ValueError, match="unsupported contract type 'money'"):
        compile_validator("t_v1", [Col("m", "money")])


ALL_TYPES = [Col("c", "smallint"), Col("c", "integer"), Col("c", "bigint"), Col("c", "decimal", precision=5, scale=2),
             Col("c", "double"), Col("c", "boolean"), Col("c", "varchar", length=3), Col("c", "text"),
             Col("c", "date"), Col("c", "time"), Col("c", "timestamp"), Col("c", "timestamptz"), Col("c", "json"),
             Col("c", "uuid")]


@pytest.mark.parametrize("col", ALL_TYPES, ids=lambda c: c.base_type)
def test_null_and_unavailable_for_every_type(col):
    with pytest.raises(ContractViolation, match="t_v1.c is required but the projection gave null"):
        validate({"c": None}, [col], "t_v1")
    nullable = Col(col.name, col.base_type, False, col.length, col.precision, col.scale)
    assert validate({"c": None}, [nullable], "t_v1") == (None,)
    assert validate({"c": UNAVAILABLE}, [col], "t_v1") == (UNAVAILABLE,)
    assert validate({"c": UNAVAILABLE}, [nullable], "t_v1") == (UNAVAILABLE,)
