"""Contract column types: SQL identifiers, physical type parsing and alias normalisation. Pure.

A contract states a column's physical type as SQL text (`bigint`, `decimal(12,2)`, `varchar(64)`).
It is normalised here (case, whitespace and aliases such as `int8` = `bigint`) to one of the
supported base types, so two spellings of the same type never look like a change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

IDENTIFIER_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
"""Plain (unquoted, lower-case) SQL identifier; the only names that ever reach generated SQL."""

BASE_TYPES: tuple[str, ...] = (
    "smallint", "integer", "bigint", "decimal", "double", "boolean", "varchar", "text",
    "date", "time", "timestamp", "timestamptz", "json", "uuid",
)

_ALIASES: dict[str, str] = {
    "int2": "smallint",
    "int": "integer",
    "int4": "integer",
    "int8": "bigint",
    "numeric": "decimal",
    "float8": "double",
    "double precision": "double",
    "bool": "boolean",
    "character varying": "varchar",
    "string": "text",
    "time without time zone": "time",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "jsonb": "json",
}

LOGICAL_TYPES: dict[str, tuple[str, ...]] = {
    "smallint": ("integer",),
    "integer": ("integer",),
    "bigint": ("integer",),
    "decimal": ("number",),
    "double": ("number",),
    "boolean": ("boolean",),
    "varchar": ("string",),
    "text": ("string",),
    "uuid": ("string",),
    "date": ("date",),
    "time": ("time",),
    "timestamp": ("timestamp",),
    "timestamptz": ("timestamp",),
    "json": ("object", "array"),
}
"""ODCS logicalType values allowed for each base type (the first one is the natural choice)."""

MAX_DECIMAL_PRECISION = 38
MAX_VARCHAR_LENGTH = 65535

_TYPE_RE = re.compile(r"^(?P<name>[a-z][a-z0-9 ]*?)\s*(?:\(\s*(?P<a>\d+)\s*(?:,\s*(?P<b>\d+)\s*)?\))?$")


@dataclass(frozen=True)
class PhysicalType:
    """A normalised physical type: `base` plus varchar `length` or decimal `precision`/`scale`."""

    base: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None

    @property
    def text(self) -> str:
        """Canonical spelling, e.g. `decimal(12,2)`, `varchar(64)`, `bigint`."""
        if self.base == "varchar":
            return f"varchar({self.length})"
        if self.base == "decimal":
            return f"decimal({self.precision},{self.scale})"
        return self.base


def is_identifier(name: object) -> bool:
    """True when `name` is a plain SQL identifier (see IDENTIFIER_RE)."""
    return isinstance(name, str) and IDENTIFIER_RE.fullmatch(name) is not None


def parse_physical_type(text: str) -> PhysicalType:
    """Parse and normalise a physical type; ValueError with a one-line reason when unsupported."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("physicalType must be a non-empty string")
    m = _TYPE_RE.fullmatch(" ".join(text.strip().lower().split()))
    if m is None:
        raise ValueError(f"cannot parse physicalType {text!r}")
    name = _ALIASES.get(m["name"], m["name"])
    a = int(m["a"]) if m["a"] is not None else None
    b = int(m["b"]) if m["b"] is not None else None
    if name not in BASE_TYPES:
        raise ValueError(f"unknown physicalType {text!r} (supported: {', '.join(BASE_TYPES)})")
    if name == "varchar":
        if a is None or b is not None:
            raise ValueError(f"physicalType {text!r}: varchar needs a length, e.g. varchar(64) (use text if unbounded)")
        if not 1 <= a <= MAX_VARCHAR_LENGTH:
            raise ValueError(f"physicalType {text!r}: varchar length must be 1..{MAX_VARCHAR_LENGTH}")
        return PhysicalType("varchar", length=a)
    if name == "decimal":
        if a is None:
            raise ValueError(f"physicalType {text!r}: decimal needs a precision, e.g. decimal(12,2)")
        scale = b if b is not None else 0
        if not 1 <= a <= MAX_DECIMAL_PRECISION or scale > a:
            raise ValueError(
                f"physicalType {text!r}: decimal precision must be 1..{MAX_DECIMAL_PRECISION} and scale <= precision"
            )
        return PhysicalType("decimal", precision=a, scale=scale)
    if a is not None:
        raise ValueError(f"physicalType {text!r}: {name} takes no length or precision")
    return PhysicalType(name)
