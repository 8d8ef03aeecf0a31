"""pipelines/output.py: one table as csv, json or a rich table that never cuts a value."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json

import pytest
from rich.console import Console

from pipelines.output import Format, Section, View, renderable, write_rows, write_tables

pytestmark = pytest.mark.unit

LONG = "customer_reference_identifier_that_is_much_longer_than_any_column"
COLUMNS = ["table", "live_rows", "freshness_s", "fresh", "newest", "note"]
ROWS = [
    ["stock_levels_v1", 1323456, 12.5, True, dt.datetime(2027, 6, 1, 12, 0, tzinfo=dt.UTC), LONG],
    ["order_lines_v1", 0, None, False, None, "brackets [bold]stay[/] as they are"],
]


def _text(fmt, columns=COLUMNS, rows=ROWS, **kw) -> str:
    out = io.StringIO()
    write_rows(columns, rows, fmt, out, **kw)
    return out.getvalue()


def _render(obj, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(obj)
    return out.getvalue()


def test_json_is_a_list_of_objects_with_raw_values():
    records = json.loads(_text("json"))
    assert records == [
        {"table": "stock_levels_v1", "live_rows": 1323456, "freshness_s": 12.5, "fresh": True,
         "newest": "2027-06-01T12:00:00+00:00", "note": LONG},
        {"table": "order_lines_v1", "live_rows": 0, "freshness_s": None, "fresh": False, "newest": None,
         "note": "brackets [bold]stay[/] as they are"},
    ]


def test_json_numbers_stay_numbers():
    records = json.loads(_text(Format.json, ["a", "b", "c", "d"],
                               [[decimal.Decimal("12.50"), decimal.Decimal("7"), float("nan"), (1, 2)]]))
    assert records == [{"a": 12.5, "b": 7, "c": None, "d": [1, 2]}]


def test_csv_has_a_header_and_unformatted_values():
    rows = list(csv.reader(io.StringIO(_text("csv"))))
    assert rows[0] == COLUMNS
    assert rows[1] == ["stock_levels_v1", "1323456", "12.5", "true", "2027-06-01T12:00:00+00:00", LONG]
    assert rows[2] == ["order_lines_v1", "0", "", "false", "", "brackets [bold]stay[/] as they are"]
    assert len(rows) == 3


def test_csv_quotes_commas_and_newlines():
    text = _text("csv", ["a", "b"], [["x, y", "line 1\nline 2"], [{"k": 1}, [1, 2]]])
    assert list(csv.reader(io.StringIO(text))) == [["a", "b"], ["x, y", "line 1\nline 2"], ['{"k": 1}', "[1, 2]"]]


def test_several_tables():
    sections = {"tables": Section(["a"], [[1], [2]]), "lags": Section(["topic", "lag"], [["t", None]]),
                "slots": Section(["slot"], [])}
    out = io.StringIO()
    write_tables(sections, "json", out)
    assert json.loads(out.getvalue()) == {"tables": [{"a": 1}, {"a": 2}], "lags": [{"topic": "t", "lag": None}],
                                          "slots": []}
    out = io.StringIO()
    write_tables(sections, "csv", out)
    blocks, block = [], []
    for row in csv.reader(io.StringIO(out.getvalue())):
        if row:
            block.append(row)
        else:
            blocks.append(block)
            block = []
    blocks.append(block)
    assert blocks == [[["a"], ["1"], ["2"]], [["topic", "lag"], ["t", ""]], [["slot"]]]


def test_unknown_format_and_ragged_rows_are_refused():
    with pytest.raises(ValueError, match="unknown output format"):
        _text("xml")
    with pytest.raises(ValueError, match="2 values for 3 columns"):
        _text("json", ["a", "b", "c"], [[1, 2]])


@pytest.mark.parametrize("width", [40, 60, 80, 120, 250])
def test_table_layout_never_cuts_a_value(width):
    text = _render(renderable(COLUMNS, ROWS, title="T"), width)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    flat = "".join(text.split())  # a folded value is whole again once the layout's whitespace is gone
    for value in ("stock_levels_v1", "order_lines_v1", "1,323,456", "12.5", "[bold]stay[/]"):
        assert value in text
    assert LONG in flat.replace("│", "")


def test_table_layout_keeps_words_whole_when_the_columns_fit():
    cols = ["contract_table", "live_rows", "last_error"]
    rows = [["stock_levels_v1", 1323456, "apply failed while writing the batch of offsets " * 3]]
    text = _render(renderable(cols, rows), 80)
    assert text.startswith("┏")  # a table, not the narrow layout
    assert "stock_levels_v1" in text and "1,323,456" in text


def test_narrow_terminal_gets_one_block_per_row():
    text = _render(renderable(COLUMNS, ROWS), 40)
    assert "┏" not in text
    assert "table:" in text and "live rows:" in text
    assert "stock_levels_v1" in text and "order_lines_v1" in text


def test_view_changes_only_the_table_layout():
    view = View(["name", "rows"], lambda r: [r[0].upper(), f"{r[1]} rows"])
    text = _render(renderable(["n", "r"], [["abc", 3]], view=view), 80)
    assert "ABC" in text and "3 rows" in text
    assert json.loads(_text("json", ["n", "r"], [["abc", 3]], view=view)) == [{"n": "abc", "r": 3}]


def test_a_stream_that_is_not_a_terminal_gets_no_escape_codes():
    out = io.StringIO()
    write_rows(["state"], [["down"]], "table", out, view=View(["state"], lambda r: [f"[red]{r[0]}[/]"]))
    assert "\x1b[" not in out.getvalue()
