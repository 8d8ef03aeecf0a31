"""Source positions packed into one sortable signed 64-bit integer."""

from __future__ import annotations

import pytest

from pipelines.cdc.position import (
    MAX_BINLOG_FILE_SEQUENCE,
    MAX_BINLOG_POS,
    binlog_file_sequence,
    decode_binlog_position,
    encode_binlog_position,
    encode_lsn,
    format_lsn,
)

pytestmark = pytest.mark.unit


def test_lsn_is_the_position():
    assert encode_lsn(0x16_B374D848) == 0x16_B374D848
    assert format_lsn(0x16_B374D848) == "16/B374D848"


@pytest.mark.parametrize("bad", [-1, 2**63, "16/B374D848", None, True, 1.0])
def test_bad_lsn(bad):
    with pytest.raises(ValueError):
        encode_lsn(bad)


def test_binlog_layout_round_trips():
    p = encode_binlog_position("mariadb-bin.000042", 123_456, 7)
    assert p == (42 << 44) | (123_456 << 12) | 7
    assert decode_binlog_position(p) == (42, 123_456, 7)


def test_binlog_order_is_file_then_pos_then_row():
    coords = [("b.000001", 4, 0), ("b.000001", 4, 1), ("b.000001", 5, 0), ("b.000001", MAX_BINLOG_POS, 4095),
              ("b.000002", 0, 0), ("b.000010", 4, 0), (f"b.{MAX_BINLOG_FILE_SEQUENCE}", MAX_BINLOG_POS, 9999)]
    positions = [encode_binlog_position(*c) for c in coords]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert max(positions) < 2**63  # fits a signed BIGINT


def test_row_is_capped():
    assert encode_binlog_position("b.1", 10, 5000) == encode_binlog_position("b.1", 10, 4095)


@pytest.mark.parametrize(("args", "message"), [
    (("b.000001", 2**32, 0), "pos"),
    (("b.000001", -1, 0), "pos"),
    (("b.000001", 4, -1), "row"),
    ((f"b.{MAX_BINLOG_FILE_SEQUENCE + 1}", 4, 0), "sequence"),
    (("binlog", 4, 0), "suffix"),
    (("b.x1", 4, 0), "suffix"),
])
def test_binlog_errors(args, message):
    with pytest.raises(ValueError, match=message):
        encode_binlog_position(*args)


def test_file_sequence():
    assert binlog_file_sequence("mysql-bin.000003") == 3
    with pytest.raises(ValueError):
        binlog_file_sequence(None)  # type: ignore[arg-type]
