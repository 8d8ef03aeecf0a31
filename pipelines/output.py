"""Rows on the way out of the `reporting` command: a table for people, CSV or JSON for programs.

`write_rows(columns, rows, fmt, stream)` writes one table; `write_tables({name: Section}, fmt, stream)`
several (what `reporting status` prints). Both only write to `stream`.

- `table`: a rich table that never cuts a value: cells wrap (long words fold), and when the columns
  cannot fit the width at all (80 columns, a pipe) every row is printed as `column: value` lines
  instead. No ANSI codes unless `stream` is a terminal and NO_COLOR is unset.
- `csv`: a header of the stable column names, then one line per row, values as they are (numbers
  as numbers, no thousands separators, None empty, true/false, times in ISO 8601, lists and objects as
  JSON). Several tables: one CSV block each (header first), separated by an empty line.
- `json`: a list of objects (column name → value); several tables: an object of such lists.

Callers give the raw values; how the table layout shows them (thousands separators, units, colours,
other headers) is an optional `View`.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import enum
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, TextIO

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

__all__ = ["Format", "HelpGroup", "Section", "View", "make_console", "renderable", "to_records", "to_rows", "write_rows",
           "write_tables"]


class Format(enum.StrEnum):
    """`--format` of the commands that print rows."""

    table = "table"
    csv = "csv"
    json = "json"


FORMAT_HELP = "table (for people), csv or json (one record per row, full values, for programs)."


def make_console(stream: TextIO | None = None, *, stderr: bool = False, soft_wrap: bool = False) -> Console:
    """A rich Console on `stream` (default: the current stdout, or stderr) that writes plain text unless
    it is a terminal, and no escape codes at all when NO_COLOR is set (https://no-color.org).
    `soft_wrap`: a printed line stays one line (messages; the terminal wraps it), tables still fit the width."""
    plain = os.environ.get("NO_COLOR", "") != ""
    return Console(file=stream, stderr=stderr, highlight=False, color_system=None if plain else "auto",
                   no_color=plain or None, soft_wrap=soft_wrap)


@dataclass(frozen=True)
class View:
    """How the table layout shows rows when not every column as it is: its own headers, and a function
    from a row of raw values to the cells shown (str, rich Text or values formatted by default)."""

    headers: Sequence[str]
    cells: Callable[[Sequence[Any]], Sequence[Any]]
    right: frozenset[str] = frozenset()
    """Headers whose cells are right-aligned (numbers)."""


@dataclass(frozen=True)
class Section:
    """One table of a command's output: stable column names and rows of raw values."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    title: str | None = None
    view: View | None = None


# ------------------------------------------------------------------------------------------ values
def _plain(value: Any) -> Any:
    """A value as JSON holds it: numbers stay numbers, times become ISO 8601 text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return None
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, PurePath):
        return str(value)
    return str(value)


def _csv_cell(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _shown(value: Any) -> Any:
    """Default display of a raw value in the table layout."""
    if value is None:
        return ""
    if isinstance(value, Text):
        return value
    if isinstance(value, str):
        return Text(value)  # as it is: brackets in a value are not rich markup
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}" if math.isfinite(value) else str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        return Text(json.dumps(_plain(value), ensure_ascii=False))
    return Text(str(value))


def to_rows(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    """Rows as lists, each checked to hold one value per column."""
    out = []
    for row in rows:
        row = list(row)
        if len(row) != len(columns):
            raise ValueError(f"a row has {len(row)} values for {len(columns)} columns ({', '.join(columns)})")
        out.append(row)
    return out


def to_records(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows as JSON-ready objects (column name → plain value)."""
    columns = list(columns)
    return [{c: _plain(v) for c, v in zip(columns, row, strict=True)} for row in to_rows(columns, rows)]


# ------------------------------------------------------------------------------------------ table layout
class _Rows:
    """A rich renderable: a table when its columns fit the width, else one `column: value` block per row."""

    def __init__(self, headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None,
                 right: frozenset[str]) -> None:
        self.headers, self.rows, self.title, self.right = list(headers), rows, title, right

    def _table(self, widths: Sequence[int] | None = None) -> Table:
        table = Table(title=self.title, title_justify="left")
        for i, h in enumerate(self.headers):
            table.add_column(Text(h), justify="right" if h in self.right else "left", overflow="fold",
                             no_wrap=False, width=widths[i] if widths else None)
        for row in self.rows:
            table.add_row(*[_shown(v) for v in row])
        return table

    def _widths(self, console: Console, options: ConsoleOptions) -> list[int] | None:
        """Content width of each column so that no word is broken, or None when they cannot fit.

        Rich would shrink the widest columns first (folding their words); here every column keeps at least
        its longest word and shares the rest of the width in proportion to what it would like more."""
        unbounded = options.update(width=1_000_000, max_width=1_000_000)
        lows, highs = [], []
        for i, h in enumerate(self.headers):
            cells = [Text(h), *(_shown(r[i]) for r in self.rows)]
            sizes = [Measurement.get(console, unbounded, c) for c in cells]
            lows.append(max(1, *(m.minimum for m in sizes)))
            highs.append(max(1, *(m.maximum for m in sizes)))
        room = options.max_width - (3 * len(self.headers) + 1)  # borders and one space of padding each side
        if sum(highs) <= room:
            return highs
        if sum(lows) > room:
            return None
        spare, want = room - sum(lows), [hi - lo for lo, hi in zip(lows, highs, strict=True)]
        widths = [lo + spare * w // sum(want) for lo, w in zip(lows, want, strict=True)]
        return widths

    def _records(self) -> RenderableType:
        parts: list[RenderableType] = []
        if self.title:
            parts.append(Text(self.title, style="italic"))
        width = max((len(h) for h in self.headers), default=0) + 1
        for i, row in enumerate(self.rows):
            if i:
                parts.append(Text(""))
            grid = Table.grid(padding=(0, 1))
            grid.add_column(no_wrap=True, width=width, style="bold")
            grid.add_column(overflow="fold")
            for h, v in zip(self.headers, row, strict=True):
                grid.add_row(Text(f"{h}:"), _shown(v))
            parts.append(grid)
        if not self.rows:
            parts.append(Text("(no rows)"))
        return Group(*parts)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths = self._widths(console, options) if self.headers else None
        yield self._table(widths) if widths is not None else self._records()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self._table())


def renderable(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None,
               view: View | None = None) -> RenderableType:
    """The table layout of rows, as a rich renderable (to compose with other output)."""
    rows = to_rows(columns, rows)
    if view is None:
        numeric = frozenset(c.replace("_", " ") for i, c in enumerate(columns)
                            if any(isinstance(r[i], (int, float, decimal.Decimal)) and not isinstance(r[i], bool)
                                   for r in rows)
                            and all(r[i] is None or (isinstance(r[i], (int, float, decimal.Decimal))
                                                     and not isinstance(r[i], bool)) for r in rows))
        return _Rows([c.replace("_", " ") for c in columns], rows, title, numeric)
    return _Rows(view.headers, [list(view.cells(r)) for r in rows], title, frozenset(view.right))


# ------------------------------------------------------------------------------------------ writing
def _format(fmt: Format | str) -> Format:
    try:
        return Format(getattr(fmt, "value", fmt))
    except ValueError:
        raise ValueError(f"unknown output format {fmt!r} (table, csv or json)") from None


def write_tables(sections: Mapping[str, Section], fmt: Format | str, stream: TextIO,
                 console: Console | None = None) -> None:
    """Write several tables: json {name: [records]}, csv blocks separated by an empty line, or rich tables
    (on `console` when given, else on a console made for `stream`)."""
    fmt = _format(fmt)
    if fmt is Format.json:
        json.dump({name: to_records(s.columns, s.rows) for name, s in sections.items()}, stream, indent=2,
                  ensure_ascii=False, allow_nan=False)
        stream.write("\n")
    elif fmt is Format.csv:
        writer = csv.writer(stream, lineterminator="\n")
        for i, s in enumerate(sections.values()):
            if i:
                stream.write("\n")
            writer.writerow(list(s.columns))
            writer.writerows([_csv_cell(v) for v in r] for r in to_rows(s.columns, s.rows))
    else:
        console = console or make_console(stream)
        for s in sections.values():
            console.print(renderable(s.columns, s.rows, title=s.title, view=s.view))


def write_rows(columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: Format | str, stream: TextIO, *,
               title: str | None = None, view: View | None = None, console: Console | None = None) -> None:
    """Write one table to `stream`: a json list of objects, csv with a header, or a rich table."""
    rows = to_rows(columns, rows)
    if _format(fmt) is Format.json:
        json.dump(to_records(columns, rows), stream, indent=2, ensure_ascii=False, allow_nan=False)
        stream.write("\n")
        return
    write_tables({"rows": Section(columns, rows, title, view)}, fmt, stream, console)


class HelpGroup(TyperGroup):
    """Plain help listing each sub-command with its whole first sentence (click cuts it near 45 characters)."""

    def format_commands(self, ctx, formatter) -> None:
        rows = [(name, cmd.get_short_help_str(limit=10_000)) for name in self.list_commands(ctx)
                if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
