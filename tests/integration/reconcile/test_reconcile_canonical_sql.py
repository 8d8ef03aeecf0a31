"""The canonical SQL of every contract type yields, on real DuckDB and PostgreSQL, exactly what the Python
canonicalisation yields for the same values: otherwise a correct row would be reported as different."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal

import pytest

from pipelines.apply.duckdb_backend import DuckDbBackend
from pipelines.apply.postgres_backend import PostgresBackend
from pipelines.contract.ddl import qualified_name, quote_ident
from pipelines.reconcile.canonical import RowCanon
from pipelines.reconcile.reading import fetch_stored, iter_stored
from tests.unit.reconcile.reconcile_kit import ALL_TYPES, contract

pytestmark = pytest.mark.integration

UTC = dt.UTC
ZONE = dt.timezone(dt.timedelta(hours=-9, minutes=-30))
EVERY = contract("every_type", ALL_TYPES)
ROWS = [
    # id small num flag code note amount wide ratio day clock wall instant doc ref
    (1, -3, 2_000_000_000, True, "ABC", "ünïcode ✓", Decimal("12.30"), Decimal("12345678901234567890.1234"), 0.1,
     dt.date(2026, 2, 28), dt.time(23, 59, 59, 999999), dt.datetime(2026, 1, 1, 0, 0, 0, 1),
     dt.datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=ZONE), {"b": [1, 2.5, None], "a": {"z": "x"}},
     uuid.UUID("9f1c2a34-5b6d-4e7f-8091-a2b3c4d5e6f7")),
    (2, 0, -1, False, "", "", Decimal("-0.01"), Decimal("-0.0001"), -1e300,
     dt.date(1969, 7, 20), dt.time(0, 0), dt.datetime(1969, 7, 20, 20, 17, 40, 500000),
     dt.datetime(1969, 7, 20, 20, 17, 40, 500000, tzinfo=UTC), [], uuid.UUID(int=0)),
    (3, *([None] * 14)),
    (4, 32767, 7, True, "x", "y", Decimal("9999999999.99"), Decimal(0), math.nan, dt.date(2000, 2, 29),
     dt.time(12, 0, 0, 1), dt.datetime(2038, 1, 19, 3, 14, 8), dt.datetime(2262, 4, 11, 23, 47, 16, tzinfo=UTC),
     {"n": 1}, uuid.UUID(int=2**128 - 1)),
]


@pytest.fixture(params=["duckdb", "postgres"])
def backend(request, tmp_path, new_pg_db):
    if request.param == "duckdb":
        b = DuckDbBackend(tmp_path / "canon.duckdb")
    else:
        b = PostgresBackend(new_pg_db("canon"))
    yield b
    b.close()


def _insert(backend) -> None:
    import orjson

    backend.ensure_schema([EVERY])
    cols = [*EVERY.column_names, "_source_position", "_ingested_at", "_op"]
    now = dt.datetime.now(UTC)
    sql = (f"INSERT INTO {qualified_name(EVERY)} ({', '.join(quote_ident(c) for c in cols)}) "
           f"VALUES ({', '.join('?' * len(cols))})")
    for row in ROWS:
        values = list(row)
        values[13] = None if row[13] is None else orjson.dumps(row[13]).decode()
        if backend.dialect == "postgres" and row[14] is not None:
            values[14] = str(row[14])
        backend.execute(sql, (*values, 1, now, "r"))


def test_sql_and_python_canonical_forms_agree(backend):
    _insert(backend)
    canon = RowCanon(EVERY)
    stored = {canon.key(r): r for chunk in iter_stored(backend, EVERY, canon) for r in map(canon.stored, chunk)}
    assert sorted(stored) == [1, 2, 3, 4]
    for row in ROWS:
        expected = canon.expected(row)
        got = stored[row[0]]
        mismatches = [(name, e, g) for name, e, g in zip(canon.names, expected, got, strict=True) if e != g]
        assert mismatches == [], f"{backend.dialect}: {mismatches}"
        assert canon.digest(expected) == canon.digest(got)
    looked_up = fetch_stored(backend, EVERY, canon, [2, 4, 99])
    assert sorted(looked_up) == [2, 4] and looked_up[2] == stored[2]
