"""Validation of projected rows against the contract: types, required, lengths, precision, enums. Pure.

Only the attributes below are read from a contract, so this module does not depend on the contract
package (pipelines.contract.model.Contract/Column satisfy the protocols; tests use stand-ins).
Each column gets a checker once (`column_checker`); a checker returns the value to store
(a decimal quantized to the column's scale, an int widened to Decimal, ...) or raises
ContractViolation with one line naming `table.column`. UNAVAILABLE (a TOAST value to keep) passes
unchanged: it is never written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time
from decimal import Context, Decimal, InvalidOperation
from typing import Any, Protocol

from pipelines.cdc.types import UNAVAILABLE

__all__ = [
    "ContractColumnLike",
    "ContractLike",
    "ContractViolation",
    "column_checker",
    "compile_validator",
    "contract_columns",
    "validate",
]


class ContractColumnLike(Protocol):
    """What validation reads from a contract column (pipelines.contract.model.Column has it)."""

    @property
    def name(self) -> str: ...
    @property
    def base_type(self) -> str: ...  # smallint integer bigint decimal double boolean varchar text date time
    # timestamp timestamptz json uuid
    @property
    def length(self) -> int | None: ...
    @property
    def precision(self) -> int | None: ...
    @property
    def scale(self) -> int | None: ...
    @property
    def required(self) -> bool: ...
    @property
    def enum(self) -> Sequence[str] | None: ...


class ContractLike(Protocol):
    """What the planner reads from a contract table (pipelines.contract.model.Contract has it)."""

    @property
    def columns(self) -> Sequence[ContractColumnLike]: ...
    @property
    def primary_key(self) -> Sequence[str]: ...


class ContractViolation(ValueError):
    """A projected value does not fit its contract column; `str(err)` names table.column."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_INT_RANGES = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}
_CTX = Context(prec=80)
_UNAV = UNAVAILABLE


