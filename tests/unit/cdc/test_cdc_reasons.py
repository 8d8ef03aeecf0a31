"""Issue 16 point 7: dead-letter reasons say what the record holds.

- an integer beyond 64 bits (orjson reads it as a float: 10**30 → 1e+30) is reported as written and
  as out of range, not as "1e+30 ... (got float)";
- a row image of the wrong JSON type ('after' as a string) says so, instead of "has no 'after' row".
Built on events captured from the real stack (tests/fixtures/events/captured/postgres_orders.json).
"""

from __future__ import annotations

import json

import orjson
import pytest
from cdc_helpers import FIXTURES

from pipelines.cdc.events import DecodeError, Record, parse
from pipelines.cdc.plan import Planner
from pipelines.cdc.types import TypeDecodeError, decode

pytestmark = pytest.mark.unit

T = "orders.public.orders"
BIG = 10**30


@pytest.fixture()
def planner(orders_projection, contracts):
    return Planner(orders_projection, contracts)


def captured_create_text() -> str:
    """The captured create of order 2 as the connector wrote it (JSON text)."""
    records = json.loads((FIXTURES / "captured" / "postgres_orders.json").read_text())
    [r] = [r for r in records if r["topic"] == T and r["offset"] == 1]
    assert '"total_cents":4500' in r["value"] and '"op":"c"' in r["value"]
    return r["value"]


def with_total(literal: str) -> bytes:
    return captured_create_text().replace('"total_cents":4500', f'"total_cents":{literal}', 1).encode()


def test_orjson_reads_an_integer_beyond_64_bits_as_a_float():
    """The premise: why the decoder alone cannot tell 10**30 from 1e30."""
    assert orjson.loads(str(BIG)) == 1e30 and type(orjson.loads(str(BIG))) is float
    assert type(orjson.loads(str(2**64 - 1))) is int and type(orjson.loads(str(2**64))) is float


@pytest.mark.parametrize("literal", [str(BIG), str(-BIG), str(2**64), str(-(2**63) - 1)])
def test_a_big_integer_is_reported_as_written_and_out_of_range(planner, literal):
    plan = planner.plan_records([Record(T, 0, 7, b'{"id":2}', with_total(literal))])
    assert {d.target for d in plan.dead_letters} == {"orders_v1", "orders_v2"}
    for dl in plan.dead_letters:
        assert dl.stage == "decode"
        assert dl.reason == f"column public.orders.total_cents: {literal} is out of range for bigint"
        assert "float" not in dl.reason and "e+" not in dl.reason


def test_a_float_literal_in_an_integer_column_still_says_float(planner):
    plan = planner.plan_records([Record(T, 0, 7, b'{"id":2}', with_total("45.5"))])
    assert {d.reason for d in plan.dead_letters} == {
        "column public.orders.total_cents: 45.5 is not a valid bigint (got float)"}


def test_a_big_integer_in_a_deletes_key_is_reported_as_written(planner):
    value = {"op": "d", "before": {"id": BIG}, "after": None,
             "source": {"connector": "postgresql", "schema": "public", "table": "orders", "lsn": 9, "ts_ms": 1}}
    raw = json.dumps(value).encode()  # the standard library writes the exact integer
    plan = planner.plan_records([Record(T, 0, 3, f'{{"id":{BIG}}}'.encode(), raw)])
    assert {d.reason for d in plan.dead_letters} == {
        f"column public.orders.id: {BIG} is out of range for bigint"}


def test_the_decoder_alone_says_out_of_range_for_an_integral_float_beyond_the_type():
    with pytest.raises(TypeDecodeError) as err:
        decode("bigint", orjson.loads(str(BIG)), "c")
    assert err.value.reason == "column c: 1e+30 is out of range for bigint"
    with pytest.raises(TypeDecodeError) as err:
        decode("smallint", 70000, "c")  # 0..65535 allowed: MariaDB unsigned SMALLINT
    assert err.value.reason == "column c: 70000 is out of range for smallint"
    with pytest.raises(TypeDecodeError) as err:
        decode("integer", 5.0, "c")  # in range, but a float: the wrong JSON type
    assert err.value.reason == "column c: 5.0 is not a valid integer (got float)"


@pytest.mark.parametrize(("after", "reason"), [
    ('"{\\"id\\": 2}"', "'after' is a string, expected an object"),
    ("[2]", "'after' is an array, expected an object"),
    ("42", "'after' is a number, expected an object"),
    ("true", "'after' is a boolean, expected an object"),
    ("null", "op 'c' event has no 'after' row"),
])
def test_after_of_the_wrong_json_type_says_so(planner, after, reason):
    raw = captured_create_text()
    start = raw.index('"after":') + len('"after":')
    end = raw.index(',"source":')
    value = (raw[:start] + after + raw[end:]).encode()
    with pytest.raises(DecodeError) as err:
        parse(T, 0, 4, b'{"id":2}', value)
    assert err.value.reason == reason
    [dl] = planner.plan_records([Record(T, 0, 4, b'{"id":2}', value)]).dead_letters
    assert (dl.stage, dl.reason, dl.target) == ("decode", reason, None)


def test_before_of_the_wrong_json_type_says_so():
    value = {"op": "d", "before": "id=1", "after": None, "source": {"connector": "postgresql", "lsn": 1}}
    with pytest.raises(DecodeError) as err:
        parse(T, 0, 0, b'{"id":1}', orjson.dumps(value))
    assert err.value.reason == "'before' is a string, expected an object"
    value["before"] = None
    with pytest.raises(DecodeError, match=r"delete event has no 'before' row"):
        parse(T, 0, 0, b'{"id":1}', orjson.dumps(value))


def test_source_of_the_wrong_json_type_says_so():
    value = {"op": "c", "after": {"id": 1}, "source": "postgresql"}
    with pytest.raises(DecodeError) as err:
        parse(T, 0, 0, b'{"id":1}', orjson.dumps(value))
    assert err.value.reason == "'source' is a string, expected an object"
