"""Restricted expressions for projection files: parsed with `ast`, whitelisted, compiled to closures.

An expression is a small, side-effect-free formula over the source columns of one row, e.g.
`total_cents / 100`, `upper(currency_iso)`, `json_get(metadata, 'channel')`. It is parsed once with
Python's `ast` module and every node is checked against a whitelist; anything else (attribute access,
subscripts, calls of other names, lambdas, comprehensions, comparisons, names starting with `_`) is
rejected with a reason. Nothing is ever passed to `eval`/`exec`: each node becomes a plain Python
closure, so a projection file cannot run code.

Allowed:
  - source column names declared under `columns:`
  - literals: integers, decimals (`0.01` is the exact Decimal 0.01, never a float), 'strings',
    True/False/None
  - `+ - * /` and unary `-`/`+`; arithmetic is exact (int, or Decimal with 38 digits); `/` always
    gives a Decimal; None in → None out (SQL semantics)
  - functions: upper(s), lower(s), trim(s), coalesce(a, b, ...), concat(a, b, ...) (None counts as
    ''), round(x[, digits]) (half away from zero, digits a literal), nullif(a, b),
    json_get(doc, 'key'[, 'key' | index ...]) (None when a key is missing), cents(x) (= x / 100 with
    scale 2)

UNAVAILABLE (an unchanged TOAST value Debezium did not send) propagates: any result that depends on
it is UNAVAILABLE, so the target column keeps its stored value.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Collection
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from operator import itemgetter
from typing import Any

from pipelines.cdc.types import UNAVAILABLE
from pipelines.projection.errors import ProjectionError

__all__ = ["FUNCTIONS", "CompiledExpr", "compile_expression", "constant"]

MAX_EXPRESSION_LENGTH = 1000
MAX_NODES = 200
_CTX = Context(prec=38, rounding=ROUND_HALF_UP)
_UNAV = UNAVAILABLE

Row = dict[str, Any]
Fn = Callable[[Row], Any]


@dataclass(frozen=True)
class CompiledExpr:
    """A compiled expression: `fn(decoded_row) -> value`, plus what it reads."""

    text: str
    fn: Fn
    columns: frozenset[str]
    """Source columns the expression reads."""
    plain_column: str | None = None
    """Set when the expression is just a column name (a plain reference)."""


def constant(value: Any, text: str = "") -> CompiledExpr:
    """An expression that always yields `value`."""
    return CompiledExpr(text or repr(value), lambda _row: value, frozenset())


class _Reject(Exception):
    """Internal: a node is not allowed; carries the reason."""


def _num(x: Any, what: str) -> Any:
    t = type(x)
    if t is int or t is Decimal:
        return x
    if t is float:
        return Decimal(repr(x))
    raise ProjectionError(f"{what} needs numbers, got {t.__name__} {x!r}")


def _binop(op: ast.operator, fa: Fn, fb: Fn, text: str) -> Fn:
    what = f"'{text}'"
    if isinstance(op, ast.Add):
        def both_int(a: Any, b: Any) -> Any:
            return a + b
        ctx_op = _CTX.add
    elif isinstance(op, ast.Sub):
        def both_int(a: Any, b: Any) -> Any:
            return a - b
        ctx_op = _CTX.subtract
    elif isinstance(op, ast.Mult):
        def both_int(a: Any, b: Any) -> Any:
            return a * b
        ctx_op = _CTX.multiply
    else:  # Div: always Decimal
        def div(row: Row) -> Any:
            a = fa(row)
            b = fb(row)
            if a is None or b is None:
                return None
            if a is _UNAV or b is _UNAV:
                return _UNAV
            a = _num(a, what)
            b = _num(b, what)
            if b == 0:
                raise ProjectionError(f"{what}: division by zero")
            return _CTX.divide(a, b)
        return div

    def arith(row: Row) -> Any:
        a = fa(row)
        b = fb(row)
        if a is None or b is None:
            return None
        if a is _UNAV or b is _UNAV:
            return _UNAV
        if type(a) is int and type(b) is int:
            return both_int(a, b)
        return ctx_op(_num(a, what), _num(b, what))

    return arith


def _text_fn(name: str, method: Callable[[str], str]) -> Callable[[list[Fn], str], Fn]:
    def build(args: list[Fn], text: str) -> Fn:
        (fa,) = args

        def fn(row: Row) -> Any:
            v = fa(row)
            if v is None or v is _UNAV:
                return v
            if type(v) is not str:
                raise ProjectionError(f"'{text}': {name}() needs text, got {type(v).__name__} {v!r}")
            return method(v)

        return fn

    return build


def _coalesce(args: list[Fn], text: str) -> Fn:
    def fn(row: Row) -> Any:
        for f in args:
            v = f(row)
            if v is not None:
                return v  # UNAVAILABLE first means: the real value is unknown, keep stored
        return None

    return fn


def _concat(args: list[Fn], text: str) -> Fn:
    def fn(row: Row) -> Any:
        parts = []
        for f in args:
            v = f(row)
            if v is None:
                continue
            if v is _UNAV:
                return _UNAV
            t = type(v)
            if t is str:
                parts.append(v)
            elif t is int or t is Decimal:
                parts.append(str(v))
            else:
                raise ProjectionError(f"'{text}': concat() needs text or numbers, got {t.__name__} {v!r}")
        return "".join(parts)

    return fn


def _nullif(args: list[Fn], text: str) -> Fn:
    fa, fb = args

    def fn(row: Row) -> Any:
        a = fa(row)
        b = fb(row)
        if a is _UNAV or b is _UNAV:
            return _UNAV
        return None if a == b else a

    return fn


def _cents(args: list[Fn], text: str) -> Fn:
    (fa,) = args
    what = f"'{text}'"

    def fn(row: Row) -> Any:
        v = fa(row)
        if v is None or v is _UNAV:
            return v
        v = _num(v, what)
        return (Decimal(v) if type(v) is int else v).scaleb(-2, _CTX)

    return fn


def _round_builder(args: list[Fn], text: str, digits: int) -> Fn:
    (fa,) = args
    what = f"'{text}'"
    exp = Decimal(1).scaleb(-digits)

    def fn(row: Row) -> Any:
        v = fa(row)
        if v is None or v is _UNAV:
            return v
        v = _num(v, what)
        if type(v) is int and digits >= 0:
            return v
        try:
            return Decimal(v).quantize(exp, rounding=ROUND_HALF_UP, context=_CTX)
        except InvalidOperation:
            raise ProjectionError(f"{what}: cannot round {v!r} to {digits} digits") from None

    return fn


def _json_get_builder(args: list[Fn], text: str, path: tuple[str | int, ...]) -> Fn:
    fa = args[0]

    def fn(row: Row) -> Any:
        v = fa(row)
        if v is None or v is _UNAV:
            return v
        for step in path:
            if type(step) is str:
                if type(v) is not dict:
                    return None
                v = v.get(step)
            else:
                if type(v) is not list or not -len(v) <= step < len(v):
                    return None
                v = v[step]
            if v is None:
                return None
        return v

    return fn


# name → (min args, max args or None, builder(args, text) -> Fn); round/json_get take literals, below.
FUNCTIONS: dict[str, tuple[int, int | None, Callable[[list[Fn], str], Fn] | None]] = {
    "upper": (1, 1, _text_fn("upper", str.upper)),
    "lower": (1, 1, _text_fn("lower", str.lower)),
    "trim": (1, 1, _text_fn("trim", str.strip)),
    "coalesce": (1, None, _coalesce),
    "concat": (1, None, _concat),
    "nullif": (2, 2, _nullif),
    "cents": (1, 1, _cents),
    "round": (1, 2, None),
    "json_get": (2, None, None),
}


class _Compiler:
    def __init__(self, text: str, columns: Collection[str]) -> None:
        self.text = text
        self.columns = columns
        self.used: set[str] = set()

    def segment(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.text, node) or ast.unparse(node)

    def compile(self, node: ast.AST) -> Fn:
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Constant):
            value = self.literal(node)
            return lambda _row: value
        if isinstance(node, ast.BinOp):
            if not isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
                raise _Reject(f"operator {type(node.op).__name__} is not allowed (only + - * /)")
            return _binop(node.op, self.compile(node.left), self.compile(node.right), self.segment(node))
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                if isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float):
                    value = -self.literal(node.operand)
                    return lambda _row: value
                return _binop(ast.Sub(), lambda _row: 0, self.compile(node.operand), self.segment(node))
            if isinstance(node.op, ast.UAdd):
                return self.compile(node.operand)
            raise _Reject(f"operator {type(node.op).__name__} is not allowed (only unary - and +)")
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Attribute):
            raise _Reject("attribute access is not allowed")
        if isinstance(node, ast.Subscript):
            raise _Reject("subscripts are not allowed (use json_get(doc, 'key'))")
        raise _Reject(f"{type(node).__name__} is not allowed here")

    def name(self, node: ast.Name) -> Fn:
        name = node.id
        if name.startswith("_"):
            raise _Reject(f"name {name!r} is not allowed (names starting with '_' are reserved)")
        if name in FUNCTIONS and name not in self.columns:
            raise _Reject(f"{name} is a function; call it as {name}(...)")
        if name not in self.columns:
            raise _Reject(f"unknown source column {name!r} (declare it under columns:)")
        self.used.add(name)
        return itemgetter(name)

    def literal(self, node: ast.Constant) -> Any:
        value = node.value
        if value is None or type(value) in (bool, int, str):
            return value
        if type(value) is float:
            try:
                return Decimal(self.segment(node).replace("_", ""))
            except InvalidOperation:
                raise _Reject(f"cannot read number {self.segment(node)!r} exactly") from None
        raise _Reject(f"literal {value!r} of type {type(value).__name__} is not allowed")

    def literal_arg(self, node: ast.AST, types: tuple[type, ...], what: str) -> Any:
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            if type(node.operand.value) is int:
                return -node.operand.value
        if isinstance(node, ast.Constant) and type(node.value) in types:
            return node.value
        raise _Reject(f"{what} must be a literal {' or '.join(t.__name__ for t in types)}")

    def call(self, node: ast.Call) -> Fn:
        if isinstance(node.func, ast.Attribute):
            raise _Reject("attribute access is not allowed (no method calls)")
        if not isinstance(node.func, ast.Name):
            raise _Reject("only calls of the whitelisted functions are allowed: " + ", ".join(FUNCTIONS))
        fname = node.func.id
        if fname not in FUNCTIONS:
            raise _Reject(f"function {fname!r} is not allowed (allowed: {', '.join(FUNCTIONS)})")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise _Reject(f"{fname}() takes positional arguments only")
        lo, hi, builder = FUNCTIONS[fname]
        n = len(node.args)
        if n < lo or (hi is not None and n > hi):
            expected = f"{lo}" if lo == hi else f"{lo}..{hi}" if hi is not None else f"at least {lo}"
            raise _Reject(f"{fname}() takes {expected} argument(s), got {n}")
        text = self.segment(node)
        if fname == "round":
            digits = self.literal_arg(node.args[1], (int,), "round() digits") if n == 2 else 0
            if not -10 <= digits <= 18:
                raise _Reject("round() digits must be in -10..18")
            return _round_builder([self.compile(node.args[0])], text, digits)
        if fname == "json_get":
            path = tuple(self.literal_arg(a, (str, int), "json_get() keys") for a in node.args[1:])
            return _json_get_builder([self.compile(node.args[0])], text, path)
        assert builder is not None
        return builder([self.compile(a) for a in node.args], text)


def compile_expression(text: str, columns: Collection[str]) -> CompiledExpr:
    """Compile one expression over the declared source `columns`.

    Raises ProjectionError(reason) without a location; the loader adds file:line.
    """
    if not isinstance(text, str) or not text.strip():
        raise ProjectionError("expression must be a non-empty string")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ProjectionError(f"expression longer than {MAX_EXPRESSION_LENGTH} characters")
    stripped = text.strip()
    try:
        tree = ast.parse(stripped, mode="eval")
    except SyntaxError as exc:
        raise ProjectionError(f"invalid expression {stripped!r}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ProjectionError(f"invalid expression {stripped[:60]!r}: too deeply nested") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ProjectionError(f"expression {stripped[:60]!r}... has more than {MAX_NODES} parts")
    compiler = _Compiler(stripped, columns)
    try:
        fn = compiler.compile(tree.body)
    except _Reject as exc:
        raise ProjectionError(f"expression {stripped!r}: {exc}") from None
    plain = tree.body.id if isinstance(tree.body, ast.Name) else None
    return CompiledExpr(stripped, fn, frozenset(compiler.used), plain)
