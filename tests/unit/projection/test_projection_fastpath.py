"""Generated straight-line functions of the hot path."""

from __future__ import annotations

import pytest

from pipelines.projection.fastpath import dict_decoder, tuple_builder

pytestmark = pytest.mark.unit


def test_dict_decoder_decodes_and_reports_the_missing_column():
    decode = dict_decoder([("a", int), ("b", str.upper)], lambda c: LookupError(f"missing {c}"))
    assert decode({"a": "1", "b": "x", "extra": 0}) == {"a": 1, "b": "X"}
    with pytest.raises(LookupError, match="missing b"):
        decode({"a": "1"})


def test_dict_decoder_reraises_a_key_error_from_inside_a_decoder():
    def bad(_v):
        raise KeyError("inner")

    decode = dict_decoder([("a", bad)], lambda c: LookupError(c))
    with pytest.raises(KeyError, match="inner"):
        decode({"a": 1})


def test_empty_decoder_and_builder():
    assert dict_decoder([], lambda c: LookupError(c))({"a": 1}) == {}
    assert tuple_builder([])({}) == ()
    assert tuple_builder([], extra=2)({}, 1, 2) == (1, 2)


def test_tuple_builder_forms():
    build = tuple_builder([("a", None, str), (None, lambda r: r["a"] * 2, abs), (None, None, lambda v: v)], extra=1)
    assert build({"a": -3}, "p") == ("-3", 6, None, "p")


def test_names_never_reach_the_generated_source():
    evil = "a'] or __import__('os').system('echo pwned') or row['"
    build = tuple_builder([(evil, None, lambda v: v)])
    assert build({evil: 1}) == (1,)