def _shown(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 80 else s[:77] + "..."


def _typed(subject: str, expected: str, v: Any) -> ContractViolation:
    return ContractViolation(f"{subject}: {_shown(v)} ({type(v).__name__}) is not a {expected}")


def _base_check(subject: str, col: ContractColumnLike, nullish: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The checker of one column. Fast path first (the expected type); None and UNAVAILABLE go to
    `nullish`, which applies `required`."""
    base = col.base_type
    if base in _INT_RANGES:
        limit = _INT_RANGES[base]

        def check_int(v: Any) -> Any:
            if type(v) is int and -limit <= v < limit:
                return v
            if type(v) is Decimal and v == v.to_integral_value() and -limit <= v < limit:
                return int(v)
            if type(v) is int or type(v) is Decimal:
                raise ContractViolation(f"{subject}: {_shown(v)} does not fit {base}")
            if v is None or v is _UNAV:
                return nullish(v)
            raise _typed(subject, base, v)

        return check_int
    if base == "decimal":
        precision, scale = col.precision or 38, col.scale or 0
        exp = Decimal(1).scaleb(-scale)
        bound = Decimal(10) ** (precision - scale)
        spelled = f"decimal({precision},{scale})"

        def check_decimal(v: Any) -> Any:
            t = type(v)
            if t is int:
                v = Decimal(v)
            elif t is not Decimal:
                if v is None or v is _UNAV:
                    return nullish(v)
                raise _typed(subject, spelled, v)
            if not v.is_finite():
                raise ContractViolation(f"{subject}: {v} is not a finite number")
            try:
                q = v.quantize(exp, context=_CTX)
            except InvalidOperation:
                raise ContractViolation(f"{subject}: {v} does not fit {spelled}") from None
            if q != v:
                raise ContractViolation(f"{subject}: {v} has more than {scale} decimal places ({spelled})")
            if abs(q) >= bound:
                raise ContractViolation(f"{subject}: {v} does not fit {spelled}")
            return q

        return check_decimal
    if base == "double":
        def check_double(v: Any) -> Any:
            t = type(v)
            if t is float:
                return v
            if t is int or t is Decimal:
                return float(v)
            if v is None or v is _UNAV:
                return nullish(v)
            raise _typed(subject, "double", v)

        return check_double
    if base == "boolean":
        def check_bool(v: Any) -> Any:
            if v is True or v is False:
                return v
            if v is None or v is _UNAV:
                return nullish(v)
            raise _typed(subject, "boolean", v)

        return check_bool
    if base in ("varchar", "text"):
        length = col.length if base == "varchar" else None
        allowed = frozenset(col.enum) if col.enum else None
        listed = ", ".join(col.enum) if col.enum else ""

        def check_text(v: Any) -> Any:
            if type(v) is not str:
                if v is None or v is _UNAV:
                    return nullish(v)
                raise _typed(subject, f"varchar({length})" if length else "text", v)
            if length is not None and len(v) > length:
                raise ContractViolation(f"{subject}: {_shown(v)} is longer than varchar({length})")
            if allowed is not None and v not in allowed:
                raise ContractViolation(f"{subject}: {_shown(v)} is not one of {listed}")
            return v

        return check_text
    if base == "date":
        def check_date(v: Any) -> Any:
            if type(v) is date:
                return v
            if v is None or v is _UNAV:
                return nullish(v)
            raise _typed(subject, "date", v)

        return check_date
    if base == "time":
        def check_time(v: Any) -> Any:
            if type(v) is time:
                return v
            if v is None or v is _UNAV:
                return nullish(v)
            raise _typed(subject, "time", v)

        return check_time
    if base == "timestamp":
        def check_timestamp(v: Any) -> Any:
            if type(v) is datetime:
                return v
            if v is None or v is _UNAV:
                return nullish(v)
            raise _typed(subject, "timestamp", v)

        return check_timestamp
    if base == "timestamptz":
        def check_timestamptz(v: Any) -> Any:
            if type(v) is datetime and v.tzinfo is not None:
                return v
            if type(v) is datetime:
                raise ContractViolation(f"{subject}: {_shown(v)} has no time zone (timestamptz)")
            if v is None or v is _UNAV:
                return nullish(v)
            raise _typed(subject, "timestamptz", v)

        return check_timestamptz
    if base == "json":
        def check_json(v: Any) -> Any:
            if v is None or v is _UNAV:
                return nullish(v)
            return v

        return check_json
    if base == "uuid":
        def check_uuid(v: Any) -> Any:
            if isinstance(v, uuid.UUID):
                return str(v)
            if type(v) is str:
                try:
                    return str(uuid.UUID(v))
                except ValueError:
                    pass
            if v is None or v is _UNAV:
                return nullish(v)
            raise _typed(subject, "uuid", v)

        return check_uuid
    raise ValueError(f"{subject}: unsupported contract type {base!r}")


def column_checker(table: str, col: ContractColumnLike) -> Callable[[Any], Any]:
    """A checker for one contract column: value → value to store, or ContractViolation."""
    subject = f"{table}.{col.name}"
    if col.required:
        def nullish(v: Any) -> Any:
            if v is None:
                raise ContractViolation(f"{subject} is required but the projection gave null")
            return v
    else:
        def nullish(v: Any) -> Any:
            return v
    return _base_check(subject, col, nullish)


def contract_columns(contract: ContractLike | Sequence[ContractColumnLike]) -> tuple[ContractColumnLike, ...]:
    """The data columns of a contract (or a plain column list); provenance names (`_...`) are skipped."""
    cols = contract.columns if hasattr(contract, "columns") else contract  # type: ignore[union-attr]
    return tuple(c for c in cols if not c.name.startswith("_"))


def compile_validator(table: str, columns: Sequence[ContractColumnLike]
                      ) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A validator for rows of one contract table: {column: value} → tuple in contract column order.

    A column absent from the row counts as null. Raises ContractViolation naming table.column.
    """
    checks = tuple((c.name, column_checker(table, c)) for c in columns if not c.name.startswith("_"))

    def validate_row(row: Mapping[str, Any]) -> tuple[Any, ...]:
        get = row.get
        return tuple([check(get(name)) for name, check in checks])

    return validate_row


def validate(row: Mapping[str, Any], contract_columns: Sequence[ContractColumnLike],
             table: str = "row") -> tuple[Any, ...]:
    """Check one projected row against contract columns; returns the values to store in contract order.

    Raises ContractViolation (one line, `table.column: reason`), also for a key of `row` that is not
    a contract column.
    """
    known = {c.name for c in contract_columns}
    for name in row:
        if name not in known:
            raise ContractViolation(f"{table}.{name} is not a column of the contract")
    return compile_validator(table, contract_columns)(row)
