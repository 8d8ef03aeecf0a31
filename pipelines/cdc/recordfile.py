"""Kafka records as a readable JSON file: fixtures, captured events, benchmark inputs. Pure I/O helpers.

A record file is a JSON list of objects `{"topic", "partition", "offset", "key", "value"}` where `key`
and `value` are either the record's JSON itself (an object; readable, what `dump_records` writes) or
the record's bytes as UTF-8 text (a string holding JSON, byte-exact as captured); null is a
tombstone / no key. `load_records` turns each into a `Record` with key/value as bytes, ready for
`parse_record` or the planner.
Optional extra fields (e.g. "title") are ignored, so captured files can be annotated.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import orjson

from pipelines.cdc.events import Record

__all__ = ["dump_records", "load_records"]


def _encode(value: object) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):  # the captured bytes as text
        return value.encode("utf-8")
    return orjson.dumps(value)


def load_records(path: str | Path) -> list[Record]:
    """Read a record file. ValueError naming the file and the entry when an entry is malformed."""
    path = Path(path)
    data = orjson.loads(path.read_bytes())
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of records")
    records = []
    for i, entry in enumerate(data):
        try:
            topic, partition, offset = entry["topic"], entry["partition"], entry["offset"]
        except (KeyError, TypeError):
            raise ValueError(f"{path}: entry {i} needs topic, partition, offset (and key, value)") from None
        if not isinstance(topic, str) or type(partition) is not int or type(offset) is not int:
            raise ValueError(f"{path}: entry {i}: topic must be a string, partition and offset integers")
        records.append(Record(topic, partition, offset, _encode(entry.get("key")), _encode(entry.get("value"))))
    return records


def dump_records(path: str | Path, records: Iterable[object]) -> None:
    """Write records (anything with .topic/.partition/.offset/.key/.value, bytes holding JSON) to a file."""
    out = [
        {
            "topic": r.topic,  # type: ignore[attr-defined]
            "partition": r.partition,  # type: ignore[attr-defined]
            "offset": r.offset,  # type: ignore[attr-defined]
            "key": None if r.key is None else orjson.loads(r.key),  # type: ignore[attr-defined]
            "value": None if r.value is None else orjson.loads(r.value),  # type: ignore[attr-defined]
        }
        for r in records
    ]
    Path(path).write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2) + b"\n")
