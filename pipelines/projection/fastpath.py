"""Straight-line functions for the per-row hot path, built once from already-compiled closures.

A row decoder or a target-row builder is a fixed sequence of calls; written as one Python
expression (`(c0(f0(row)), c1(row[k1]), ...)`) it runs about a third faster than a loop over pairs.
The source text assembled here contains ONLY generated names (`d0`, `k0`, `f0`, `c0`, ...): every
column name, closure and constant is bound through the namespace dict, never spliced into the text,
so nothing from a projection file is ever compiled or evaluated as code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["dict_decoder", "tuple_builder"]

Fn = Callable[[Any], Any]


def _compile(name: str, source: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    code = compile(source, f"<generated {name}>", "exec")
    exec(code, namespace)  # noqa: S102 - generated names only, see module docstring
    return namespace[name]


def dict_decoder(decoders: Sequence[tuple[str, Fn]], on_missing: Callable[[str], Exception]
                 ) -> Callable[[Any], dict[str, Any]]:
    """`row -> {column: decoder(row[column])}`; a missing column raises `on_missing(column)`."""
    if not decoders:
        return lambda _row: {}
    ns: dict[str, Any] = {}
    items = []
    for i, (column, decoder) in enumerate(decoders):
        ns[f"k{i}"] = column
        ns[f"d{i}"] = decoder
        items.append(f"k{i}: d{i}(row[k{i}])")
    columns = tuple(c for c, _ in decoders)

    def missing(row: Any) -> Exception | None:
        for c in columns:
            if c not in row:
                return on_missing(c)
        return None

    ns["_missing"] = missing
    source = (
        "def decode(row):\n"
        "    try:\n"
        f"        return {{{', '.join(items)}}}\n"
        "    except KeyError:\n"
        "        exc = _missing(row)\n"
        "        if exc is None:\n"
        "            raise\n"
        "    raise exc\n"
    )
    return _compile("decode", source, ns)


def tuple_builder(columns: Sequence[tuple[str | None, Fn | None, Fn]], extra: int = 0
                  ) -> Callable[..., tuple[Any, ...]]:
    """`(row, *extra) -> (check(value), ..., *extra)`.

    Each entry is (plain column or None, expression fn or None, check): a plain column reads
    `row[column]`, an expression calls `fn(row)`, neither gives None. `extra` trailing arguments are
    appended unchanged (provenance values).
    """
    ns: dict[str, Any] = {}
    items = []
    for i, (plain, fn, check) in enumerate(columns):
        ns[f"c{i}"] = check
        if plain is not None:
            ns[f"k{i}"] = plain
            items.append(f"c{i}(row[k{i}])")
        elif fn is not None:
            ns[f"f{i}"] = fn
            items.append(f"c{i}(f{i}(row))")
        else:
            items.append(f"c{i}(None)")
    extras = [f"x{j}" for j in range(extra)]
    params = ", ".join(["row", *extras])
    body = ", ".join(items + extras)
    source = f"def build({params}):\n    return ({body}{',' if items or extras else ''})\n"
    return _compile("build", source, ns)
