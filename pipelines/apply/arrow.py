"""Turn planned rows into Arrow tables typed by the contract (no I/O).

Arrow is how batches reach the reporting DB: DuckDB scans an Arrow table in place at millions of
rows/s, and the same columns feed PostgreSQL's COPY. Python-level executemany is never used on
the hot path.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from pipelines.contract.model import Column, Contract

_SIMPLE = {
    "smallint": pa.int16(), "integer": pa.int32(), "bigint": pa.int64(), "double": pa.float64(),
    "boolean": pa.bool_(), "varchar": pa.string(), "text": pa.string(), "date": pa.date32(),
    "time": pa.time64("us"), "timestamp": pa.timestamp("us"), "timestamptz": pa.timestamp("us", tz="UTC"),
    "json": pa.string(), "uuid": pa.string(),
}


def arrow_type(column: Column) -> pa.DataType:
    if column.base_type == "decimal":
        return pa.decimal128(int(column.precision), int(column.scale))
    return _SIMPLE[column.base_type]


def staged_schema(contract: Contract, keep_columns: Sequence[str]) -> pa.Schema:
    """Contract columns, then _source_position, _source_ts, _op, _is_delete, _has_values (a delete carrying
    the row's last image) and one _keep_<col> per TOAST column."""
    fields = [pa.field(c.name, arrow_type(c)) for c in contract.columns]
    fields += [pa.field("_source_position", pa.int64()), pa.field("_source_ts", pa.timestamp("us", tz="UTC")),
               pa.field("_op", pa.string()), pa.field("_is_delete", pa.bool_()), pa.field("_has_values", pa.bool_())]
    fields += [pa.field(f"_keep_{name}", pa.bool_()) for name in keep_columns]
    return pa.schema(fields)


def to_arrow(contract: Contract, columns: Sequence[list], keep_columns: Sequence[str]) -> pa.Table:
    """Build the staged table from column-major lists in `staged_schema` order."""
    schema = staged_schema(contract, keep_columns)
    arrays = [pa.array(values, type=field.type) for values, field in zip(columns, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)
