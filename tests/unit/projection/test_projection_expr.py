"""Restricted projection expressions: evaluation and the whitelist."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipelines.cdc.types import UNAVAILABLE
from pipelines.projection.errors import ProjectionError
from pipelines.projection.expr import compile_expression

pytestmark = pytest.mark.unit

COLUMNS = ("qty", "price_cents", "discount_cents", "name", "code", "metadata", "ratio", "missing", "flag")
ROW = {"qty": 3, "price_cents": 1999, "discount_cents": 500, "name": "  Kind of Blue ", "code": "eur",
       "metadata": {"channel": "web", "utm": {"source": "mail"}, "tags": ["a", "b"]}, "ratio": Decimal("0.125"),
       "missing": None, "flag": True}


def ev(text, row=None):
    return compile_expression(text, COLUMNS).fn(ROW if row is None else row)


@pytest.mark.parametrize(("text", "expected"), [
    ("qty", 3),
    ("price_cents / 100", Decimal("19.99")),
    ("(qty * price_cents - discount_cents) / 100", Decimal("54.97")),
    ("qty + 1", 4),
    ("qty - 5", -2),
    ("-qty", -3),
    ("+qty", 3),
    ("-1.5", Decimal("-1.5")),
    ("0.1 + 0.2", Decimal("0.3")),  # exact decimals, never floats
    ("ratio * 8", Decimal("1.000")),
    ("1 / 3", Decimal("0.33333333333333333333333333333333333333")),
    ("cents(price_cents)", Decimal("19.99")),
    ("cents(1200)", Decimal("12.00")),
    ("round(ratio, 2)", Decimal("0.13")),  # half away from zero
    ("round(-ratio, 2)", Decimal("-0.13")),
    ("round(qty)", 3),
    ("round(price_cents / 100)", Decimal("20")),
    ("upper(code)", "EUR"),
    ("lower('ABC')", "abc"),
    ("trim(name)", "Kind of Blue"),
    ("upper(trim(name))", "KIND OF BLUE"),
    ("coalesce(missing, code)", "eur"),
    ("coalesce(missing, missing)", None),
    ("concat(code, '-', qty)", "eur-3"),
    ("concat(missing, code)", "eur"),
    ("nullif(code, 'eur')", None),
    ("nullif(code, 'usd')", "eur"),
    ("json_get(metadata, 'channel')", "web"),
    ("json_get(metadata, 'utm', 'source')", "mail"),
    ("json_get(metadata, 'tags', 1)", "b"),
    ("json_get(metadata, 'tags', 5)", None),
    ("json_get(metadata, 'nope')", None),
    ("json_get(metadata, 'channel', 'deeper')", None),
    ("json_get(missing, 'channel')", None),
    ("'literal'", "literal"),
    ("None", None),
    ("True", True),
    ("missing + 1", None),  # SQL null semantics
    ("upper(missing)", None),
    ("cents(missing)", None),
])
def test_evaluates(text, expected):
    value = ev(text)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("text", [
    "price_cents", "price_cents / 100", "-price_cents", "upper(name)", "concat(name, 'x')",
    "json_get(name, 'a')", "round(price_cents, 1)", "cents(price_cents)", "nullif(name, 'x')",
    "coalesce(name, 'x')",
])
def test_unavailable_propagates(text):
    row = dict(ROW, price_cents=UNAVAILABLE, name=UNAVAILABLE)
    assert ev(text, row) is UNAVAILABLE


def test_coalesce_with_a_known_value_first_does_not_need_the_unavailable_one():
    assert ev("coalesce(code, name)", dict(ROW, name=UNAVAILABLE)) == "eur"


def test_plain_reference_and_columns_used():
    plain = compile_expression(" qty ", COLUMNS)
    assert plain.plain_column == "qty" and plain.columns == {"qty"}
    expr = compile_expression("(qty * price_cents - discount_cents) / 100", COLUMNS)
    assert expr.plain_column is None and expr.columns == {"qty", "price_cents", "discount_cents"}


@pytest.mark.parametrize(("text", "message"), [
    ("name + 1", "needs numbers, got str"),
    ("flag + 1", "needs numbers, got bool"),
    ("qty / 0", "division by zero"),
    ("upper(qty)", "upper() needs text, got int"),
    ("concat(metadata)", "concat() needs text or numbers, got dict"),
])
def test_runtime_errors_are_projection_errors(text, message):
    with pytest.raises(ProjectionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ev(text)


@pytest.mark.parametrize(("text", "message"), [
    ("__import__('os')", "function '__import__' is not allowed"),
    ("__import__('os').system('rm -rf /')", "attribute access is not allowed"),
    ("open('/etc/passwd')", "function 'open' is not allowed"),
    ("eval('1')", "function 'eval' is not allowed"),
    ("exec('x=1')", "function 'exec' is not allowed"),
    ("getattr(name, '__class__')", "function 'getattr' is not allowed"),
    ("name.upper()", "attribute access is not allowed"),
    ("name.__class__", "attribute access is not allowed"),
    ("().__class__.__bases__[0].__subclasses__()", "attribute access is not allowed"),
    ("(lambda: 1)()", "only calls of the whitelisted functions"),
    ("__builtins__", "names starting with '_' are reserved"),
    ("_secret", "names starting with '_' are reserved"),
    ("metadata['channel']", "subscripts are not allowed"),
    ("lambda: 1", "Lambda is not allowed"),
    ("[x for x in name]", "ListComp is not allowed"),
    ("{'a': 1}", "Dict is not allowed"),
    ("(qty, qty)", "Tuple is not allowed"),
    ("qty if flag else 0", "IfExp is not allowed"),
    ("qty == 1", "Compare is not allowed"),
    ("flag and qty", "BoolOp is not allowed"),
    ("not flag", "operator Not is not allowed"),
    ("~qty", "operator Invert is not allowed"),
    ("qty ** 2", "operator Pow is not allowed"),
    ("qty % 2", "operator Mod is not allowed"),
    ("qty // 2", "operator FloorDiv is not allowed"),
    ("f'{name}'", "JoinedStr is not allowed"),
    ("b'x'", "literal b'x' of type bytes is not allowed"),
    ("1j", "of type complex is not allowed"),
    ("...", "of type ellipsis is not allowed"),
    ("(x := 1)", "NamedExpr is not allowed"),
    ("upper(name=name)", "upper() takes positional arguments only"),
    ("upper(*name)", "upper() takes positional arguments only"),
    ("upper(name, name)", "upper() takes 1 argument(s), got 2"),
    ("nullif(name)", "nullif() takes 2 argument(s), got 1"),
    ("json_get(metadata)", "json_get() takes at least 2 argument(s), got 1"),
    ("json_get(metadata, name)", "json_get() keys must be a literal str or int"),
    ("round(ratio, qty)", "round() digits must be a literal int"),
    ("round(ratio, 99)", "round() digits must be in -10..18"),
    ("upper", "upper is a function; call it as upper(...)"),
    ("unknown_col", "unknown source column 'unknown_col' (declare it under columns:)"),
    ("qty +", "invalid expression"),
    ("import os", "invalid expression"),
    ("qty; qty", "invalid expression"),
    ("", "expression must be a non-empty string"),
    ("qty + " * 300 + "1", "longer than 1000 characters"),
    ("+".join(["qty"] * 150), "more than 200 parts"),
    ("(" * 400 + "1" + ")" * 400, "invalid expression"),
])
def test_rejected_at_compile_time(text, message):
    with pytest.raises(ProjectionError) as err:
        compile_expression(text, COLUMNS)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_non_string_is_rejected():
    with pytest.raises(ProjectionError):
        compile_expression(5, COLUMNS)  # type: ignore[arg-type]
