"""Native values → Debezium representation: what the pipeline's own decoders turn back into the same value."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from pipelines.cdc.types import decode
from pipelines.reconcile.native import debezium_value, encoder_for, row_encoder

pytestmark = pytest.mark.unit

UTC = dt.UTC
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
U = uuid.UUID("12345678-1234-5678-1234-567812345678")

# (declared source type, native value from psycopg/PyMySQL, Debezium JSON value, what the decoder yields)
CASES = [
    ("bigint", 42, 42, 42),
    ("boolean", True, True, True),
    ("boolean", 1, 1, True),  # MariaDB TINYINT(1)
    ("char(3)", "eur", "eur", "eur"),
    ("numeric(5,4)", Decimal("0.1200"), "0.1200", Decimal("0.1200")),
    ("numeric", Decimal("1E-7"), "0.0000001", Decimal("1E-7")),
    ("decimal(10,2)", "12.30", "12.30", Decimal("12.30")),  # read as text already
    ("double", 1.5, 1.5, 1.5),
    ("date", dt.date(2026, 3, 1), 20513, dt.date(2026, 3, 1)),
    ("date", dt.date(1969, 12, 31), -1, dt.date(1969, 12, 31)),
    ("time", dt.time(13, 14, 15, 16), 47_655_000_016, dt.time(13, 14, 15, 16)),
    ("time", dt.timedelta(hours=13, minutes=14, seconds=15, microseconds=16), 47_655_000_016, dt.time(13, 14, 15, 16)),
    ("timestamp", dt.datetime(2026, 3, 1, 12, 0, 0, 5), 1_772_366_400_000_005,
     dt.datetime(2026, 3, 1, 12, 0, 0, 5, tzinfo=UTC)),
    ("datetime(6)", dt.datetime(1969, 12, 31, 23, 59, 59, 999999), -1, dt.datetime(1969, 12, 31, 23, 59, 59, 999999,
                                                                                 tzinfo=UTC)),
    ("timestamp_ms", dt.datetime(2026, 3, 1, 12, 0, 0, 123000), 1_772_366_400_123,
     dt.datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)),
    ("timestamptz", dt.datetime(2026, 3, 1, 17, 30, 0, 1, tzinfo=IST), "2026-03-01T12:00:00.000001Z",
     dt.datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC)),
    ("timestamptz", dt.datetime(2026, 3, 1, 12, 0), "2026-03-01T12:00:00Z", dt.datetime(2026, 3, 1, 12, tzinfo=UTC)),
    ("timestamptz", "2026-03-01T12:00:00.000001Z", "2026-03-01T12:00:00.000001Z",  # formatted by the source DB
     dt.datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC)),
    ("jsonb", '{"channel": "web"}', '{"channel": "web"}', {"channel": "web"}),
    ("jsonb", {"channel": "web", "n": [1, 2]}, '{"channel":"web","n":[1,2]}', {"channel": "web", "n": [1, 2]}),
    ("uuid", U, str(U), str(U)),
    ("bytea", memoryview(b"\x00\xffab"), "AP9hYg==", b"\x00\xffab"),
    ("date[]", [dt.date(1970, 1, 2), None], [1, None], [dt.date(1970, 1, 2), None]),
    ("integer[]", [1, 2], [1, 2], [1, 2]),
]


@pytest.mark.parametrize(("type_name", "native", "json_value", "decoded"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_native_to_debezium_round_trips_through_the_pipeline_decoders(type_name, native, json_value, decoded):
    assert debezium_value(type_name, native) == json_value
    assert decode(type_name, debezium_value(type_name, native)) == decoded


def test_null_stays_null_and_pass_through_types_have_no_encoder():
    assert debezium_value("timestamptz", None) is None
    assert encoder_for("bigint") is None and encoder_for("varchar(32)") is None
    with pytest.raises(ValueError, match="unknown source type"):
        encoder_for("money")


def test_row_encoder_builds_the_after_image_in_declared_order():
    types = {"id": "bigint", "created_ts": "timestamptz", "metadata": "json", "day": "date"}
    encode = row_encoder(types, ["id", "day", "created_ts", "metadata"])
    row = encode((7, dt.date(1970, 1, 11), dt.datetime(2026, 1, 1, tzinfo=UTC), None))
    assert row == {"id": 7, "day": 10, "created_ts": "2026-01-01T00:00:00Z", "metadata": None}
    assert row_encoder({"id": "bigint", "sku": "text"})((1, "A")) == {"id": 1, "sku": "A"}
