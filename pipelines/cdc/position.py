"""Source positions as ONE sortable signed 64-bit integer (`_source_position`). Pure.

Every contract row stores the source position of the change that produced it, so that a change older
than the stored row can be ignored (replays and redeliveries are harmless). Positions are compared
only between changes of ONE source table (one key lives in one table), never across services.

PostgreSQL: the change's WAL LSN (`source.lsn`), as is. An LSN is an unsigned 64-bit byte offset;
real clusters stay far below 2**63, and a larger value is rejected rather than wrapped.

MariaDB/MySQL (binlog):

    position = (file_sequence << 44) | (pos << 12) | min(row, 4095)

    bits 63     : 0 (sign)
    bits 44..62 : binlog file sequence, the numeric suffix of `source.file` (mariadb-bin.000042 → 42),
                  19 bits: up to 524,287 files
    bits 12..43 : `source.pos`, byte offset of the event in that file, 32 bits (max_binlog_size ≤ 1 GiB)
    bits  0..11 : `source.row`, the row number inside a multi-row event, capped at 4095

The order is the binlog order (file, then offset, then row); rows after the 4095th of one event share
a position and are ordered by Kafka offset, which is the planner's tie-break anyway. A binlog reset
(RESET MASTER, file sequence back to 1) breaks the order, as it does for every binlog consumer: a new
snapshot is then needed.
"""

from __future__ import annotations

__all__ = [
    "MAX_BINLOG_FILE_SEQUENCE",
    "MAX_BINLOG_POS",
    "binlog_file_sequence",
    "decode_binlog_position",
    "encode_binlog_position",
    "encode_lsn",
    "format_lsn",
]

MAX_BINLOG_FILE_SEQUENCE = (1 << 19) - 1
MAX_BINLOG_POS = (1 << 32) - 1
_MAX_ROW = (1 << 12) - 1
_MAX_INT64 = (1 << 63) - 1


def encode_lsn(lsn: int) -> int:
    """PostgreSQL LSN → position (identity, range-checked). ValueError if negative or ≥ 2**63."""
    if type(lsn) is not int or not 0 <= lsn <= _MAX_INT64:
        raise ValueError(f"LSN {lsn!r} is not an integer in 0..2**63-1")
    return lsn


def format_lsn(lsn: int) -> str:
    """An LSN the way PostgreSQL prints it (`16/B374D848`), for messages and logs."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def binlog_file_sequence(file_name: str) -> int:
    """The numeric suffix of a binlog file name: `mariadb-bin.000042` → 42. ValueError if none."""
    if not isinstance(file_name, str):
        raise ValueError(f"binlog file name {file_name!r} is not a string")
    _, dot, suffix = file_name.rpartition(".")
    if not dot or not suffix.isdigit():
        raise ValueError(f"binlog file name {file_name!r} has no numeric suffix")
    return int(suffix)


def encode_binlog_position(file_name: str, pos: int, row: int = 0) -> int:
    """Binlog (file, pos, row) → position (see the module docstring for the bit layout)."""
    seq = binlog_file_sequence(file_name)
    if seq > MAX_BINLOG_FILE_SEQUENCE:
        raise ValueError(f"binlog file sequence {seq} exceeds {MAX_BINLOG_FILE_SEQUENCE}")
    if type(pos) is not int or not 0 <= pos <= MAX_BINLOG_POS:
        raise ValueError(f"binlog pos {pos!r} is not an integer in 0..2**32-1")
    if type(row) is not int or row < 0:
        raise ValueError(f"binlog row {row!r} is not a non-negative integer")
    return (seq << 44) | (pos << 12) | (row if row < _MAX_ROW else _MAX_ROW)


def decode_binlog_position(position: int) -> tuple[int, int, int]:
    """Position → (file sequence, pos, row), for messages and tests."""
    return position >> 44, (position >> 12) & MAX_BINLOG_POS, position & _MAX_ROW
